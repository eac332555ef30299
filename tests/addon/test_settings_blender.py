"""In real Blender against a real backend.serve: the Advanced panel is the server's configuration (every field,
grouped as the configuration nests them, each default the server's own), a value set through the panel's
properties reaches the job's settings, and the 3DGS PLY is left out of the result unless the user chose a folder
for it (then it is saved there)."""
from __future__ import annotations

import pytest

from addon_runner import SPLAT_PLY
from addon_testlib import make_image_folder, run_driver

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def facts(addon_zip, backend, tmp_path_factory):
    d = tmp_path_factory.mktemp("settings")
    imgs = make_image_folder(d / "imgs", 3, {"points": 5_000, "tris": 1_000, "classes": 3, "steps": 2, "splat": True})
    splat = d / "splat"
    splat.mkdir()
    return run_driver("settings_parts", "--address", backend.address, "--images", str(imgs), "--splat-dir",
                      str(splat), zip_path=addon_zip, timeout=300)


def test_panel_lists_every_config_field_with_the_servers_defaults(facts):
    assert facts["before"] == 0
    w = facts["welcome"]
    assert w["n_fields"] > 50 and w["n_settings"] == w["n_fields"]
    assert w["missing"] == [] and w["extra"] == [] and w["different"] == [] and w["changed"] == []
    assert {"data", "train", "train.loss", "train.semantics", "mesh"} <= set(w["groups"])


def test_teacher_settings_are_drop_downs_of_the_servers_teachers(facts):
    t = facts["teacher"]
    assert t["choices"] == t["teachers"] and "none" in t["choices"] and len(t["choices"]) >= 3
    assert t["draw"] == "choice" and t["draw_iterations"] == "int_value" and t["set"] == "none"


def test_settings_follow_the_chosen_preset(facts):
    f = facts["fast"]
    assert f["different"] == [] and f["changed"] == []
    assert f["iterations"] == f["want_iterations"]


def test_pearson_weight_set_in_blender_reaches_the_job(facts):
    assert facts["pearson_default"] != pytest.approx(0.123)
    assert facts["overrides"] == {"train": {"loss": {"depth_pearson": 0.123}}}
    for run in ("without_splat", "with_splat"):
        r = facts[run]
        assert r["op"] == ["FINISHED"] and r["phase"] == "done" and r["error"] == ""
        assert r["pearson"] == pytest.approx(0.123)
        assert r["iterations"] == facts["fast"]["want_iterations"]  # the rest stays the preset's


def test_splat_ply_only_when_a_folder_is_set(facts):
    no, yes = facts["without_splat"], facts["with_splat"]
    assert no["record_parts"] == ["mesh", "points", "cameras", "class"] and no["saved"] == []
    assert yes["record_parts"] is None and yes["saved"] == ["gaussians.ply"]
    assert yes["parts_received"] == no["parts_received"] + 1  # the file part came too
    assert bytes.fromhex(yes["ply_hex"]) == SPLAT_PLY
    assert yes["n_points"] == no["n_points"] == 5_000
