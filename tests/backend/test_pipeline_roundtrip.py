"""The real pipeline behind the real server: the bundled room at tiny CPU settings, every part byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from aligngs.wire import read_parts
from backend.client import Client

from backend_testlib import REPO, launch

ROOM = REPO / "samples" / "room"


def room_files() -> dict[str, bytes]:
    keep = {".png", ".json"}
    return {p.relative_to(ROOM).as_posix(): p.read_bytes() for p in sorted(ROOM.rglob("*"))
            if p.is_file() and p.suffix.lower() in keep}


@pytest.mark.slow
@pytest.mark.skipif(not (ROOM / "transforms.json").is_file(), reason="samples/room not bundled")
def test_real_pipeline_round_trip(tmp_path):
    pytest.importorskip("aligngs.pipeline")
    sp = launch(tmp_path, runner=None)  # the default runner: aligngs.pipeline:reconstruct
    try:
        with Client(sp.endpoint, timeout=30) as c:
            overrides = {"data": {"resolution": 64}, "train": {"iterations": 30}, "mesh": {"voxel_size": 0.05}}
            job, seq = c.submit(room_files(), preset="fast", overrides=overrides, name="room")
            result = c.wait(job, seq, timeout=400)
            out = sp.jobs_dir / job / "out"
            manifest, disk = read_parts(out / "result", mmap=False)
            got = [p for p in result.parts if p.kind != "file"]
            assert [p.name for p in got] == [p.name for p in disk] and len(disk) >= 3
            kinds = {p.kind for p in got}
            assert {"mesh", "points", "cameras"} <= kinds, kinds
            for g, d in zip(got, disk):
                assert g.kind == d.kind and g.meta == d.meta and list(g.arrays) == list(d.arrays)
                for k in d.arrays:
                    assert g.arrays[k].dtype == d.arrays[k].dtype and g.arrays[k].shape == d.arrays[k].shape
                    assert g.arrays[k].tobytes() == d.arrays[k].tobytes(), (g.name, k)
            files = [p for p in result.parts if p.kind == "file"]
            assert [p.name for p in files] == ["gaussians.ply"]
            assert files[0].arrays["data"].tobytes() == (out / "gaussians.ply").read_bytes()
            summary = result.done["summary"]
            assert summary["device"] == "cpu" and summary["config"]["train"]["iterations"] == 30
            assert result.done["counts"]["gaussians"] > 0 and "psnr" in result.done["metrics"]
            stages = {p["stage"] for p in result.progress}
            assert {"load", "train", "mesh", "export"} <= stages
            assert c.status(job)["state"] == "done"
    finally:
        sp.stop()
    assert "Traceback" not in sp.log()
