"""Where the demo finds the repository's pieces (it runs from a source checkout: samples, build_addon.py, venvs)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tools/demo/paths.py -> the repository root
BPY_PYTHON_ENV = "ALIGNGS_BPY_PYTHON"  # another Blender-as-a-module Python (the tests honour it too)


class DemoSetupError(RuntimeError):
    """Something the demo needs is missing; the message says what and how to get it."""


def repo_file(rel: str) -> Path:
    p = REPO / rel
    if not p.exists():
        raise DemoSetupError(f"{p} not found: the demo runs from a source checkout of AlignGS (git clone + make demo)")
    return p


def bpy_python(explicit: str | None = None) -> Path:
    p = Path(explicit or os.environ.get(BPY_PYTHON_ENV) or REPO / ".venv-blender" / "bin" / "python")
    if not p.is_file():
        raise DemoSetupError(f"{p} not found: Blender as a Python module is needed (`make blender-env`, "
                             f"or set {BPY_PYTHON_ENV})")
    return p
