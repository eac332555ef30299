"""Fixtures for the add-on tests: the repo on sys.path, the built extension zip, a backend server."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from addon_testlib import BPY_PYTHON, BackendServer, have_backend  # noqa: E402


@pytest.fixture(scope="session")
def bpy_python() -> Path:
    if not BPY_PYTHON.is_file():
        pytest.skip(f"{BPY_PYTHON} missing: run `make blender-env` for the Blender-as-a-module tests")
    return BPY_PYTHON


@pytest.fixture(scope="session")
def addon_zip(bpy_python, tmp_path_factory) -> Path:
    """The linux-x64 extension zip, built with build_addon.py (cached wheels; downloads them once if missing)."""
    import build_addon

    out = tmp_path_factory.mktemp("dist")
    cache = build_addon.DEFAULT_CACHE
    offline = all(any((cache / py / "linux-x64").glob("*.whl")) for py, _ in build_addon.PYTHONS)
    try:
        res = build_addon.build(out, offline=offline, platforms=["linux-x64"])
    except build_addon.BuildError as e:
        if "pip download failed" in str(e):
            pytest.skip(f"cannot fetch the pyzmq wheels (no package index?): {e}")
        raise
    (zip_path,) = res.zips
    return zip_path


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """A backend.serve on loopback (CPU) running the synthetic test job function."""
    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    srv = BackendServer(tmp_path_factory.mktemp("server") / "jobs",
                        runner=str(HERE / "addon_runner.py") + ":run")
    yield srv
    srv.stop()
