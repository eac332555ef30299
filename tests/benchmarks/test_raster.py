"""Smoke test of the raster benchmark script (figures are printed, never asserted as timings)."""

from __future__ import annotations

import json

from benchmarks.raster import main, make_room_scene


def test_bench_raster_writes_json(tmp_path, capsys):
    out = tmp_path / "raster.json"
    rc = main(["--n", "300", "--width", "32", "--height", "24", "--features", "2", "--repeats", "1",
               "--semantic", "5", "--json", str(out)])
    assert rc == 0
    figures = json.loads(out.read_text())
    for key in ("fwd_bwd_s", "bruteforce_fwd_bwd_s", "speedup", "n_gaussians", "width", "height",
                "peak_mem_mb"):
        assert key in figures
    assert figures["n_gaussians"] == 300 and figures["width"] == 32 and figures["height"] == 24
    assert figures["fwd_bwd_s"] > 0 and figures["bruteforce_fwd_bwd_s"] > 0
    assert figures["speedup"] == figures["bruteforce_fwd_bwd_s"] / figures["fwd_bwd_s"]
    assert figures["channels"] == 6  # 3 + 2 features + expected depth
    assert figures["step_two_calls_s"] > 0 and figures["step_reuse_s"] > 0
    assert figures["semantic_channels"] == 5 and figures["kept_weights_mb"] > 0
    assert "fwd+bwd" in capsys.readouterr().out


def test_room_scene_is_in_front_of_the_camera():
    s = make_room_scene(2000, 160, 120, 4)
    z = (s.means @ s.viewmats[0, :3, :3].T + s.viewmats[0, :3, 3])[:, 2]
    assert float(z.min()) > 0.5 and s.colors.shape == (2000, 7)
    assert 0.0 < float(s.opacities.min()) and float(s.opacities.max()) <= 1.0
