"""Reconstruct Scene end to end in real Blender against a real backend.serve (synthetic job function).

The server is the real one (protocol, job store, worker processes, result streaming); its job function is
tests/addon/addon_runner.py, so this checks the add-on and the wire quickly. The real pipeline on the bundled
sample is in test_sample_room.py.
"""
from __future__ import annotations

import pytest

from addon_testlib import make_image_folder, run_driver

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def facts(addon_zip, backend, tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    imgs = make_image_folder(d / "imgs", 5, {"points": 200_000, "tris": 20_000, "classes": 6, "steps": 10,
                                             "step_s": 0.1})
    slow = make_image_folder(d / "slow", 2, {"steps": 400, "step_s": 0.05})
    bad = make_image_folder(d / "bad", 2, {"fail": "bad_input"})
    return run_driver("reconstruct_server", "--address", backend.address, "--images", str(imgs), "--slow",
                      str(slow), "--bad", str(bad), zip_path=addon_zip, timeout=400)


def test_panels_draw_in_every_state(facts):
    assert facts["draw_errors"] == []
    assert "Server 0.1.0 · cpu" in facts["connection"]["panel"]
    assert facts["connection"]["status"] == "connected"


def test_reconstruct_scene_end_to_end(facts):
    r = facts["reconstruct"]
    assert r["op"] == ["FINISHED"] and r["error"] == ""
    ph = r["phases"]
    assert ph[0] == "submitting" and ph[-1] == "done"
    assert ph.index("submitting") < ph.index("running") < ph.index("receiving")  # "importing" may share a tick
    assert [t for t in r["stage_texts"] if t.startswith("Training ")][-1] == "Training 10/10"
    assert r["root"] == "AlignGS · imgs" and r["in_scene"]  # named after the submitted folder
    assert r["n_points"] == 200_000 and r["n_faces"] > 15_000
    assert r["n_cameras"] == r["n_images"] == 5  # one camera per submitted image: the job saw our files
    assert len(r["classes"]) == 6
    assert r["job_id"] and r["job_state"] == "done" and r["job_name"] == "imgs"
    assert facts["jobstore"][0] == r["job_id"]  # remembered in the config folder
    assert r["reports"][-1][1].startswith("AlignGS: imported 200,000 points")
    assert "5 images" in r["done_panel"] and "6 classes found" in r["done_panel"]


def test_reattach_after_reopening_the_blend(facts):
    reo, att = facts["reopened"], facts["reattach"]
    assert reo["job_id"] == facts["reconstruct"]["job_id"]  # saved in the .blend
    assert reo["phase"] == "idle" and reo["n_classes"] == 6
    assert att["op"] == ["FINISHED"] and att["phase"] == "done" and att["error"] == ""
    # the whole result was queued before the first tick, and the panel still went through each phase
    assert att["burst_queued"] > 10
    assert att["phases"][:2] == ["attaching", "receiving"] and att["phases"][-1] == "done"  # importing may share
    assert set(att["phases"][2:-1]) <= {"importing"}  # the last tick's
    assert att["roots"] == ["Collection", "AlignGS · imgs"]  # replaced, not duplicated
    assert att["datablocks"] == facts["reconstruct"]["datablocks"]  # nothing leaked
    re_ = facts["reimport"]
    assert re_["phase"] == "done" and re_["roots"] == att["roots"] and re_["datablocks"] == att["datablocks"]


def test_server_errors_show_as_text(facts):
    rej = facts["rejected"]
    assert rej["phase"] == "failed"
    assert rej["error"] == "The server rejected a setting: config.data.resolution: must be >= 16, got 8"
    assert "The server rejected a setting:" in rej["panel"]
    f = facts["failed_job"]
    assert f["phase"] == "failed" and f["state"] == "failed"
    assert f["error"].startswith("The reconstruction could not read the inputs: ")
    assert f["error"].endswith("frame_0000.png: not a usable image (test)")


def test_resubmit_failed_job(facts):
    r = facts["resubmit"]
    assert r["op"] == ["FINISHED"] and r["same_id"] and r["scene_job"]
    assert r["phase"] == "failed" and r["error"] == facts["failed_job"]["error"]  # same inputs, same outcome


def test_cancel(facts):
    c = facts["cancel"]
    assert c["before"] == "running" and c["op"] == ["FINISHED"]
    assert c["phase"] == "cancelled" and c["state"] == "cancelled"


def test_blocking_operator_for_scripts(facts):
    b = facts["blocking"]
    assert b["op"] == ["FINISHED"] and b["job_state"] == "done" and b["n_classes"] == 6
    assert b["roots"] == ["Collection", "AlignGS · imgs"]


def test_jobs_list(facts):
    j = facts["jobs"]
    assert sorted(j["server"]) == ["cancelled", "done", "done", "failed"]
    assert "slow · cancelled" in j["panel"] and "bad · failed" in j["panel"]
