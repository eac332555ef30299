"""The add-on's protocol client (blender_addon/client.py) against a real backend.serve on loopback.

The server runs ``tests/addon/addon_runner.py`` as its job function (a synthetic result written with
aligngs.wire.write_parts), so these tests check the wire, not the reconstruction.
"""
from __future__ import annotations

import queue
import socket
import time

import numpy as np
import pytest

from blender_addon.core import client
from addon_testlib import make_image_folder


def _events_until(conn, pred, timeout=60.0):
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = conn.events.get(timeout=0.2)
        except queue.Empty:
            continue
        out.append(msg)
        if pred(msg):
            return out
    raise AssertionError(f"timed out; got {[type(m).__name__ for m in out]}")


def test_submit_stream_matches_the_files_the_job_wrote(backend, tmp_path):
    from aligngs.wire import read_parts

    folder = make_image_folder(tmp_path / "imgs", 4, {"points": 800_000, "tris": 3000, "classes": 3})
    conn = client.Connection(backend.address, timeout_s=10).start()
    try:
        seq = conn.submit(str(folder), name="room", preset="fast",
                          overrides={"train": {"iterations": 77}, "data": {"resolution": 96}})
        msgs = _events_until(conn, lambda m: isinstance(m, (client.Done, client.Error)), 120)
    finally:
        conn.close()
    kinds = [type(m).__name__ for m in msgs]
    assert isinstance(msgs[-1], client.Done), [m for m in msgs if isinstance(m, client.Error)]
    assert kinds[0] == "Connected" and "ServerInfo" in kinds
    acc = next(m for m in msgs if isinstance(m, client.Accepted))
    assert acc.re == seq and acc.record["n_inputs"] == 5  # 4 images + control.json
    assert kinds.index("Accepted") < kinds.index("ResultStarted") < kinds.index("PartReceived")
    assert any(isinstance(m, client.Progress) and m.stage == "train" for m in msgs)
    assert any(isinstance(m, client.Downloading) for m in msgs)  # 800k points: positions come in chunks
    done = msgs[-1]
    assert done.summary["images"] == 4 and done.summary["iterations"] == 77
    assert done.summary["preset_resolution"] == 96
    parts = [m for m in msgs if isinstance(m, client.PartReceived)]
    kinds_in = [p.kind for p in parts]
    assert kinds_in[:3] == ["mesh", "points", "cameras"] and kinds_in.count("class") == 3
    assert [e["name"] for e in done.manifest["parts"]] == [p.name for p in parts]
    # byte-exact against what the job wrote on the server
    manifest, ref = read_parts(backend.jobs_dir / acc.job / "out" / "result")
    assert done.manifest["scene"] == manifest["scene"] and done.manifest["up"] == manifest["up"]
    ref_by_name = {p.name: p for p in ref}
    for p in parts:
        if p.kind == "file":
            continue
        r = ref_by_name[p.name]
        assert p.meta == r.meta and set(p.arrays) == set(r.arrays)
        for k, a in p.arrays.items():
            assert a.dtype == r.arrays[k].dtype and a.shape == r.arrays[k].shape
            np.testing.assert_array_equal(a, r.arrays[k])
    assert parts[1].arrays["positions"].shape == (800_000, 3)


def test_blocking_api_and_fetch(backend, tmp_path):
    folder = make_image_folder(tmp_path / "imgs", 3)
    seen = []
    res = client.submit_and_wait(backend.address, str(folder), preset="fast", on_progress=seen.append)
    assert res.summary["images"] == 3
    assert {p.kind for p in res.parts} >= {"mesh", "points", "cameras", "class"}
    assert seen and all(isinstance(p, client.Progress) for p in seen)
    again = client.fetch(backend.address, res.job)
    assert [p.name for p in again.parts] == [p.name for p in res.parts]
    for a, b in zip(res.parts, again.parts):
        for k in a.arrays:
            np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    with client.Client(backend.address) as c:
        jobs = c.list_jobs()
        assert res.job in [j["job"] for j in jobs]
        assert c.status(res.job)["state"] == "done"


def test_server_errors_are_readable(backend, tmp_path):
    folder = make_image_folder(tmp_path / "imgs", 2)
    with client.Client(backend.address) as c:
        with pytest.raises(client.ClientError) as e:
            c.submit(str(folder), preset="fast", overrides={"train": {"iterations": 0}})
        assert e.value.error.code == "invalid_settings"
        assert str(e.value).startswith("The server rejected a setting: ") and "iterations" in str(e.value)
        with pytest.raises(client.ClientError) as e:
            c.fetch("no_such_job_123")
        assert e.value.error.code == "unknown_job" and "does not know this job" in str(e.value)
        with pytest.raises(client.ClientError) as e:
            c.submit(str(tmp_path / "missing"))
        assert e.value.error.code == "input" and "does not exist" in str(e.value)


def test_failed_job_reports_its_reason(backend, tmp_path):
    folder = make_image_folder(tmp_path / "imgs", 2, {"fail": "bad_input"})
    with pytest.raises(client.ClientError) as e:
        client.submit_and_wait(backend.address, str(folder), preset="fast", timeout_s=60)
    assert e.value.error.code == "bad_input"
    assert str(e.value).startswith("The reconstruction could not read the inputs: ")
    assert "not a usable image (test)" in str(e.value)


def test_cancel_running_job(backend, tmp_path):
    folder = make_image_folder(tmp_path / "imgs", 2, {"steps": 400, "step_s": 0.05})
    with client.Client(backend.address) as c:
        acc = c.submit(str(folder), preset="fast")
        _events_until(c.conn, lambda m: isinstance(m, client.Progress) and m.job == acc.job, 60)
        rec = c.cancel(acc.job)
        assert rec["state"] == "cancelled"


def test_unreachable_server_times_out_readably():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.time()
    with client.Client(f"127.0.0.1:{port}", timeout_s=1.0) as c:
        with pytest.raises(client.ClientError) as e:
            c.server_info()
    assert time.time() - t0 < 5
    assert e.value.error.code == "unreachable"
    assert str(e.value).startswith(f"No answer from tcp://127.0.0.1:{port} within 1 s")


def test_curve_keys_validation(tmp_path):
    zmq = pytest.importorskip("zmq")
    import zmq.auth

    pub_file, sec_file = zmq.auth.create_certificates(str(tmp_path), "client")
    pub, sec = client.load_key_file(sec_file)
    assert len(pub) == 40 and len(sec) == 40
    assert client.load_key_file(pub_file)[1] is None
    client.CurveKeys(pub, pub, sec).validate()
    with pytest.raises(ValueError, match="40 Z85 characters"):
        client.CurveKeys("short", pub, sec).validate()
    with pytest.raises(ValueError, match="does not exist"):
        client.load_key_file(tmp_path / "missing.key")


@pytest.fixture(scope="module")
def curve_server(tmp_path_factory):
    import subprocess

    from addon_testlib import BACKEND_PYTHON, REPO, BackendServer, have_backend

    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    keys = tmp_path_factory.mktemp("keys")
    subprocess.run([str(BACKEND_PYTHON), "-m", "backend.keys", "generate", str(keys)], cwd=REPO, check=True,
                   capture_output=True)
    srv = BackendServer(tmp_path_factory.mktemp("curve") / "jobs",
                        runner=str(REPO / "tests" / "addon" / "addon_runner.py") + ":run",
                        extra=["--curve-secret-key", str(keys / "server.key_secret"),
                               "--curve-authorized-dir", str(keys / "authorized")])
    yield srv, keys
    srv.stop()


def test_curve_encrypted_session(curve_server, tmp_path):
    srv, keys = curve_server
    server_pub, _ = client.load_key_file(keys / "server.key")
    pub, sec = client.load_key_file(keys / "client.key_secret")
    folder = make_image_folder(tmp_path / "imgs", 2)
    res = client.submit_and_wait(srv.address, str(folder), preset="fast", keys=client.CurveKeys(server_pub, pub, sec),
                                 timeout_s=60)
    assert res.summary["images"] == 2
    with client.Client(srv.address, keys=client.CurveKeys(server_pub, pub, sec)) as c:
        assert c.server_info().curve is True


def test_curve_unauthorised_or_missing_key_is_refused_readably(curve_server):
    import zmq

    srv, keys = curve_server
    server_pub, _ = client.load_key_file(keys / "server.key")
    stranger_pub, stranger_sec = (k.decode() for k in zmq.curve_keypair())
    with client.Client(srv.address, keys=client.CurveKeys(server_pub, stranger_pub, stranger_sec),
                       timeout_s=2.0) as c:
        with pytest.raises(client.ClientError) as e:
            c.server_info()
    # the server drops unauthorised clients during the handshake; the socket monitor says why
    assert e.value.error.code == "auth"
    assert str(e.value) == f"{srv.address}: the server rejected this client's CURVE key (not in its authorised folder?)"
    with client.Client(srv.address, timeout_s=2.0) as c:  # no keys at all against an encrypted server
        with pytest.raises(client.ClientError) as e:
            c.server_info()
    assert e.value.error.code == "auth" and "encrypted handshake failed" in str(e.value)


def test_server_restart_mid_job_reattaches_and_reports(tmp_path):
    """Kill the server during a job and start it again on the same port and job store: the connection
    reconnects by itself, re-subscribes, and the job ends with a readable job_interrupted error."""
    from addon_testlib import REPO, BackendServer, have_backend

    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    runner = str(REPO / "tests" / "addon" / "addon_runner.py") + ":run"
    bind = ["--bind", f"tcp://127.0.0.1:{port}"]
    srv = BackendServer(tmp_path / "a" / "jobs", runner=runner, extra=bind)
    folder = make_image_folder(tmp_path / "imgs", 2, {"steps": 400, "step_s": 0.05})
    conn = client.Connection(srv.address, timeout_s=3).start()
    srv2 = None
    try:
        conn.submit(str(folder), preset="fast")
        msgs = _events_until(conn, lambda m: isinstance(m, client.Progress), 60)
        job = next(m for m in msgs if isinstance(m, client.Accepted)).job
        srv.stop()
        srv2 = BackendServer(tmp_path / "b" / "jobs", runner=runner,
                             extra=bind + ["--jobs-dir", str(tmp_path / "a" / "jobs")])
        end = _events_until(conn, lambda m: isinstance(m, (client.Error, client.Done, client.Cancelled)), 60)[-1]
    finally:
        conn.close()
        if srv2 is not None:
            srv2.stop()
    assert isinstance(end, client.Error) and end.job == job
    assert end.code == "job_interrupted" and end.text().startswith("The server stopped while the job ran")


def test_blocking_wait_times_out_readably(backend, tmp_path):
    folder = make_image_folder(tmp_path / "imgs", 2, {"steps": 400, "step_s": 0.05})
    with client.Client(backend.address) as c:
        acc = c.submit(str(folder), preset="fast")
        with pytest.raises(client.ClientError) as e:
            c.collect(acc.re, acc.job, timeout_s=1.0)
        assert e.value.error.code == "timeout"
        assert str(e.value) == f"job {acc.job} did not finish within 1 s (it keeps running on the server)"
        assert c.cancel(acc.job)["state"] == "cancelled"
