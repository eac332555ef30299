"""CI's version of the sparse scene benchmark: samples/room, 8 training views, a simulated monocular prior and a
view-consistent simulated teacher, the same init for both modes; AlignGS's F-score must not fall below plain 3DGS's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import _sparse
from benchmarks.scene import main

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.fixture(scope="module")
def sparse_rows(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sparse")
    out = tmp_path / "sparse.json"
    rc = main(["--protocol", "sparse", "--data", str(ROOM), "--views", "8", "--teacher", "mild", "--resolution", "64",
               "--iterations", "120", "--max-init-points", "8000", "--out", str(tmp_path / "runs"),
               "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    return doc, {r["mode"]: r for r in doc["rows"]}


@pytest.mark.slow
def test_sparse_protocol_rows_say_what_each_side_was_given(sparse_rows):
    doc, rows = sparse_rows
    g, a = rows["3dgs"], rows["aligngs"]
    # both rows say what they were given; neither is an oracle
    assert not g["oracle"] and not a["oracle"]
    assert a["teacher"] == "sim-mild" and a["depth_prior"].startswith("sim-mono") and g["teacher"] == "unused"
    assert g["init"] == a["init"] == "sfm+prior" and g["init_points"] == a["init_points"] > 1000
    assert a["teacher_miou"] is not None and 0.3 < a["teacher_miou"] < 0.95
    for k in ("fscore", "accuracy", "completion", "psnr", "ssim", "miou", "wall_s", "peak_mem_mb"):
        assert a[k] is not None, k
    assert {m["mode"] for m in doc["mean"]} == {"3dgs", "aligngs"}


@pytest.mark.slow
def test_aligngs_is_not_below_3dgs_under_the_sparse_protocol(sparse_rows):
    _, rows = sparse_rows
    g, a = rows["3dgs"], rows["aligngs"]
    # Deterministic since the init's matching no longer goes through pycolmap's matcher and training no longer
    # moves the shared init points (3DGS ran first and moved AlignGS's start): here 0.019 vs 0.008, the same with
    # one thread and with torch limited to AVX2. Before, the rows changed from run to run and this check was an
    # expected failure.
    assert a["fscore"] >= g["fscore"], (a["fscore"], g["fscore"])


def test_ablation_switches_are_loss_config_fields():
    from aligngs.config import LossConfig

    fields = set(LossConfig.__dataclass_fields__)
    for name, ov in _sparse.ABLATIONS.items():
        assert set(ov) <= fields, name
        default = getattr(LossConfig(), next(iter(ov)))
        assert default != next(iter(ov.values())), f"{name} does not switch anything off by default"


def test_known_pose_matching_keeps_true_correspondences_and_is_repeatable():
    """The sparse protocol's init: the epipolar (Sampson) check with the known cameras keeps true correspondences and
    rejects shuffled ones; mutual-NN matching pairs identical descriptors; the room's 8 views give the same points
    in two runs."""
    import numpy as np

    from aligngs.config import DataConfig
    from aligngs.data.loaders import load_scene

    scene = load_scene(ROOM, DataConfig(resolution=64))
    c1, c2 = scene.frames[0].camera, scene.frames[2].camera
    rng = np.random.default_rng(0)
    X = c1.center + rng.uniform(-0.5, 0.5, (200, 3)) + 2.0 * (c1.c2w[:3, 2])  # in front of the first camera
    P1, P2 = c1.K @ c1.w2c[:3, :4], c2.K @ c2.w2c[:3, :4]
    x1, _ = _sparse._project(P1, X)
    x2, _ = _sparse._project(P2, X)
    assert float(_sparse._sampson_px(c1, c2, x1, x2).max()) < 1e-6
    assert float(np.median(_sparse._sampson_px(c1, c2, x1, x2[rng.permutation(200)]))) > 2.0
    d = rng.normal(size=(50, 128)).astype(np.float32)
    m = _sparse._match_mutual(d, d[::-1].copy(), 0.8)
    np.testing.assert_array_equal(m, np.stack([np.arange(50), 49 - np.arange(50)], 1))
    views = scene.frames[:16:2]
    a = _sparse.triangulate_known_poses(views)
    b = _sparse.triangulate_known_poses(views)
    assert len(a[0]) >= 50 and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
