"""AlignGS for Blender: reconstruct an indoor scene with semantics on an AlignGS server and import it.

View3D > Sidebar > AlignGS. Layout (like Blender's glTF add-on, which splits ``io/`` from ``blender/``):

- ``core/``: no bpy (server address, input folder scan, protocol client and its thread, job list, geometry maths,
  the Advanced settings schema); imports anywhere, tests run it outside Blender.
- ``blender/``: the bpy glue (properties, operators, panels, the timer-driven session, the importer).
- ``_vendor/wire``: the AlignGS protocol and result format (``aligngs/wire``, copied into the zip by
  ``build_addon.py``).

This file imports the bpy parts only in ``register()``.
"""
from __future__ import annotations

_MODULES = ("blender.props", "blender.runtime", "blender.operators", "blender.ui")


def _submodules():
    import importlib

    return [importlib.import_module(f"{__package__}.{name}") for name in _MODULES]


def register():
    for mod in _submodules():
        mod.register()


def unregister():
    for mod in reversed(_submodules()):
        mod.unregister()
