"""Packages the add-on ships inside its extension zip: ``wire`` (the AlignGS protocol and result format).

``build_addon.py`` copies ``aligngs/wire/`` here, byte for byte, when it stages the zip (a Blender extension can
only import what is inside it). A source checkout has no copy (nothing is duplicated in the repository): when this
package is imported from the repository, the repository's ``aligngs/`` folder is added to this package's search
path, so ``blender_addon._vendor.wire`` loads the very same files under this package's name, without running
``aligngs/__init__.py`` or importing anything else from ``aligngs``.
"""
from pathlib import Path as _Path

if not (_Path(__file__).parent / "wire" / "__init__.py").is_file():
    _source = _Path(__file__).resolve().parents[2] / "aligngs"
    if (_source / "wire" / "__init__.py").is_file():
        __path__.append(str(_source))  # noqa: F821  (a package's __path__)
