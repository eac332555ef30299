"""Enable / disable, readable failures (server down, bad folders, blocked addresses) in real Blender."""
from __future__ import annotations

import pytest

from addon_testlib import run_driver

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def facts(addon_zip):
    return run_driver("lifecycle", zip_path=addon_zip)


def test_register_unregister_leaves_nothing(facts):
    empty = {"types": [], "ops": [], "scene_prop": False, "enabled": False, "load_post": [], "threads": []}
    assert facts["before"] == empty
    on = facts["enabled"]
    assert on["enabled"] and on["scene_prop"] and on["load_post"] == ["_on_load_post"]
    assert {"reconstruct", "cancel", "test_connection", "class_visibility", "reimport", "attach_job"} <= set(on["ops"])
    assert {"AGS_PT_main", "AGS_PT_input", "AGS_PT_advanced", "AGS_PT_results", "AGS_PT_jobs"} <= set(on["types"])
    assert facts["threads_running"]  # the client thread existed while enabled ...
    assert facts["disabled"] == empty  # ... and is gone, with every class, property and handler
    assert facts["session_after"]
    assert facts["reenabled"] == on
    assert facts["disabled_again"] == empty


def test_bad_folder_reasons(facts):
    b = facts["bad_folder"]
    assert b["none"] == "No image folder chosen"
    assert b["missing"] == "Image folder /no/such/folder does not exist"
    assert b["no_images"].startswith("No images in ") and ".jpg" in b["no_images"]
    assert b["poll"] is False and b["no_images"] in b["op_error"]
    assert b["start_error"] == b["no_images"]


def test_remote_address_needs_online_access(facts):
    a = facts["address"]
    if a["online_access"]:
        pytest.skip("this Blender allows online access")
    assert "Online access is off" in a["remote_reason"] and "localhost" in a["remote_reason"]
    assert "port must be a number" in a["bad_port"]


def test_server_down_readable_status(facts):
    d = facts["server_down"]
    assert d["op"] == ["FINISHED"] and d["reached"]
    assert d["status"] == "error"
    assert d["text"].startswith("No answer from tcp://127.0.0.1:") and "AlignGS server running" in d["text"]
    assert d["seconds"] < 10
    assert d["reports"][-1] == ["ERROR", d["text"]]
    assert d["timer_stopped"]  # nothing in flight: the timer ends itself
    r = facts["reconstruct_down"]
    assert facts["reason_with_images"] is None  # images present: the button is enabled
    assert r["reached"] and r["phase"] == "failed" and r["error"].startswith("No answer from")


def test_curve_keys_from_preferences(facts):
    c = facts["curve"]
    assert c["match"]
    assert c["public_only"].startswith("CURVE keys (add-on preferences): ") and "key_secret" in c["public_only"]
    assert "40 Z85 characters" in c["bad_text"]
