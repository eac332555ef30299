"""The Ray executor (``backend.serve --executor ray``): each job is one Ray task on a Ray cluster.

The server stays the only address clients know and keeps the job store, the queue order and the protocol; Ray
only decides *where* a job runs. Per job:

- **inputs** go through Ray's object store: the server reads the job's input folder into ``{path: bytes}``,
  ``ray.put``\\ s it and passes the reference to the task (no shared file system needed);
- the task (:func:`backend.executors.ray_task.run_job_on_node`) reserves ``num_gpus=1`` on a CUDA cluster or
  ``num_cpus=--ray-cpus-per-job`` on a CPU one and runs ``python -m backend.worker`` in a private temporary folder;
- **progress** (and previews) flow back while it runs over a ZeroMQ PUSH from the worker to a PULL socket the
  server binds on its cluster-network address (``--ray-progress-host``, default this machine's Ray node IP), each
  message carrying the job's one-time token; the first message names the node and device (``record.node``);
- **results** come back as the task's return value (the output folder's files as bytes) and are written into the
  server's job store (``out/``, ``job.log``, then ``outcome.json`` last), so ``fetch``, ``status``, re-attach and
  restart recovery work exactly as with local workers; the job's log lines come over the same PUSH channel about
  once a second while it runs (``{"kind": "log"}``), so ``log`` shows a running job's log too;
- **cancel** is ``ray.cancel`` (the task asks the worker to stop, terminates it after the grace period); if the
  task has not ended after the grace period the server forces it (``ray.cancel(force=True)``);
- **a dead node or worker** makes ``ray.get`` raise; the job ends ``failed`` / ``worker_died`` with Ray's reason,
  unless ``--ray-retries N`` lets Ray re-run it elsewhere first. A server restart marks running jobs
  ``interrupted`` as today (their tasks are owned by the old server process and die with it).

Ray is an optional dependency (``pip install -e .[cluster]``); it is imported only when this executor is built.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..devices import Slot
from ..errors import ExecutorError, ExecutorUnavailable
from . import Executor, Exit
from .local import exit_signal
from .ray_task import _safe_rel, read_tree, run_job_on_node

log = logging.getLogger(__name__)

NAMESPACE = "aligngs"
GET_TIMEOUT_S = 600.0


@dataclass
class RayHandle:
    ref: Any  # ObjectRef of the task's return value
    spec: dict  # the server-side spec (job store paths)
    inputs_ref: Any
    submitted: float
    forced: bool = False
    collect: Any = None  # Future of the result's collection (ray.get + writing into the job store)


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise ExecutorUnavailable(
            "--executor ray needs Ray, which is not installed: install the 'cluster' extra "
            "(pip install -e '.[cluster]', or pip install 'ray[default]>=2.9') on the server and on every cluster node"
        ) from e
    return ray


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, slots: list[Slot] | None = None, *, address: str | None = None, device: str = "auto",
                 workers: int | None = None, cpus_per_job: float = 1.0, retries: int = 0,
                 progress_host: str | None = None, cancel_grace: float = 5.0):
        ray = import_ray()
        self.ray = ray
        self.cpus_per_job = float(cpus_per_job)
        self.retries = int(retries)
        self.cancel_grace = float(cancel_grace)
        address = address or os.environ.get("RAY_ADDRESS") or "auto"
        kw: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": logging.WARNING, "log_to_driver": False,
                              "ignore_reinit_error": True}
        if progress_host:
            kw["_node_ip_address"] = progress_host
        _check_reachable(address)
        try:
            if address == "local":
                ray.init(include_dashboard=False, **kw)
            else:
                ray.init(address=address, **kw)
        except Exception as e:  # ConnectionError, RuntimeError, ValueError ... from Ray
            raise ExecutorError(f"cannot join the Ray cluster at {address!r}: {type(e).__name__}: {e}") from e
        self.node_ip = progress_host or ray.util.get_node_ip_address()
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), float(res.get("CPU", 0))
        if device == "cuda" and gpus == 0:
            raise ExecutorError("--device cuda: the Ray cluster has no GPU resources")
        self.use_gpu = gpus > 0 and device != "cpu"
        capacity = gpus if self.use_gpu else int(cpus // self.cpus_per_job)
        if capacity < 1:
            raise ExecutorError(f"the Ray cluster has no room for a job ({cpus:g} CPUs, {self.cpus_per_job:g} per job)")
        n = workers or capacity
        kind = "cuda" if self.use_gpu else "cpu"
        self._slots = [Slot(i, kind, "ray", None) for i in range(n)]
        task = ray.remote(run_job_on_node)
        opts: dict[str, Any] = {"max_retries": self.retries, "retry_exceptions": False}
        if self.use_gpu:
            opts.update(num_gpus=1, num_cpus=1)
        else:
            opts.update(num_cpus=self.cpus_per_job)
        self._task = task.options(**opts)
        self._collector = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ray-collect")
        log.info("ray executor: cluster at %s, %d GPU / %g CPU, %d concurrent job(s) of %s", address, gpus, cpus, n,
                 "1 GPU" if self.use_gpu else f"{self.cpus_per_job:g} CPU")

    # ------------------------------------------------------------------------------------------ description

    def slots(self) -> list[Slot]:
        return self._slots

    def cluster_nodes(self) -> list[dict]:
        try:
            return [n for n in self.ray.nodes() if n.get("Alive")]
        except Exception:  # the GCS is unreachable: describe nothing rather than fail a hello
            return []

    def workers(self, slots: list[Slot]) -> list[dict]:
        """One entry per cluster GPU (or per ``--ray-cpus-per-job`` CPUs) on every live node; ``job`` = a job
        running there (as far as its worker has reported in)."""
        running: dict[str, list[str]] = {}
        for s in slots:
            if s.job is not None:
                running.setdefault(s.node or "?", []).append(s.job)
        out = []
        for n in sorted(self.cluster_nodes(), key=lambda n: n.get("NodeManagerAddress", "")):
            ip = n.get("NodeManagerAddress", "?")
            res = n.get("Resources", {})
            if self.use_gpu:
                entries = [(f"cuda:{i}", f"GPU {i} @ {ip}") for i in range(int(res.get("GPU", 0)))]
            else:
                entries = [("cpu", f"cpu @ {ip}")] * int(float(res.get("CPU", 0)) // self.cpus_per_job)
            jobs = running.get(ip, [])
            for k, (device, name) in enumerate(entries):
                out.append({"slot": len(out), "device": device, "name": name, "node": ip,
                            "job": jobs[k] if k < len(jobs) else None})
        return out

    def describe(self, slots: list[Slot]) -> str:
        nodes = self.cluster_nodes()
        what = "GPU" if self.use_gpu else "CPU"
        total = sum(float(n.get("Resources", {}).get(what, 0)) for n in nodes)
        return f"ray: {len(nodes)} node(s), {total:g} {what}, {len(slots)} concurrent job(s)"

    def progress_bind(self, tmp_dir: str | None) -> str:
        host = f"[{self.node_ip}]" if ":" in self.node_ip else self.node_ip
        return f"tcp://{host}:*"

    # ------------------------------------------------------------------------------------------ jobs

    def start(self, spec: dict, slot: Slot) -> RayHandle:
        try:
            inputs = read_tree(Path(spec["input_path"]), limit=1_000_000)
            inputs_ref = self.ray.put(inputs)
            ref = self._task.remote(dict(spec, device=slot.kind), inputs_ref, self.cancel_grace)
        except Exception as e:
            raise ExecutorError(f"cannot submit the job to Ray: {type(e).__name__}: {e}") from e
        return RayHandle(ref, spec, inputs_ref, time.monotonic())

    def poll(self, handle: RayHandle) -> Exit | None:
        """None while the task runs or its result is being collected. Collecting (``ray.get`` of the output and
        writing it into the job store) runs on a helper thread, so a large result never stalls the server loop."""
        if handle.collect is None:
            ready, _ = self.ray.wait([handle.ref], timeout=0, fetch_local=False)
            if not ready:
                return None
            handle.collect = self._collector.submit(self._collect, handle)
        if not handle.collect.done():
            return None
        return handle.collect.result()

    def _collect(self, handle: RayHandle) -> Exit:
        ray = self.ray
        try:
            res = ray.get(handle.ref, timeout=GET_TIMEOUT_S)
        except ray.exceptions.TaskCancelledError:
            return Exit(cancelled=True, reason="the Ray task was cancelled")
        except ray.exceptions.RayTaskError as e:  # the task's own code raised (a bug, or a full disk on the node)
            return Exit(reason=f"the job's Ray task failed: {_first_line(e.cause if e.cause is not None else e)}")
        except ray.exceptions.RayError as e:  # node died, worker crashed, object lost, ...
            return Exit(reason=f"the Ray node or worker running the job died ({type(e).__name__}: {_first_line(e)})")
        finally:
            handle.inputs_ref = None
        try:
            self._store(handle.spec, res)
        except (OSError, ValueError, TypeError, KeyError) as e:
            return Exit(reason=f"the job's output could not be written to the job store: {e}")
        code = res.get("exit_code")
        return Exit(exit_code=code, signal=exit_signal(code), cancelled=bool(res.get("cancelled")))

    def _store(self, spec: dict, res: dict) -> None:
        """The task's output into the job store: out/ files, the log, and outcome.json last (atomically)."""
        out_dir = Path(spec["out_dir"])
        for rel, data in res["files"].items():
            target = out_dir.joinpath(*_safe_rel(rel).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        with open(spec["log_path"], "ab") as f:
            f.write(res.get("log") or b"")
            f.write(f"--- ran on Ray node {res.get('node')} ({res.get('device')}), "
                    f"{float(res.get('seconds') or 0):.1f} s ---\n".encode())
        if res.get("outcome") is not None:
            outcome = Path(spec["outcome_path"])
            tmp = outcome.with_name(outcome.name + ".part")
            tmp.write_bytes(res["outcome"])
            os.replace(tmp, outcome)

    def cancel(self, handle: RayHandle) -> None:
        try:
            self.ray.cancel(handle.ref, force=False)
        except Exception as e:  # already finished, or the cluster is gone: the deadline path forces it
            log.info("ray.cancel: %s", e)

    def terminate(self, handle: RayHandle) -> None:
        self._force(handle)

    def kill(self, handle: RayHandle) -> None:
        self._force(handle)

    def _force(self, handle: RayHandle) -> None:
        handle.forced = True
        try:
            self.ray.cancel(handle.ref, force=True)
        except Exception as e:
            log.info("ray.cancel(force=True): %s", e)

    def stop_all(self, handles: list[RayHandle], grace: float) -> None:
        for h in handles:
            self._force(h)
        deadline = time.monotonic() + grace
        refs = [h.ref for h in handles]
        while refs and time.monotonic() < deadline:
            _, refs = self.ray.wait(refs, num_returns=len(refs), timeout=0.2, fetch_local=False)

    def close(self) -> None:
        self._collector.shutdown(wait=True, cancel_futures=True)
        try:
            self.ray.shutdown()
        except Exception:
            pass


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when a ``HOST:PORT`` head address does not answer (``ray.init`` would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "local", "ray://..." : left to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"cannot reach the Ray head at {address}: {e} (is `ray start --head` running there, "
                            "and is the port open from this machine?)") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:500]
