"""The job scheduler: the FIFO queue, the job table, running jobs and what happens when they end.

It owns the job records (``backend.jobs``) and hands queued jobs to an executor (``backend.executors``), one per
free slot, in submission order. It knows nothing about sockets: it tells the server about job events through the
:class:`Events` callbacks (the server turns them into protocol messages for attached clients). Everything runs on
the server's one loop thread.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aligngs.wire import decode_points, encode_points

from .devices import Slot
from .errors import REPORTED_CODES, ExecutorError
from .executors import Executor, Exit
from .jobs import JobRecord, JobStore
from .protocol import ProtocolError, decode_json_object, json_safe
from .streaming import ResultError, load_result

log = logging.getLogger(__name__)

KILL_GRACE_S = 3.0
SAVE_PROGRESS_EVERY_S = 5.0
INTERRUPTED = {"code": "job_interrupted", "message": "the server stopped while the job was running"}


class Events(Protocol):
    def job_progress(self, job: str, body: dict, preview: dict | None, frames: list,
                     points: dict | None = None) -> None: ...

    def job_ended(self, rec: JobRecord) -> None: ...


@dataclass
class Running:
    job: str
    handle: Any  # the executor's handle
    slot: Slot
    token: str
    cancel_deadline: float | None = None
    kill_deadline: float | None = None
    cancel_requested: bool = False
    last_save: float = 0.0


class Scheduler:
    def __init__(self, store: JobStore, executor: Executor, events: Events, *, runner: str, log_level: str,
                 cancel_grace: float):
        self.store = store
        self.executor = executor
        self.events = events
        self.runner = runner
        self.log_level = log_level
        self.cancel_grace = cancel_grace
        self.slots = executor.slots()
        self.jobs: dict[str, JobRecord] = {}
        self.queue: deque[str] = deque()
        self.running: dict[str, Running] = {}
        self.worker_endpoint = ""  # set by the server once its PULL socket is bound

    # ------------------------------------------------------------------------------------------ job table

    def load(self) -> None:
        """Read the job store after a (re)start: running jobs become interrupted, cancelling ones cancelled,
        queued ones are queued again in their original order."""
        now = time.time()
        for rec in self.store.load_all():
            if rec.state in ("running", "cancelling"):
                if rec.state == "cancelling":
                    rec.state = "cancelled"
                else:
                    rec.state = "interrupted"
                    rec.error = dict(INTERRUPTED)
                rec.finished = now
                self.store.save(rec)
                log.info("job %s: marked %s after restart", rec.job, rec.state)
            self.jobs[rec.job] = rec
            if rec.state == "queued":
                self.queue.append(rec.job)
        if self.jobs:
            log.info("job store: %d job(s), %d queued again", len(self.jobs), len(self.queue))

    def get(self, job: str) -> JobRecord | None:
        return self.jobs.get(job)

    def queued_count(self) -> int:
        return sum(1 for j in self.queue if self.jobs[j].state == "queued")

    def position(self, job: str) -> int | None:
        try:
            return self.queue.index(job)
        except ValueError:
            return None

    def public(self, rec: JobRecord) -> dict:
        return rec.public(self.position(rec.job) if rec.state == "queued" else None)

    def add(self, rec: JobRecord) -> None:
        self.jobs[rec.job] = rec
        self.queue.append(rec.job)

    def requeue(self, rec: JobRecord) -> None:
        """A failed / cancelled / interrupted job again, same id and inputs, attempt + 1."""
        rec.state = "queued"
        rec.attempt += 1
        rec.started = rec.finished = None
        rec.error = rec.summary = rec.progress = None
        rec.exit_code, rec.signal = None, None
        rec.device = rec.node = None
        self.store.save(rec)
        self.queue.append(rec.job)

    def delete(self, rec: JobRecord) -> None:
        del self.jobs[rec.job]
        self.store.delete(rec.job)

    def set_final(self, rec: JobRecord, state: str) -> None:
        rec.state = state
        rec.finished = time.time()
        self.store.save(rec)

    # ------------------------------------------------------------------------------------------ running

    def schedule(self) -> None:
        for slot in self.slots:
            if slot.job is not None:
                continue
            while self.queue:
                job = self.queue.popleft()
                rec = self.jobs.get(job)
                if rec is not None and rec.state == "queued":
                    self._start(rec, slot)
                    break

    def _start(self, rec: JobRecord, slot: Slot) -> None:
        job = rec.job
        outcome = self.store.outcome_path(job)
        if outcome.exists():
            outcome.unlink()
        token = secrets.token_hex(16)
        spec = {
            "job": job,
            "input_path": str(self.store.input_path(rec)),
            "out_dir": str(self.store.out(job)),
            "settings": rec.settings,
            "runner": self.runner,
            "endpoint": self.worker_endpoint,
            "token": token,
            "device": slot.kind,
            "cuda_visible": slot.cuda_visible,
            "log_path": str(self.store.log_path(job)),
            "outcome_path": str(outcome),
            "log_level": self.log_level,
        }
        try:
            handle = self.executor.start(spec, slot)
        except ExecutorError as e:
            log.exception("job %s: cannot start", job)
            rec.error = {"code": "worker_died", "message": str(e)}
            self.set_final(rec, "failed")
            self.events.job_ended(rec)
            return
        slot.job = job
        rec.state = "running"
        rec.started = time.time()
        rec.device = slot.device
        self.store.save(rec)
        self.running[job] = Running(job, handle, slot, token)
        log.info("job %s: started on %s via %s (pid %s, attempt %d)", job, slot.device, self.executor.name,
                 self.executor.pid(handle), rec.attempt)

    def cancel(self, rec: JobRecord) -> bool:
        """Cancel a queued (True: cancelled now) or running job (False: it stops within the grace period)."""
        if rec.state == "queued":
            try:
                self.queue.remove(rec.job)
            except ValueError:
                pass
            self.set_final(rec, "cancelled")
            log.info("job %s: cancelled while queued", rec.job)
            return True
        run = self.running[rec.job]
        if not run.cancel_requested:
            run.cancel_requested = True
            self.executor.cancel(run.handle)
            run.cancel_deadline = time.monotonic() + self.cancel_grace
            rec.state = "cancelling"
            self.store.save(rec)
            log.info("job %s: cancel requested", rec.job)
        return False

    def on_worker(self, frames: list) -> None:
        """A message a worker pushed: progress (+ optional image / point previews), or from a cluster node its start
        (node, device) or new log lines (appended to the job log)."""
        h = decode_json_object(frames[0].buffer, "worker message")
        job = h.get("job")
        run = self.running.get(job) if isinstance(job, str) else None
        if run is None or h.get("token") != run.token:
            return  # a stale or foreign sender
        rec = self.jobs[job]
        if h.get("kind") == "started":
            device, node = h.get("device"), h.get("node")
            rec.device = device if isinstance(device, str) else rec.device
            rec.node = node if isinstance(node, str) else rec.node
            run.slot.node = rec.node
            self.store.save(rec)
            return
        if h.get("kind") == "log" and len(frames) == 2:  # a remote worker's log lines (Ray executor)
            with open(self.store.log_path(job), "ab") as f:
                f.write(frames[1].buffer)
            return
        if h.get("kind") != "progress" or not isinstance(h.get("progress"), dict):
            return
        body = json_safe(h["progress"])
        stage_changed = (rec.progress or {}).get("stage") != body.get("stage")
        rec.progress = body
        now = time.monotonic()
        if stage_changed or now - run.last_save > SAVE_PROGRESS_EVERY_S:
            run.last_save = now
            self.store.save(rec)
        preview, extra = None, []
        pv = h.get("preview")
        if isinstance(pv, dict) and len(frames) >= 2:
            shape = pv.get("shape")
            if (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
                    and shape[2] == 3 and shape[0] * shape[1] * 3 == len(frames[1])):
                preview = {"name": "preview", "dtype": "uint8", "shape": shape, "nbytes": len(frames[1]), "frame": 1}
                extra = [frames[1]]
        points = None
        if h.get("points") is not None:
            try:  # checked here, so subscribers only ever get a consistent preview (a bad one is dropped)
                pts = decode_points(h["points"], [f.buffer for f in frames])
                points, point_frames = encode_points(pts, first_frame=1 + len(extra))
                extra = extra + point_frames
            except (ProtocolError, ValueError) as e:
                log.debug("job %s: point preview dropped: %s", job, e)
        self.events.job_progress(job, body, preview, extra, points)

    def tick(self, drain) -> None:
        """Collect ended jobs, enforce cancel deadlines, start queued jobs. ``drain()`` reads pending worker
        messages (called before a job's end is processed, so its last progress comes first)."""
        now = time.monotonic()
        for job, run in list(self.running.items()):
            try:
                ex = self.executor.poll(run.handle)
            except Exception as e:  # the executor lost track of it (e.g. the Ray cluster went away)
                log.exception("job %s: %s executor cannot tell how it is doing", job, self.executor.name)
                ex = Exit(reason=f"the {self.executor.name} executor lost the job: {type(e).__name__}: {e}"[:2000])
            if ex is not None:
                drain()
                self._finish(job, run, ex)
            elif run.kill_deadline is not None and now > run.kill_deadline:
                log.warning("job %s: worker ignores SIGTERM; killing it", job)
                self.executor.kill(run.handle)
                run.kill_deadline = now + 3600
            elif run.cancel_deadline is not None and run.kill_deadline is None and now > run.cancel_deadline:
                log.info("job %s: not stopped %.1f s after cancel; terminating its worker", job, self.cancel_grace)
                self.executor.terminate(run.handle)
                run.kill_deadline = now + KILL_GRACE_S
        self.schedule()

    def _finish(self, job: str, run: Running, ex: Exit) -> None:
        del self.running[job]
        run.slot.job = None
        run.slot.node = None
        rec = self.jobs[job]
        rec.exit_code, rec.signal = ex.exit_code, ex.signal
        outcome = read_outcome(self.store.outcome_path(job))
        status = outcome.get("status") if outcome else None
        if status == "done":
            try:
                load_result(self.store.out(job))
            except ResultError as e:
                status = "error"
                outcome = {"code": "job_failed", "message": f"the job finished without a readable result: {e}"}
        if status == "done":
            rec.summary = json_safe(outcome.get("summary") or {})
            rec.error = None
            self.set_final(rec, "done")
        elif status == "cancelled" or (run.cancel_requested and (status is None or ex.cancelled)):
            self.set_final(rec, "cancelled")
        elif status == "error":
            code = outcome.get("code") if outcome.get("code") in REPORTED_CODES else "job_failed"
            rec.error = {"code": code, "message": str(outcome.get("message", ""))[:2000]}
            for key in ("fix", "model"):  # a user error's way out, the missing checkpoint's id
                if isinstance(outcome.get(key), str):
                    rec.error[key] = outcome[key][:2000]
            # the worker reported the failure itself: no exit code / signal to speak of (protocol 6.2)
            rec.exit_code, rec.signal = None, None
            self.set_final(rec, "failed")
        else:
            if ex.reason:
                msg = ex.reason
            else:
                how = f"was killed by {rec.signal}" if rec.signal else f"exited with code {ex.exit_code}"
                hint = " (out of memory?)" if rec.signal == "SIGKILL" else ""
                msg = f"the worker process {how}{hint} before the job finished"
            rec.error = {"code": "worker_died", "message": msg}
            self.set_final(rec, "failed")
        log.info("job %s: %s (exit code %s%s)", job, rec.state, ex.exit_code, f", {rec.signal}" if rec.signal else "")
        self.events.job_ended(rec)

    def stop_all(self) -> list[JobRecord]:
        """Server shutdown: stop running jobs; they become ``interrupted`` (returned, for the server to announce)."""
        runs = list(self.running.values())
        self.executor.stop_all([r.handle for r in runs], KILL_GRACE_S)
        out = []
        for run in runs:
            rec = self.jobs[run.job]
            rec.state = "interrupted"
            rec.error = dict(INTERRUPTED)
            rec.finished = time.time()
            self.store.save(rec)
            run.slot.job = None
            out.append(rec)
        self.running.clear()
        return out


def read_outcome(path: Path) -> dict | None:
    try:
        return decode_json_object(path.read_bytes(), "outcome")
    except (OSError, ProtocolError):
        return None
