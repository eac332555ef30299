"""The scheduler on its own (a scripted executor, no processes): FIFO over slots, cancel escalation, how an ended
job is classified, an executor that fails; and the Ray task's file-tree helpers (no Ray needed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.devices import Slot
from backend.errors import ExecutorError
from backend.executors import Executor, Exit
from backend.executors.ray_task import read_tree, write_tree
from backend.jobs import JobRecord, JobStore
from backend.scheduler import Scheduler


class ScriptedExecutor(Executor):
    """Records calls; a job ends when the test sets ``exits[job]``."""

    name = "scripted"

    def __init__(self, n_slots: int = 1):
        self._slots = [Slot(i, "cpu", "cpu", None) for i in range(n_slots)]
        self.calls: list[tuple[str, str]] = []
        self.exits: dict[str, Exit | Exception] = {}
        self.fail_start: set[str] = set()

    def slots(self):
        return self._slots

    def describe(self, slots):
        return "scripted"

    def progress_bind(self, tmp_dir):
        return "inproc://x"

    def start(self, spec, slot):
        if spec["job"] in self.fail_start:
            raise ExecutorError("no room")
        self.calls.append(("start", spec["job"]))
        return spec

    def poll(self, handle):
        ex = self.exits.get(handle["job"])
        if isinstance(ex, Exception):
            raise ex
        return ex

    def cancel(self, handle):
        self.calls.append(("cancel", handle["job"]))

    def terminate(self, handle):
        self.calls.append(("terminate", handle["job"]))

    def kill(self, handle):
        self.calls.append(("kill", handle["job"]))

    def stop_all(self, handles, grace):
        self.calls.extend(("stop", h["job"]) for h in handles)


class Events:
    def __init__(self):
        self.ended: list[tuple[str, str]] = []

    def job_progress(self, job, body, preview, frames):
        pass

    def job_ended(self, rec):
        self.ended.append((rec.job, rec.state))


def make(tmp_path: Path, n_slots: int = 1, grace: float = 0.0):
    ex, ev = ScriptedExecutor(n_slots), Events()
    store = JobStore(tmp_path / "jobs")
    return Scheduler(store, ex, ev, runner="x:y", log_level="INFO", cancel_grace=grace), ex, ev, store


def add(sched: Scheduler, store: JobStore, name: str) -> JobRecord:
    rec = JobRecord(job=f"job{name}xxxxxx", name=name)
    store.create(rec)
    sched.add(rec)
    return rec


def outcome(store: JobStore, rec: JobRecord, **o) -> None:
    store.outcome_path(rec.job).write_text(json.dumps(o))


def test_fifo_over_slots_and_outcomes(tmp_path):
    sched, ex, ev, store = make(tmp_path, n_slots=2)
    a, b, c = (add(sched, store, n) for n in "abc")
    sched.schedule()
    assert ex.calls == [("start", a.job), ("start", b.job)] and sched.position(c.job) == 0
    assert a.state == b.state == "running" and c.state == "queued"
    outcome(store, a, status="error", code="missing_model", message="checkpoint 'm' is not here. Fetch it.",
            fix="Fetch it.", model="m")
    ex.exits[a.job] = Exit(exit_code=0)
    ex.exits[b.job] = Exit(exit_code=-9, signal="SIGKILL")
    sched.tick(lambda: None)
    assert a.state == "failed" and a.error == {"code": "missing_model", "message": "checkpoint 'm' is not here. Fetch it.",
                                               "fix": "Fetch it.", "model": "m"}
    assert a.exit_code is None  # the worker reported the failure: no exit code to speak of
    assert b.state == "failed" and b.error["code"] == "worker_died" and "SIGKILL" in b.error["message"]
    assert ("start", c.job) in ex.calls and c.state == "running"  # the freed slot takes the next job
    assert json.loads((store.dir(a.job) / "state.json").read_text())["state"] == "failed"
    # a done outcome without a readable result is a failure, not a done job
    outcome(store, c, status="done", summary={})
    ex.exits[c.job] = Exit(exit_code=0)
    sched.tick(lambda: None)
    assert c.state == "failed" and "without a readable result" in c.error["message"]
    assert ev.ended == [(a.job, "failed"), (b.job, "failed"), (c.job, "failed")]


def test_cancel_escalates_and_an_executor_reason_is_kept(tmp_path):
    sched, ex, ev, store = make(tmp_path, grace=0.0)
    a, b = add(sched, store, "a"), add(sched, store, "b")
    sched.schedule()
    assert sched.cancel(b) is True and b.state == "cancelled"  # queued: at once
    assert sched.cancel(a) is False and a.state == "cancelling"
    sched.tick(lambda: None)  # grace 0: terminate now
    sched.running[a.job].kill_deadline = 0.0
    sched.tick(lambda: None)  # ignored SIGTERM: kill
    assert [c for c in ex.calls if c[1] == a.job] == [("start", a.job), ("cancel", a.job), ("terminate", a.job), ("kill", a.job)]
    ex.exits[a.job] = Exit(cancelled=True, reason="the Ray task was cancelled")
    sched.tick(lambda: None)
    assert a.state == "cancelled"
    # a job whose node died: the executor's reason becomes the message
    c = add(sched, store, "c")
    sched.tick(lambda: None)
    ex.exits[c.job] = Exit(reason="the Ray node or worker running the job died (NodeDiedError: node 10.0.0.5)")
    sched.tick(lambda: None)
    assert c.state == "failed" and c.error == {"code": "worker_died", "message": ex.exits[c.job].reason}


def test_an_executor_that_fails_never_leaves_a_job_running(tmp_path):
    sched, ex, ev, store = make(tmp_path)
    a = add(sched, store, "a")
    ex.fail_start.add(a.job)
    sched.schedule()
    assert a.state == "failed" and a.error == {"code": "worker_died", "message": "no room"}
    b = add(sched, store, "b")
    sched.tick(lambda: None)
    ex.exits[b.job] = ConnectionError("GCS unreachable")
    sched.tick(lambda: None)  # must not raise into the server loop
    assert b.state == "failed" and "lost the job: ConnectionError: GCS unreachable" in b.error["message"]
    assert not sched.running and sched.slots[0].job is None


def test_restart_marks_running_interrupted_and_requeues_in_order(tmp_path):
    sched, ex, ev, store = make(tmp_path)
    a, b, c = (add(sched, store, n) for n in "abc")
    sched.schedule()
    d = add(sched, store, "d")
    sched.cancel(a)
    assert a.state == "cancelling"
    sched2, *_ = make(tmp_path)
    sched2.load()
    states = {j: r.state for j, r in sched2.jobs.items()}
    assert states == {a.job: "cancelled", b.job: "queued", c.job: "queued", d.job: "queued"}
    assert list(sched2.queue) == [b.job, c.job, d.job]


def test_tree_helpers_round_trip_and_refuse_escapes(tmp_path):
    files = {"images/0001.jpg": b"\xff\xd8\xff1", "transforms.json": b"{}", "sparse/0/cameras.bin": b"\x00" * 10}
    write_tree(tmp_path / "in", files)
    (tmp_path / "in" / "link").symlink_to(tmp_path / "in" / "transforms.json")
    assert read_tree(tmp_path / "in") == files  # symlinks are not followed
    for bad in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(ValueError):
            write_tree(tmp_path / "out", {bad: b"x"})
    assert not (tmp_path / "x").exists()
    assert read_tree(tmp_path / "missing") == {}


def test_the_local_executor_never_imports_ray():
    import subprocess
    import sys

    code = ("import sys, backend.serve, backend.server; from backend.executors import make_executor;"
            "from backend.devices import make_slots; make_executor('local', slots=make_slots('cpu'));"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


class FakeRay:
    """Just enough of the ``ray`` module for RayExecutor's bookkeeping on a GPU cluster (no Ray, no GPU)."""

    def __init__(self, resources, nodes):
        self.resources, self._nodes, self.options, self.init_kw = resources, nodes, None, None
        self.util = type("util", (), {"get_node_ip_address": staticmethod(lambda: "10.0.0.1")})

    def init(self, **kw):
        self.init_kw = kw

    def cluster_resources(self):
        return self.resources

    def nodes(self):
        return self._nodes

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **opts):
                fake.options = opts
                return self

        return Task()


def test_ray_executor_slots_on_a_gpu_cluster(monkeypatch):
    from backend.executors import ray as ray_executor

    nodes = [{"Alive": True, "NodeManagerAddress": "10.0.0.2", "Resources": {"GPU": 2.0, "CPU": 16.0}},
             {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"GPU": 1.0, "CPU": 8.0}},
             {"Alive": False, "NodeManagerAddress": "10.0.0.3", "Resources": {"GPU": 4.0, "CPU": 8.0}}]
    fake = FakeRay({"GPU": 3.0, "CPU": 24.0}, nodes)
    monkeypatch.setattr(ray_executor, "import_ray", lambda: fake)
    ex = ray_executor.RayExecutor(address="auto", device="auto")
    assert fake.init_kw["address"] == "auto" and fake.init_kw["namespace"] == "aligngs"
    assert [s.device for s in ex.slots()] == ["cuda"] * 3 and all(s.kind == "cuda" for s in ex.slots())
    assert fake.options == {"max_retries": 0, "retry_exceptions": False, "num_gpus": 1, "num_cpus": 1}
    ex.slots()[1].job, ex.slots()[1].node = "jobAAAAAAAA", "10.0.0.2"
    assert ex.workers(ex.slots()) == [
        {"slot": 0, "device": "cuda:0", "name": "GPU 0 @ 10.0.0.1", "node": "10.0.0.1", "job": None},
        {"slot": 1, "device": "cuda:0", "name": "GPU 0 @ 10.0.0.2", "node": "10.0.0.2", "job": "jobAAAAAAAA"},
        {"slot": 2, "device": "cuda:1", "name": "GPU 1 @ 10.0.0.2", "node": "10.0.0.2", "job": None},
    ]
    assert ex.describe(ex.slots()) == "ray: 2 node(s), 3 GPU, 3 concurrent job(s)"
    assert ex.progress_bind(None) == "tcp://10.0.0.1:*"
    # CPU jobs on the same cluster when asked, two CPUs each, capped by --workers
    ex = ray_executor.RayExecutor(address="auto", device="cpu", cpus_per_job=2, workers=5, retries=1)
    assert [s.device for s in ex.slots()] == ["cpu"] * 5
    assert fake.options == {"max_retries": 1, "retry_exceptions": False, "num_cpus": 2.0}
    assert len(ex.workers(ex.slots())) == 16 // 2 + 8 // 2
    with pytest.raises(ExecutorError, match="no GPU"):
        monkeypatch.setattr(fake, "resources", {"CPU": 4.0})
        ray_executor.RayExecutor(address="auto", device="cuda")
