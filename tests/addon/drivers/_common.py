"""Driver plumbing (runs under .venv-blender): argument parsing, installing the zip, timer capture, JSON out."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
for p in (str(REPO), str(REPO / "tests" / "addon")):
    if p not in sys.path:
        sys.path.insert(0, p)

import bpy  # noqa: E402

MODULE = "bl_ext.user_default.aligngs"


def parse(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--zip", default=None)
    for name, kw in (extra or {}).items():
        ap.add_argument(name, **kw)
    return ap.parse_args()


def install(zip_path: str):
    """Install + enable the extension zip headless; returns the add-on package module."""
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}, res
    assert MODULE in bpy.context.preferences.addons, "extension installed but not enabled"
    import importlib

    return importlib.import_module(MODULE)


def sub(name: str):
    import importlib

    return importlib.import_module(f"{MODULE}.{name}")


class TimerCapture:
    """Replaces bpy.app.timers.register (timers never fire headless) and pumps the captured callbacks."""

    def __init__(self):
        self.callbacks = []
        self._orig = bpy.app.timers.register
        bpy.app.timers.register = self._register
        self.ticks = 0
        self.max_tick_s = 0.0

    def _register(self, fn, first_interval=0.0, persistent=False):
        if fn not in self.callbacks:
            self.callbacks.append(fn)

    def pump(self, until=None, timeout: float = 60.0, sleep: float = 0.01) -> bool:
        """Call captured callbacks (like Blender would) until ``until()`` or none is left; True if ``until`` met."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until is not None and until():
                return True
            if not self.callbacks:
                return until is None or bool(until())
            for fn in list(self.callbacks):
                t0 = time.perf_counter()
                nxt = fn()
                dt = time.perf_counter() - t0
                self.ticks += 1
                self.max_tick_s = max(self.max_tick_s, dt)
                if nxt is None:
                    self.callbacks.remove(fn)
            time.sleep(sleep)
        return bool(until()) if until is not None else False

    def restore(self):
        bpy.app.timers.register = self._orig


def write(out: str, data: dict) -> None:
    Path(out).write_text(json.dumps(data, indent=1, default=str))
