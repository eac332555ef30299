"""AlignGS for Blender: reconstruct an indoor scene with semantics on an AlignGS server and import it.

View3D > Sidebar > AlignGS. The network runs in a worker thread (``client``); results are built by ``importer``
in timer steps (``session``). Modules without bpy (``client``, ``address``, ``inputs``, ``geometry``,
``resultfmt``, ``jobstore``) import anywhere, so this file imports the bpy parts only in ``register()``.
"""
from __future__ import annotations

_MODULES = ("props", "runtime", "operators", "ui")


def _submodules():
    import importlib

    return [importlib.import_module(f"{__package__}.{name}") for name in _MODULES]


def register():
    for mod in _submodules():
        mod.register()


def unregister():
    for mod in reversed(_submodules()):
        mod.unregister()
