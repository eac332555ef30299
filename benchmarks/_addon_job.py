"""A submitted add-on job for the Blender benchmarks (runs under .venv-blender): a real ``backend.serve`` running
the add-on tests' job function (tests/addon/addon_runner.py), and the add-on's own ``Session`` that has just
clicked Reconstruct Scene on a folder of synthetic images. The caller pumps ``session.tick`` like Blender's timer."""
from __future__ import annotations

import sys
import tempfile
import types
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def submitted_job(n_images: int, control: dict):
    """Yields ``(session, scene, on_submit)``; ``on_submit`` is the ``time.perf_counter()`` just before the submit.
    The server is stopped on exit."""
    import time

    import bpy

    sys.path.insert(0, str(REPO / "tests" / "addon"))
    from addon_testlib import BackendServer, make_image_folder  # the test suite's server launcher

    from blender_addon.blender import actions, props, session as sess

    props.register()
    tmp = Path(tempfile.mkdtemp(prefix="aligngs-bench-"))
    srv = BackendServer(tmp / "jobs", runner=str(REPO / "tests" / "addon" / "addon_runner.py") + ":run")
    try:
        folder = make_image_folder(tmp / "imgs", n_images, control)
        scene = bpy.context.scene
        scene.aligngs.image_dir = str(folder)
        scene.aligngs.preset = "fast"
        prefs = types.SimpleNamespace(address=srv.address, timeout_s=30.0, use_curve=False)
        s = sess.Session()
        bpy.app.timers.register = lambda fn, **kw: None  # pumped by the caller (timers never fire headless)
        t_submit = time.perf_counter()
        actions.start_reconstruction(s, scene, prefs)
        yield s, scene, t_submit
    finally:
        srv.stop()
