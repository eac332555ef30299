"""The Ray executor against a REAL two-node Ray cluster on loopback, started and stopped here (tests/backend/ray_cluster.py).

Each node has one CPU and each job reserves one, so two jobs run at a time, one per node. The jobs are the stand-in
runner's (tests/backend/runner.py): seconds each, so the whole file fits the 2-core CI machines. Skipped only when
Ray cannot be imported (it is the optional extra ``cluster``).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (the optional extra 'cluster': pip install -e '.[cluster]')")

from backend.client import JobCancelled, JobFailed  # noqa: E402

from backend_testlib import PY, REPO, launch, pid_alive, scene_files, wait_for  # noqa: E402
from ray_cluster import RAY_ENV, server_args, start_cluster  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    c = start_cluster(n_nodes=2, cpus_per_node=1)
    yield c
    c.stop()


def tree_digests(folder: Path, skip=("runner.pid",)) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def result_bytes(res) -> list:
    return [(p.name, p.kind, p.meta, [(k, a.dtype.str, a.shape, a.tobytes()) for k, a in p.arrays.items()]) for p in res.parts]


def job_processes(job: str) -> list[int]:
    """PIDs of processes whose command line mentions the job id (the Ray task's worker child runs in aligngs-<job>-*)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if job.encode() in (d / "cmdline").read_bytes() and pid_alive(int(d.name)):
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def test_three_clients_three_jobs_match_the_local_executor(cluster, servers, clients, tmp_path):
    rs = servers(*server_args(cluster), jobs_dir=tmp_path / "ray-jobs", env=RAY_ENV)
    ls = servers("--workers", "2", jobs_dir=tmp_path / "local-jobs")
    welcome = clients(rs.endpoint).hello()
    assert welcome["executor"] == "ray" and welcome["device"].startswith("ray: 2 node(s)")
    assert sorted(w["node"] for w in welcome["workers"]) == ["127.0.0.2", "127.0.0.3"]
    rcs = [clients(rs.endpoint, timeout=120) for _ in range(3)]
    sent = {}
    for k in range(3):
        for i, c in enumerate(rcs):
            ctl = dict(steps=3, points=900_000 if (i, k) == (0, 0) else 2000)
            if (i, k) == (1, 1):  # previews (image + points) flow back from the node while it trains
                ctl.update(step_s=0.6, preview=True, point_preview=300)
            files = scene_files(200 + 10 * i + k, n=2, **ctl)
            seed = 7 * i + k
            job, seq = c.submit(files, preset="fast", overrides={"train": {"seed": seed}}, name=f"c{i}j{k}")
            sent[job] = (c, seq, files, seed)
    lc = clients(ls.endpoint, timeout=120)
    nodes = set()
    previews = []
    for job, (c, seq, files, seed) in sent.items():
        res = c.wait(job, seq, timeout=180, on_progress=lambda m: previews.append(
            (m.array(m.header["preview"]).shape if m.header.get("preview") else None,
             m.points().n if m.header.get("points") else None)))
        assert res.done["summary"]["inputs"] == {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
        rec = c.status(job)
        assert rec["state"] == "done" and rec["node"] in ("127.0.0.2", "127.0.0.3")
        nodes.add(rec["node"])
        ljob, lseq = lc.submit(files, preset="fast", overrides={"train": {"seed": seed}})
        lres = lc.wait(ljob, lseq, timeout=120)
        assert result_bytes(res) == result_bytes(lres)  # byte-identical results over the wire
        assert tree_digests(rs.jobs_dir / job / "out") == tree_digests(ls.jobs_dir / ljob / "out")  # and in the store
        assert "ran on Ray node" in c.log(job) and "finished with done" in c.log(job)
    assert nodes == {"127.0.0.2", "127.0.0.3"}  # both nodes took jobs
    assert any(img == (30, 40, 3) for img, _ in previews) and any(n == 300 for _, n in previews)


def test_cancel_reaches_a_running_ray_task(cluster, servers, clients, tmp_path):
    sp = servers(*server_args(cluster, "--cancel-grace", "1"), env=RAY_ENV)
    c = clients(sp.endpoint, timeout=60)
    job, seq = c.submit(scene_files(40, steps=2000, step_s=0.05), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == job and m.header["stage"] == "train", timeout=60)
    assert job_processes(job)
    wait_for(lambda: f"job {job}: running" in c.log(job), timeout=15, what="the running job's log from its node")
    t0 = time.monotonic()
    assert c.cancel(job, timeout=30)["record"]["state"] == "cancelled"
    assert time.monotonic() - t0 < 10
    with pytest.raises(JobCancelled):
        c.wait(job, seq, timeout=5)
    wait_for(lambda: not job_processes(job), timeout=15, what="the job's processes on the node to end")
    # a job that ignores the flag is forced off its node after the grace period
    stub, sseq = c.submit(scene_files(41, steps=2000, step_s=0.05, ignore_cancel=True), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == stub and m.header["stage"] == "train", timeout=60)
    assert c.cancel(stub, timeout=30)["record"]["state"] == "cancelled"
    wait_for(lambda: not job_processes(stub), timeout=20, what="the stubborn job's processes to end")
    # the cluster still runs jobs afterwards
    job2, seq2 = c.submit(scene_files(42), preset="fast")
    assert len(c.wait(job2, seq2, timeout=120).parts) == 5


def test_server_restart_with_ray_jobs_running_loses_no_finished_result(cluster, servers, clients, tmp_path):
    jobs_dir = tmp_path / "jobs"
    sp = servers(*server_args(cluster, "--workers", "1"), jobs_dir=jobs_dir, env=RAY_ENV)
    c = clients(sp.endpoint, timeout=60)
    done_job, dseq = c.submit(scene_files(50), preset="fast")
    first = c.wait(done_job, dseq, timeout=120)
    slow, _ = c.submit(scene_files(51, steps=2000, step_s=0.05), preset="fast")
    waiting, _ = c.submit(scene_files(52), preset="fast")
    c.take(lambda m: m.type == "progress" and m.job == slow and m.header["stage"] == "train", timeout=60)
    assert job_processes(slow)
    sp.kill9()  # the server dies without cleaning up; its Ray tasks die with their owner
    wait_for(lambda: not job_processes(slow), timeout=60, what="the orphaned Ray task to end")
    sp2 = servers(*server_args(cluster, "--workers", "1"), jobs_dir=jobs_dir, env=RAY_ENV)
    c2 = clients(sp2.endpoint, timeout=60)
    states = {j["job"]: j["state"] for j in c2.list()}
    assert states[done_job] == "done" and states[slow] == "interrupted"
    assert result_bytes(c2.fetch(done_job)) == result_bytes(first)
    wseq, _ = c2.subscribe(waiting)
    c2.wait(waiting, wseq, timeout=120)
    rseq = c2.resubmit(slow)
    c2.take(lambda m: m.type == "progress" and m.job == slow and m.re == rseq and m.header["stage"] == "train", timeout=60)
    assert c2.cancel(slow, timeout=30)["record"]["state"] == "cancelled"
    # a graceful stop (SIGTERM) ends running Ray jobs as interrupted, tells attached clients, and exits 0
    seq = c2.resubmit(slow)
    c2.take(lambda m: m.type == "progress" and m.job == slow and m.re == seq and m.header["stage"] == "train", timeout=60)
    assert sp2.stop() == 0
    with pytest.raises(JobFailed) as e:
        c2.wait(slow, seq, timeout=10)
    assert e.value.code == "job_interrupted"
    wait_for(lambda: not job_processes(slow), timeout=30, what="the interrupted Ray task to end")


def test_a_killed_node_fails_its_job_with_the_reason_and_others_finish(cluster, servers, clients, tmp_path):
    """Last in the file: it kills the second node."""
    sp = servers(*server_args(cluster), env=RAY_ENV)
    c = clients(sp.endpoint, timeout=60)
    a, aseq = c.submit(scene_files(60, steps=200, step_s=0.05), preset="fast")
    b, bseq = c.submit(scene_files(61, steps=200, step_s=0.05), preset="fast")
    wait_for(lambda: all(c.status(j)["node"] for j in (a, b)), timeout=60, what="both jobs to report their node")
    on_node2 = {c.status(j)["node"]: j for j in (a, b)}
    assert set(on_node2) == {"127.0.0.2", "127.0.0.3"}
    victim, survivor = on_node2["127.0.0.3"], on_node2["127.0.0.2"]
    cluster.nodes[1].kill()
    with pytest.raises(JobFailed) as e:
        c.wait(victim, aseq if victim == a else bseq, timeout=120)
    assert e.value.code == "worker_died" and "Ray" in e.value.header["message"]
    assert c.status(victim)["state"] == "failed"
    assert len(c.wait(survivor, aseq if survivor == a else bseq, timeout=120).parts) == 5
    job, seq = c.submit(scene_files(62), preset="fast")
    assert len(c.wait(job, seq, timeout=120).parts) == 5


def test_executor_ray_without_ray_names_the_extra(tmp_path):
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "noray"))
    out = subprocess.run([PY, "-m", "backend.serve", "--executor", "ray", "--bind", "tcp://127.0.0.1:*",
                          "--jobs-dir", str(tmp_path / "jobs")], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "cluster" in out.stderr and "pip install" in out.stderr


def test_an_unreachable_head_fails_fast_and_leaves_nothing(tmp_path):
    out = subprocess.run([PY, "-m", "backend.serve", "--executor", "ray", "--ray-address", "127.0.0.9:9",
                          "--ray-progress-host", "127.0.0.9", "--bind", "tcp://127.0.0.1:*", "--jobs-dir",
                          str(tmp_path / "jobs")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot reach the Ray head at 127.0.0.9:9" in out.stderr
    assert not (tmp_path / "jobs").exists()
