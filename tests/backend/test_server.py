"""Server mechanics over real loopback sockets, with the stand-in runner (tests/backend/runner.py)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aligngs.wire import read_parts
from backend.client import Client, JobCancelled, JobFailed, ServerError
from backend.protocol import encode_header

from backend_testlib import PY, REPO, launch, pid_alive, scene_files, wait_for


def assert_same_parts(result, out_dir: Path, *, with_files: bool = True):
    """Every received part equals what the runner wrote on disk, byte for byte (same order, dtypes, shapes)."""
    manifest, disk = read_parts(out_dir / "result", mmap=False)
    got = [p for p in result.parts if p.kind != "file"]
    assert [p.name for p in got] == [p.name for p in disk]
    for g, d in zip(got, disk):
        assert g.kind == d.kind and g.meta == d.meta
        assert list(g.arrays) == list(d.arrays)
        for k in d.arrays:
            a, b = g.arrays[k], d.arrays[k]
            assert a.dtype == b.dtype and a.shape == b.shape, (g.name, k)
            assert a.tobytes() == b.tobytes(), (g.name, k)
    files = [p for p in result.parts if p.kind == "file"]
    if with_files:
        assert [p.name for p in files] == ["gaussians.ply"]  # mesh.ply is not a 3DGS PLY
        assert files[0].arrays["data"].tobytes() == (out_dir / "gaussians.ply").read_bytes()
        assert files[0].meta == {"filename": "gaussians.ply", "format": "ply", "layout": "3dgs",
                                 "nbytes": (out_dir / "gaussians.ply").stat().st_size}
    else:
        assert files == []
    assert result.scene == manifest["scene"] and result.up == manifest["up"]


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def test_round_trip_progress_parts_and_fetch(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    welcome = c.hello()
    assert welcome["protocol"] == 1 and welcome["limits"]["chunk_bytes"] == 8 << 20
    assert welcome["presets"]["fast"]["train"]["iterations"] == 600 and welcome["defaults"]["train"]["iterations"] == 7000
    files = scene_files(1, n=3, points=800_000, preview=True, steps=4)
    job, seq = c.submit(files, preset="fast", overrides={"train": {"iterations": 30}}, name="room")
    previews = []
    result = c.wait(job, seq, timeout=60, on_progress=lambda m: previews.append((m.header["iteration"], m.array(m.header["preview"])))
                    if m.header["preview"] else None)
    out = sp.jobs_dir / job / "out"
    assert_same_parts(result, out)
    # 800k points: positions (9.6 MB) and class_id/confidence (3.2 MB) cross the 8 MiB chunk size only for positions
    assert result.part("points").arrays["positions"].shape == (800_000, 3)
    # progress: every stage in order, train iterations, previews as sent
    stages = [p["stage"] for p in result.progress]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == \
        ["load", "poses", "priors", "init", "train", "mesh", "semantics", "export"]
    its = [p["iteration"] for p in result.progress if p["stage"] == "train" and p["iteration"]]
    assert its[-1] == 4 and its == sorted(its)
    assert previews and all(p.shape == (30, 40, 3) and p.dtype == np.uint8 for _, p in previews)
    assert all((p == it).all() for it, p in previews)  # the runner fills iteration i's preview with i
    # the summary: what the job saw is what was sent; NaN became null; settings reached the job
    done = result.done
    assert done["summary"]["inputs"] == digests(files)
    assert done["metrics"] == {"psnr": 21.5, "nan_metric": None}
    assert done["summary"]["iterations"] == 30 and done["summary"]["device"] == "cpu"
    assert done["record"]["state"] == "done" and done["parts"] == 5
    # fetch from another client: same bytes; filters
    c2 = clients(sp.endpoint)
    again = c2.fetch(job, timeout=60)
    assert_same_parts(again, out)
    small = c2.fetch(job, files=False, parts=["mesh", "cameras"])
    assert [p.name for p in small.parts] == ["mesh", "cameras"]
    assert small.part("cameras").meta["names"] == ["0000.jpg", "0001.jpg", "0002.jpg"]
    rec = c2.status(job)
    assert rec["state"] == "done" and rec["name"] == "room" and rec["n_inputs"] == 4
    assert rec["settings"]["train"]["iterations"] == 30 and rec["settings"]["data"]["resolution"] == 160
    log = c2.log(job)
    assert f"[job {job}]" in log and "finished with done" in log


def test_failures_are_reported_and_server_survives(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    job, seq = c.submit(scene_files(2, crash="raise"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq)
    assert e.value.code == "job_failed" and "runner asked to crash" in e.value.header["message"]
    job, seq = c.submit(scene_files(3, crash="bad_input"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq)
    assert e.value.code == "bad_input" and "control.json" in e.value.header["message"]
    job, seq = c.submit(scene_files(4, crash="segv"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq)
    assert e.value.code == "worker_died" and e.value.header["signal"] == "SIGSEGV"
    job, seq = c.submit(scene_files(5, crash="exit"), preset="fast")
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq)
    assert e.value.code == "worker_died" and e.value.header["exit_code"] == 3
    assert "job_failed" not in c.log(job) and c.status(job)["error"]["code"] == "worker_died"
    # still serving, and a good job after all that works
    job, seq = c.submit(scene_files(6), preset="fast")
    assert len(c.wait(job, seq).parts) == 5


def test_kill_9_worker_mid_job(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    job, seq = c.submit(scene_files(7, steps=400, step_s=0.05), preset="fast")
    c.take(lambda m: m.type == "progress" and m.header["stage"] == "train", timeout=30)
    pid = int(wait_for(lambda: (sp.jobs_dir / job / "out" / "runner.pid").exists() and
                       (sp.jobs_dir / job / "out" / "runner.pid").read_text()))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(JobFailed) as e:
        c.wait(job, seq, timeout=20)
    assert e.value.code == "worker_died" and e.value.header["signal"] == "SIGKILL"
    assert "out of memory" in e.value.header["message"]
    assert c.status(job)["state"] == "failed"
    assert c.ping() > 0
    job2, seq2 = c.submit(scene_files(8), preset="fast")
    c.wait(job2, seq2)
    # a failed job can be resubmitted under the same id (and cancelled again)
    seq3 = c.resubmit(job)
    c.take(lambda m: m.type == "progress" and m.job == job and m.re == seq3 and m.header["stage"] == "train", timeout=30)
    assert c.status(job)["attempt"] == 2
    assert c.cancel(job, timeout=15)["record"]["state"] == "cancelled"
    with pytest.raises(JobCancelled):
        c.wait(job, seq3, timeout=5)


def test_cancel_running_queued_and_stubborn(servers, clients):
    sp = servers("--cancel-grace", "1")
    c = clients(sp.endpoint)
    running, rseq = c.submit(scene_files(9, steps=1000, step_s=0.05), preset="fast")
    queued, qseq = c.submit(scene_files(10), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == running and m.header["stage"] == "train", timeout=30)
    assert c.status(queued)["state"] == "queued" and c.status(queued)["position"] == 0
    # queued: cancelled at once
    assert c.cancel(queued)["record"]["state"] == "cancelled"
    with pytest.raises(JobCancelled):
        c.wait(queued, qseq, timeout=5)
    # running: the runner polls should_cancel between steps
    t0 = time.monotonic()
    rep = c.cancel(running, timeout=10)
    assert rep["type"] == "cancelled" and rep["record"]["state"] == "cancelled"
    assert time.monotonic() - t0 < 3
    with pytest.raises(JobCancelled):
        c.wait(running, rseq, timeout=5)
    # stubborn: ignores the flag, terminated after the 1 s grace period
    stub, sseq = c.submit(scene_files(11, steps=1000, step_s=0.05, ignore_cancel=True), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == stub and m.header["stage"] == "train", timeout=30)
    t0 = time.monotonic()
    assert c.cancel(stub, timeout=10)["record"]["state"] == "cancelled"
    assert 0.9 < time.monotonic() - t0 < 6
    # cancelling a finished job is an error; cancelling again is fine
    assert c.cancel(stub)["type"] == "cancelled"
    with pytest.raises(ServerError) as e:
        c.cancel("nosuchjob123")
    assert e.value.code == "unknown_job"


def test_reattach_from_a_new_socket(servers, clients):
    sp = servers()
    a = clients(sp.endpoint)
    job, seq = a.submit(scene_files(12, steps=30, step_s=0.05, points=300_000), preset="fast")
    a.take(lambda m: m.type == "progress" and m.header["stage"] == "train", timeout=30)
    a.close()  # gone mid-job
    b = clients(sp.endpoint)
    bseq, rec = b.subscribe(job)
    assert rec["state"] == "running" and rec["progress"]["stage"] == "train"
    result = b.wait(job, bseq, timeout=60)
    assert result.progress and result.progress[-1]["stage"] == "export"
    assert_same_parts(result, sp.jobs_dir / job / "out")
    # subscribing to a finished job delivers its result right away; a failed one its failure
    c = clients(sp.endpoint)
    cseq, rec = c.subscribe(job)
    assert rec["state"] == "done"
    assert_same_parts(c.wait(job, cseq, timeout=30), sp.jobs_dir / job / "out")


def test_three_clients_four_jobs_each_on_one_worker(servers, clients):
    sp = servers("--workers", "1")
    cs = [clients(sp.endpoint) for _ in range(3)]
    sent = {}
    for k in range(4):
        for i, c in enumerate(cs):
            files = scene_files(100 + 10 * i + k, n=2)
            job, seq = c.submit(files, preset="fast", name=f"c{i}j{k}")
            sent[job] = (c, seq, files)
    assert len(set(sent)) == 12
    for job, (c, seq, files) in sent.items():
        res = c.wait(job, seq, timeout=120)
        assert res.done["summary"]["inputs"] == digests(files)
    jobs = cs[0].list(state="done")
    assert {j["job"] for j in jobs} == set(sent)
    starts = sorted(j["started"] for j in jobs)
    ends = sorted(j["finished"] for j in jobs)
    assert all(s >= e - 0.5 for s, e in zip(starts[1:], ends[:-1]))  # one worker: no overlap
    # FIFO: started in submission order
    created_order = [j["job"] for j in sorted(jobs, key=lambda j: j["created"])]
    started_order = [j["job"] for j in sorted(jobs, key=lambda j: j["started"])]
    assert created_order == started_order


def test_restart_keeps_finished_interrupts_running_requeues_queued(servers, clients, tmp_path):
    sp = servers("--workers", "1")
    c = clients(sp.endpoint)
    done_job, dseq = c.submit(scene_files(20), preset="fast")
    c.wait(done_job, dseq)
    slow, sseq = c.submit(scene_files(21, steps=2000, step_s=0.05), preset="fast")
    waiting, wseq = c.submit(scene_files(22), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == slow and m.header["stage"] == "train", timeout=30)
    pid = int((sp.jobs_dir / slow / "out" / "runner.pid").read_text())
    sp.kill9()  # no chance to clean up
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the orphaned worker to exit")
    c.close()
    sp2 = servers("--workers", "1", jobs_dir=sp.jobs_dir)
    c2 = clients(sp2.endpoint)
    states = {j["job"]: j["state"] for j in c2.list()}
    assert states[done_job] == "done" and states[slow] == "interrupted"
    assert states[waiting] in ("queued", "running", "done")  # queued again on restart
    assert c2.status(slow)["error"]["code"] == "job_interrupted"
    assert_same_parts(c2.fetch(done_job), sp.jobs_dir / done_job / "out")
    wseq2, _ = c2.subscribe(waiting)
    c2.wait(waiting, wseq2, timeout=30)
    seq = c2.subscribe(slow)[0]
    with pytest.raises(JobFailed) as e:
        c2.wait(slow, seq)
    assert e.value.header["state"] == "interrupted" and e.value.code == "job_interrupted"
    # interrupted jobs are resubmittable (same id, same inputs)
    rseq = c2.resubmit(slow)
    c2.take(lambda m: m.type == "progress" and m.job == slow and m.re == rseq and m.header["stage"] == "train", timeout=30)
    assert c2.status(slow)["attempt"] == 2
    assert c2.cancel(slow, timeout=15)["record"]["state"] == "cancelled"
    c2.delete(done_job)
    with pytest.raises(ServerError) as e:
        c2.status(done_job)
    assert e.value.code == "unknown_job" and not (sp.jobs_dir / done_job).exists()
    # a graceful stop (SIGTERM) ends running jobs as interrupted, tells attached clients, and exits 0
    seq = c2.resubmit(slow)
    c2.take(lambda m: m.type == "progress" and m.job == slow and m.re == seq and m.header["stage"] == "train", timeout=30)
    pid = int((sp.jobs_dir / slow / "out" / "runner.pid").read_text())
    assert sp2.stop() == 0
    with pytest.raises(JobFailed) as e:
        c2.wait(slow, seq, timeout=5)
    assert e.value.code == "job_interrupted"
    assert json.loads((sp.jobs_dir / slow / "state.json").read_text())["state"] == "interrupted"
    assert not pid_alive(pid)


def test_server_path_submit(servers, clients, tmp_path):
    folder = tmp_path / "scene"
    (folder / "images").mkdir(parents=True)
    files = scene_files(30)
    for k, v in files.items():
        (folder / k).write_bytes(v)
    sp = servers("--allow-server-paths")
    c = clients(sp.endpoint)
    assert c.hello()["limits"]["server_paths"] is True
    job, seq = c.submit(server_path=str(folder), preset="fast")
    assert c.wait(job, seq).done["summary"]["inputs"] == digests(files)
    with pytest.raises(ServerError) as e:
        c.submit(server_path=str(folder / "missing"), preset="fast")
    assert e.value.code == "invalid_path"


def test_curve_authorised_client_only(servers, clients, tmp_path):
    keys = tmp_path / "keys"
    env = dict(os.environ)
    r = subprocess.run([PY, "-m", "backend.keys", "generate", str(keys)], cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([PY, "-m", "backend.keys", "client", str(tmp_path / "other"), "--name", "mallory"],
                       cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    sp = servers("--curve-secret-key", str(keys / "server.key_secret"), "--curve-authorized-dir", str(keys / "authorized"))
    good = clients(sp.endpoint, server_key=keys / "server.key", client_key_file=keys / "client.key_secret", timeout=10)
    assert good.hello()["curve"] is True
    plain = clients(sp.endpoint, timeout=2)
    with pytest.raises(TimeoutError):
        plain.ping()
    stranger = clients(sp.endpoint, server_key=keys / "server.key", client_key_file=tmp_path / "other" / "mallory.key_secret", timeout=2)
    with pytest.raises(TimeoutError):
        stranger.ping()
    job, seq = good.submit(scene_files(31), preset="fast")
    assert len(good.wait(job, seq).parts) == 5


def test_non_loopback_bind_needs_keys_or_insecure(tmp_path):
    sp = launch(tmp_path, bind="tcp://0.0.0.0:*", wait=False)
    assert sp.proc.wait(60) == 2
    assert "refusing to bind" in sp.log()
    sp = launch(tmp_path, "--insecure", bind="tcp://0.0.0.0:*")
    try:
        port = sp.endpoint.rsplit(":", 1)[1]
        with Client(f"tcp://127.0.0.1:{port}", timeout=10) as c:
            assert c.ping() > 0
        assert "without encryption" in sp.log()
    finally:
        assert sp.stop() == 0
