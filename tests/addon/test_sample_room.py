"""Reconstruct Scene on the bundled sample (samples/room) with the real pipeline behind a real backend.serve.

Slow (the CPU pipeline runs for a minute or two at small settings). Skipped while samples/room does not exist;
ALIGNGS_SAMPLE_ROOM=/path/to/room points it at another synthetic room (``python -m tools.synth --out DIR``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from addon_testlib import REPO, BackendServer, have_backend, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.slow]


def _room() -> Path:
    return Path(os.environ.get("ALIGNGS_SAMPLE_ROOM", REPO / "samples" / "room"))


@pytest.fixture(scope="module")
def facts(addon_zip, tmp_path_factory):
    room = _room()
    if not (room / "images").is_dir():
        pytest.skip(f"{room} (the bundled sample) does not exist yet")
    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    srv = BackendServer(tmp_path_factory.mktemp("room-server") / "jobs")  # default runner: aligngs.pipeline
    try:
        return run_driver("reconstruct_server", "--address", srv.address, "--images", str(room), "--skip-extras",
                          "--iterations", "60", "--resolution", "64", "--timeout", "500", zip_path=addon_zip,
                          timeout=600)
    finally:
        srv.stop()


def test_sample_room_end_to_end(facts):
    r = facts["reconstruct"]
    assert r["error"] == "" and r["phases"][-1] == "done", r
    room = _room()
    n_images = len([p for p in (room / "images").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    assert r["root"] == f"AlignGS · {room.name}"
    assert r["n_points"] > 1000 and r["n_faces"] > 100  # a real mesh and point cloud
    assert r["n_cameras"] == n_images
    assert len(r["classes"]) >= 2  # the room's furniture is split into classes
    assert "train" in (r["summary_timings"] or {})
    # the 3DGS PLY comes as a file part: kept on the server, not built, and no warning about it
    assert not [t for _, t in r["reports"] if "skipped result part" in t], r["reports"]
    a = facts["reattach"]
    assert a["phase"] == "done" and a["datablocks"] == r["datablocks"]
