"""The protocol gaps a client written from docs/protocol.md alone found (issue 14 item 4), each fixed in the server
or the document, and the typed user errors of issue 10 (missing weights -> missing_model with the fix)."""
from __future__ import annotations

import os
import time

import pytest
import zmq

from backend.client import Client, JobFailed, Message, ServerError
from backend.errors import BackendError, ConfigError, ExecutorUnavailable, SecurityError, job_failure
from backend.protocol import decode_json_object, encode_header

from backend_testlib import launch, scene_files, wait_for

KINDS_BUT_FILE = ["mesh", "points", "cameras", "class"]


def submit(c: Client, files: dict[str, bytes], **fields) -> tuple[str, int]:
    listing = [{"name": k, "frame": i + 1, "nbytes": len(v)} for i, (k, v) in enumerate(files.items())]
    m = c.request("submit", list(files.values()), files=listing, preset="fast", **fields)
    return m.header["job"], m.re


def test_submit_parts_leave_out_the_3dgs_ply_and_subscribe_fetch_follow(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    job, seq = submit(c, scene_files(70), name="living room", parts=KINDS_BUT_FILE)
    res = c.wait(job, seq, timeout=60)
    assert [p.kind for p in res.parts] == ["mesh", "points", "cameras", "class"]  # no "file" part
    assert c.status(job)["parts"] == KINDS_BUT_FILE
    # a later subscribe gets the job's own choice, unless it asks for other parts
    seq2, _ = c.subscribe(job)
    assert [p.kind for p in c.wait(job, seq2, timeout=30).parts] == ["mesh", "points", "cameras", "class"]
    seq3 = c.request("subscribe", job=job, parts=["gaussians.ply"]).re
    assert [p.name for p in c.wait(job, seq3, timeout=30).parts] == ["gaussians.ply"]
    # fetch is unaffected by the submit's choice; its `parts` matches names or kinds
    assert [p.kind for p in c.fetch(job).parts] == ["mesh", "points", "cameras", "class", "file"]
    assert [p.name for p in c.fetch(job, parts=["mesh", "points"]).parts] == ["mesh", "points"]  # "points" is a kind
    assert [p.name for p in c.fetch(job, parts=["class"]).parts] == ["class_019_chair"]
    # bad `parts` values are refused before anything is stored
    for bad in ([], [3], "mesh", ["x" * 300]):
        with pytest.raises(ServerError) as e:
            submit(c, scene_files(71), parts=bad)
        assert e.value.code == "malformed" and e.value.field == "parts"
    assert len(c.list()) == 1


def test_result_names_the_submitted_job(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    job, seq = c.submit(scene_files(72), preset="fast", name="Kitchen 2")
    c.wait(job, seq, timeout=60)
    seq = c.send("fetch", job=job)
    result = c.take(lambda m: m.re == seq and m.type == "result", timeout=30)
    assert result.header["name"] == "Kitchen 2" and result.header["scene"] == "test-scene"  # scene: the manifest's


def test_user_errors_are_typed_with_the_fix_and_null_exit_code(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    job, seq = c.submit(scene_files(73, crash="missing_model"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq, timeout=60)
    h = e.value.header
    assert h["code"] == "missing_model" and h["model"] == "facebook/dpt-dinov2-small-nyu"
    assert "aligngs models download facebook/dpt-dinov2-small-nyu" in h["message"] and "--mode 3dgs" in h["fix"]
    assert "Traceback" not in h["message"] and h["exit_code"] is None and h["signal"] is None
    assert c.status(job)["error"]["code"] == "missing_model"
    assert "Traceback" not in c.log(job)  # a user error is logged as one line, not as a crash
    job, seq = c.submit(scene_files(74, crash="bad_input"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq, timeout=60)
    assert e.value.code == "bad_input" and e.value.header["exit_code"] is None  # doc: null when not applicable


def test_job_failure_classification():
    from aligngs.data.errors import DataError
    from aligngs.priors.models import CheckpointNotFoundError

    f = job_failure(CheckpointNotFoundError("org/model", "offline"))
    assert f["code"] == "missing_model" and f["model"] == "org/model" and f["fix"] in f["message"]
    f = job_failure(DataError("scene/transforms.json", "frames[3] has no file_path", fix="add file_path"))
    assert f == {"code": "bad_input", "fix": "add file_path",
                 "message": "scene/transforms.json: frames[3] has no file_path. add file_path"}
    f = job_failure(ZeroDivisionError("division by zero"))
    assert f == {"code": "job_failed", "message": "ZeroDivisionError: division by zero"}
    assert issubclass(SecurityError, BackendError) and issubclass(ExecutorUnavailable, ConfigError)


def test_list_refuses_an_unknown_state_and_welcome_lists_auto(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    for bad in ("finished", ["done", "nope"]):
        with pytest.raises(ServerError) as e:
            c.list(bad)
        assert e.value.code == "malformed" and e.value.field == "state"
    assert c.list(["done", "failed"]) == []
    w = c.hello()
    assert w["teachers"]["semantic"][0] == "auto" and w["teachers"]["depth"][0] == "auto"
    assert w["executor"] == "local" and w["workers"][0]["node"] is None
    # every name-valued setting's choices, so a client can offer drop-downs (the add-on does)
    assert w["choices"]["config.data.poses"] == ["auto", "known", "sfm", "vggt"]
    assert w["choices"]["config.data.split"] == ["auto", "scene", "every"]
    assert w["choices"]["config.train.semantics.teacher"] == w["teachers"]["semantic"]


def test_refused_bind_creates_no_jobs_folder(tmp_path):
    jobs = tmp_path / "jobs-never"
    sp = launch(tmp_path, bind="tcp://0.0.0.0:*", jobs_dir=jobs, wait=False)
    assert sp.proc.wait(60) == 2
    assert "refusing to bind" in sp.log() and not jobs.exists()


def test_reconnect_with_the_same_routing_id_keeps_the_attachment(servers):
    """An event sent while the client is away must not drop its attachment: back with the same ROUTING_ID, it
    receives the job's later events (and the result) without subscribing again."""
    sp = servers()
    rid = b"\x01" + os.urandom(15)
    ctx = zmq.Context.instance()

    def dealer():
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, rid)
        s.connect(sp.endpoint)
        return s

    def recv(s, timeout=30.0) -> Message:
        assert s.poll(int(timeout * 1000)), "no message"
        frames = s.recv_multipart(copy=False)
        return Message(decode_json_object(frames[0].buffer), frames[1:])

    s = dealer()
    files = scene_files(75, steps=60, step_s=0.1)
    listing = [{"name": k, "frame": i + 1, "nbytes": len(v)} for i, (k, v) in enumerate(files.items())]
    s.send_multipart([encode_header({"v": 1, "type": "submit", "seq": 1, "preset": "fast", "files": listing}), *files.values()])
    acc = recv(s)
    assert acc.type == "accepted"
    job = acc.header["job"]
    while recv(s).header.get("stage") != "train":
        pass
    s.close()  # away while progress keeps coming (the server's sends to us fail meanwhile)
    time.sleep(1.5)
    s = dealer()
    s.send_multipart([encode_header({"v": 1, "type": "ping", "seq": 2})])
    types = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = recv(s)
        types.append(m.type)
        if m.type == "done":
            assert m.re == 1 and m.job == job  # still the submit's attachment
            break
    assert "pong" in types and "progress" in types and "result" in types and types[-1] == "done"
    s.close()
    with Client(sp.endpoint, timeout=10) as c:
        wait_for(lambda: c.status(job)["state"] == "done", timeout=10)


def test_preset_auto_follows_the_workers_device(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    auto, _ = c.submit(scene_files(76), preset="auto", attach=False)
    fast, _ = c.submit(scene_files(76), preset="fast", attach=False)
    assert c.status(auto)["settings"] == c.status(fast)["settings"]  # a CPU server: auto = fast
    with pytest.raises(ServerError) as e:
        c.submit(scene_files(77), preset="automatic")
    assert e.value.code == "invalid_settings" and e.value.field == "preset"
