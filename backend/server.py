"""The reconstruction server: a ROUTER socket loop, a FIFO job queue, one spawned process per running job.

One thread does all socket work. It polls the client ROUTER and a PULL socket on which job processes push
progress; between polls it reaps finished job processes, enforces cancel deadlines and starts queued jobs.
Nothing a client sends can stop the loop: every request is answered (an ``error`` at worst), and a handler that
raises unexpectedly produces ``error{code:"internal"}``. See docs/protocol.md.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import zmq

import aligngs
from aligngs.config import PRESETS, PipelineConfig

from . import worker
from .devices import Slot, describe
from .files import ALLOWED_EXTENSIONS, check_content, is_image, sanitize_name
from .jobs import JobRecord, JobStore, write_json_atomic
from .protocol import (
    DTYPES,
    FINAL_STATES,
    PROTOCOL_VERSION,
    TYPES_WITH_FRAMES,
    Limits,
    ProtocolError,
    decode_json_object,
    decode_request,
    encode_header,
    get_field,
    get_job_id,
    json_safe,
    message,
)
from .security import check_bind_policy, start_curve
from .settings import DEFAULT_PRESET, DEPTH_TEACHERS, SEMANTIC_TEACHERS, resolve_settings
from .streaming import ResultError, load_result, stream_messages

log = logging.getLogger(__name__)

SERVER_VERSION = aligngs.__version__
POLL_MS = 50
MAX_BATCH = 64  # messages handled per socket per loop turn
KILL_GRACE_S = 3.0
LOG_TAIL_DEFAULT = 65536
LOG_TAIL_MAX = 1 << 20


@dataclass
class ServerConfig:
    bind: str = "tcp://127.0.0.1:5555"
    jobs_dir: Path = Path("jobs")
    slots: list[Slot] = field(default_factory=lambda: [Slot(0, "cpu", "cpu", None)])
    limits: Limits = field(default_factory=Limits)
    cancel_grace: float = 5.0
    curve_secret_key: Path | None = None
    curve_authorized_dir: Path | None = None
    insecure: bool = False
    runner: str = worker.DEFAULT_RUNNER
    log_level: str = "INFO"
    ready_file: Path | None = None


@dataclass
class Running:
    job: str
    process: Any  # multiprocessing.Process (spawn)
    cancel_event: Any
    slot: Slot
    token: str
    cancel_deadline: float | None = None
    kill_deadline: float | None = None
    cancel_requested: bool = False
    last_save: float = 0.0


class Server:
    def __init__(self, config: ServerConfig):
        self.cfg = config
        self.limits = config.limits
        if not self.limits.extensions:
            self.limits.extensions = list(ALLOWED_EXTENSIONS)
        self.store = JobStore(config.jobs_dir)
        self.jobs: dict[str, JobRecord] = {}
        self.queue: deque[str] = deque()
        self.running: dict[str, Running] = {}
        self.attached: dict[str, dict[bytes, int]] = {}  # job -> client identity -> seq of the attaching request
        self.cancel_waiters: dict[str, list[tuple[bytes, int]]] = {}
        self.endpoint: str | None = None
        self._stop = threading.Event()
        self._mp = multiprocessing.get_context("spawn")
        self._ctx: zmq.Context | None = None
        self._router: zmq.Socket | None = None
        self._pull: zmq.Socket | None = None
        self._auth = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.curve = config.curve_secret_key is not None
        self.cuda_available = any(s.kind == "cuda" for s in config.slots)

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Check the bind policy, bind, load the job store. Returns the bound endpoint."""
        cfg = self.cfg
        if (cfg.curve_secret_key is None) != (cfg.curve_authorized_dir is None):
            from .security import SecurityError

            raise SecurityError("CURVE needs both --curve-secret-key and --curve-authorized-dir")
        check_bind_policy(cfg.bind, curve=self.curve, insecure=cfg.insecure)
        self._ctx = zmq.Context()
        r = self._ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.setsockopt(zmq.SNDHWM, 0)  # result streams are never dropped (frames reference memory-mapped files)
        r.setsockopt(zmq.RCVHWM, 64)
        r.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)
        r.setsockopt(zmq.ROUTER_HANDOVER, 1)
        r.setsockopt(zmq.HEARTBEAT_IVL, 5000)
        r.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30000)
        if self.curve:
            self._auth = start_curve(self._ctx, r, cfg.curve_secret_key, cfg.curve_authorized_dir)
        try:
            r.bind(cfg.bind)
        except zmq.ZMQError as e:
            r.close()
            self._shutdown_ctx()
            raise OSError(f"cannot bind {cfg.bind}: {e}") from e
        self._router = r
        self.endpoint = r.getsockopt_string(zmq.LAST_ENDPOINT)
        self._pull = self._ctx.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        if os.name == "posix":
            self._tmp = tempfile.TemporaryDirectory(prefix="aligngs-")
            os.chmod(self._tmp.name, 0o700)
            self._pull.bind(f"ipc://{self._tmp.name}/workers")
        else:
            self._pull.bind("tcp://127.0.0.1:*")
        self._worker_endpoint = self._pull.getsockopt_string(zmq.LAST_ENDPOINT)
        self._load_jobs()
        log.info(
            "serving %s (protocol %d, server %s, %s, jobs in %s, curve %s)",
            self.endpoint, PROTOCOL_VERSION, SERVER_VERSION, describe(cfg.slots), self.store.root, "on" if self.curve else "off",
        )
        if cfg.ready_file is not None:
            write_json_atomic(Path(cfg.ready_file), {"endpoint": self.endpoint, "pid": os.getpid()})
        return self.endpoint

    def _load_jobs(self) -> None:
        now = time.time()
        for rec in self.store.load_all():
            if rec.state in ("running", "cancelling"):
                if rec.state == "cancelling":
                    rec.state = "cancelled"
                else:
                    rec.state = "interrupted"
                    rec.error = {"code": "job_interrupted", "message": "the server stopped while the job was running"}
                rec.finished = now
                self.store.save(rec)
                log.info("job %s: marked %s after restart", rec.job, rec.state)
            self.jobs[rec.job] = rec
            if rec.state == "queued":
                self.queue.append(rec.job)
        if self.jobs:
            log.info("job store: %d job(s), %d queued again", len(self.jobs), len(self.queue))

    def stop(self) -> None:
        """Ask the loop to end (thread-safe; also from a signal handler)."""
        self._stop.set()

    def serve_forever(self) -> None:
        assert self._router is not None, "call start() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                events = dict(poller.poll(POLL_MS))
            except zmq.ZMQError as e:
                if e.errno == zmq.EINTR:
                    continue
                raise
            if self._pull in events:
                self._drain_workers()
            if self._router in events:
                self._drain_clients()
            self._tick()

    def close(self) -> None:
        """Stop running jobs (they become ``interrupted``), close sockets."""
        for job, run in list(self.running.items()):
            run.cancel_event.set()
            if run.process.is_alive():
                run.process.terminate()
        deadline = time.monotonic() + KILL_GRACE_S
        for job, run in list(self.running.items()):
            run.process.join(max(0.0, deadline - time.monotonic()))
            if run.process.is_alive():
                run.process.kill()
                run.process.join(2.0)
            rec = self.jobs[job]
            rec.state = "interrupted"
            rec.error = {"code": "job_interrupted", "message": "the server stopped while the job was running"}
            rec.finished = time.time()
            self.store.save(rec)
            if self._router is not None:
                self._push(job, "failed", state=rec.state, code="job_interrupted", message=rec.error["message"],
                           exit_code=None, signal=None, record=self._public(rec))
            run.slot.job = None
        self.running.clear()
        for s in (self._router, self._pull):
            if s is not None:
                s.close(0)
        self._router = self._pull = None
        self._shutdown_ctx()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        log.info("server stopped")

    def _shutdown_ctx(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    # ------------------------------------------------------------------------------------------ sending

    def _send(self, ident: bytes, header: dict, frames: list | tuple = ()) -> bool:
        try:
            self._router.send_multipart([ident, encode_header(header), *frames], copy=False)
            return True
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                self._forget_peer(ident)
            else:
                log.warning("send to %s failed: %s", ident.hex()[:12], e)
            return False

    def _forget_peer(self, ident: bytes) -> None:
        for job, subs in self.attached.items():
            if subs.pop(ident, None) is not None:
                log.info("job %s: client %s gone, detached", job, ident.hex()[:12])

    def _reply(self, ident: bytes, type_: str, re_: int | None, frames=(), **fields) -> None:
        self._send(ident, message(type_, re_, **fields), frames)

    def _error(self, ident: bytes, re_: int | None, err: ProtocolError, job: str | None = None) -> None:
        body = err.body()
        if job is not None and "job" not in body:
            body["job"] = job
        self._send(ident, message("error", re_, **body))

    def _push(self, job: str, type_: str, frames=(), **fields) -> None:
        for ident, seq in list(self.attached.get(job, {}).items()):
            self._send(ident, message(type_, seq, job=job, **fields), frames)

    def _stream_result(self, ident: bytes, re_: int, job: str, *, include_files: bool = True, names=None) -> bool:
        rec = self.jobs[job]
        try:
            result = load_result(self.store.out(job), include_files=include_files, names=names)
        except ResultError as e:
            log.error("job %s: result unreadable: %s", job, e)
            self._error(ident, re_, ProtocolError("internal", f"the result of job {job} cannot be read: {e}"), job)
            return False
        for frames in stream_messages(job, re_, result, self.limits.chunk_bytes):
            if not self._send_raw(ident, frames):
                return False
        s = rec.summary or {}
        self._reply(
            ident, "done", re_, job=job, parts=len(result.parts), summary=s, metrics=s.get("metrics") or {},
            timings=s.get("timings") or {}, counts=s.get("counts") or {}, record=self._public(rec),
        )
        return True

    def _send_raw(self, ident: bytes, frames: list) -> bool:
        try:
            self._router.send_multipart([ident, *frames], copy=False)
            return True
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                self._forget_peer(ident)
            else:
                log.warning("send to %s failed: %s", ident.hex()[:12], e)
            return False

    # ------------------------------------------------------------------------------------------ clients

    def _drain_clients(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._on_client(frames)

    def _on_client(self, frames: list) -> None:
        ident = frames[0].bytes
        if len(frames) < 2:
            return
        re_: int | None = None
        job: str | None = None
        try:
            req = decode_request(frames[1].buffer, self.limits.max_header_bytes)
            re_ = req.seq
            payload = frames[2:]
            total = sum(len(f) for f in frames[1:])
            if total > self.limits.max_message_bytes:
                raise ProtocolError("too_large", f"message is {total} bytes, limit {self.limits.max_message_bytes}")
            if payload and req.type not in TYPES_WITH_FRAMES:
                raise ProtocolError("bad_frames", f"{req.type!r} takes no binary frames, got {len(payload)}")
            if isinstance(req.header.get("job"), str):
                job = req.header["job"][:80]
            getattr(self, f"_req_{req.type}")(ident, req.seq, req.header, payload)
        except ProtocolError as e:
            if re_ is None:
                re_ = e.re
            log.info("client %s: %s (%s)", ident.hex()[:12], e.code, e.message[:200])
            self._error(ident, re_, e, job)
        except Exception as e:  # a bug must not take the server down
            log.exception("client %s: request failed", ident.hex()[:12])
            self._error(ident, re_, ProtocolError("internal", f"internal error: {type(e).__name__}: {str(e)[:300]}"), job)

    def _job(self, h: dict) -> JobRecord:
        job = get_job_id(h)
        rec = self.jobs.get(job)
        if rec is None:
            raise ProtocolError("unknown_job", f"no job {job!r}", job=job)
        return rec

    def _position(self, job: str) -> int | None:
        try:
            return self.queue.index(job)
        except ValueError:
            return None

    def _public(self, rec: JobRecord) -> dict:
        return rec.public(self._position(rec.job) if rec.state == "queued" else None)

    def _attach(self, job: str, ident: bytes, seq: int) -> None:
        self.attached.setdefault(job, {})[ident] = seq

    def _req_hello(self, ident: bytes, seq: int, h: dict, payload) -> None:
        client = get_field(h, "client", "str", default="")
        log.info("hello from %s (%s)", ident.hex()[:12], client[:100])
        self._reply(
            ident, "welcome", seq,
            protocol=PROTOCOL_VERSION,
            server=SERVER_VERSION,
            device=describe(self.cfg.slots),
            workers=[s.public() for s in self.cfg.slots],
            teachers={"semantic": list(SEMANTIC_TEACHERS), "depth": list(DEPTH_TEACHERS)},
            models=known_models(),
            presets=json_safe(PRESETS),
            default_preset=DEFAULT_PRESET,
            defaults=json_safe(PipelineConfig().to_dict()),
            limits=self.limits.to_dict(),
            dtypes=list(DTYPES),
            queue={"queued": len(self.queue), "running": len(self.running)},
            curve=self.curve,
        )

    def _req_ping(self, ident: bytes, seq: int, h: dict, payload) -> None:
        self._reply(ident, "pong", seq, time=time.time())

    def _req_status(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        self._reply(ident, "status", seq, job=rec.job, record=self._public(rec))

    def _req_list(self, ident: bytes, seq: int, h: dict, payload) -> None:
        states = get_field(h, "state", "str_or_list")
        if isinstance(states, str):
            states = [states]
        recs = [self._public(r) for r in self.jobs.values() if states is None or r.state in states]
        recs.sort(key=lambda r: (r["created"], r["job"]))
        self._reply(ident, "jobs", seq, jobs=recs)

    def _req_log(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        n = get_field(h, "bytes", "int", default=LOG_TAIL_DEFAULT)
        if not 1 <= n <= LOG_TAIL_MAX:
            raise ProtocolError("malformed", f"field 'bytes' must be in 1..{LOG_TAIL_MAX}", field="bytes")
        path = self.store.log_path(rec.job)
        text, truncated = "", False
        if path.is_file():
            size = path.stat().st_size
            with open(path, "rb") as f:
                if size > n:
                    f.seek(size - n)
                    truncated = True
                text = f.read(n).decode("utf-8", errors="replace")
        self._reply(ident, "log", seq, job=rec.job, text=text, truncated=truncated)

    def _req_submit(self, ident: bytes, seq: int, h: dict, payload) -> None:
        queued = sum(1 for j in self.queue if self.jobs[j].state == "queued")
        if queued >= self.limits.max_queue:
            raise ProtocolError("queue_full", f"{queued} jobs are queued (limit {self.limits.max_queue}); try later")
        name = get_field(h, "name", "str", default="scene")
        if len(name) > 200:
            raise ProtocolError("malformed", "field 'name' is longer than 200 characters", field="name")
        attach = get_field(h, "attach", "bool", default=True)
        files = get_field(h, "files", "list")
        server_path = get_field(h, "server_path", "str")
        if (files is None) == (server_path is None):
            raise ProtocolError("malformed", "give exactly one of 'files' and 'server_path'", field="files")
        cfg = resolve_settings(h, cuda_available=self.cuda_available)
        if server_path is not None:
            if payload:
                raise ProtocolError("bad_frames", f"a server_path submit takes no binary frames, got {len(payload)}")
            if not self.limits.server_paths:
                raise ProtocolError("server_paths_disabled", "this server does not accept server-side folders (--allow-server-paths)", field="server_path")
            p = Path(server_path)
            if not p.is_absolute() or not p.is_dir():
                raise ProtocolError("invalid_path", f"server_path {server_path[:200]!r} is not an absolute path to a folder", field="server_path")
            stored: list[tuple[str, Any]] = []
            n_inputs = count_files(p)
        else:
            stored = self._check_files(files, payload)
            n_inputs = len(stored)
        rec = JobRecord(job=self.store.new_id(), name=name, settings=json_safe(cfg.to_dict()), n_inputs=n_inputs,
                        server_path=str(Path(server_path)) if server_path else None)
        d = self.store.create(rec)
        try:
            inputs = (d / "inputs").resolve()
            for rel, frame in stored:
                target = (inputs / rel).resolve()
                if inputs not in target.parents:  # defence in depth: sanitize_name already refuses traversal
                    raise ProtocolError("invalid_file", f"file name {rel!r} leaves the input folder", field="files")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as f:
                    f.write(frame.buffer)
        except BaseException:
            self.store.delete(rec.job)
            raise
        self.jobs[rec.job] = rec
        self.queue.append(rec.job)
        if attach:
            self._attach(rec.job, ident, seq)
        log.info("job %s: queued '%s' (%d input files, %s) from %s", rec.job, name, n_inputs,
                 f"preset {h.get('preset') or DEFAULT_PRESET}" if h.get("config") is None else "explicit config", ident.hex()[:12])
        self._schedule()
        self._reply(ident, "accepted", seq, job=rec.job, state=rec.state, position=self._position(rec.job),
                    files=[s for s, _ in stored], record=self._public(rec))

    def _check_files(self, files: list, payload: list) -> list[tuple[str, Any]]:
        lim = self.limits
        if len(files) > lim.max_files:
            raise ProtocolError("too_large", f"{len(files)} files, limit {lim.max_files}", field="files")
        if len(files) != len(payload):
            raise ProtocolError("bad_frames", f"'files' lists {len(files)} files but the message has {len(payload)} binary frames", field="files")
        used: set[int] = set()
        names: set[str] = set()
        out = []
        for i, entry in enumerate(files):
            where = f"files[{i}]"
            if not isinstance(entry, dict):
                raise ProtocolError("malformed", f"{where} must be an object {{name, frame, nbytes}}", field=where)
            frame_i = entry.get("frame")
            nbytes = entry.get("nbytes")
            if not isinstance(frame_i, int) or isinstance(frame_i, bool) or not 1 <= frame_i <= len(payload) or frame_i in used:
                raise ProtocolError("bad_frames", f"{where}.frame {frame_i!r}: each of frames 1..{len(payload)} must be used once", field=f"{where}.frame")
            used.add(frame_i)
            frame = payload[frame_i - 1]
            if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes != len(frame):
                raise ProtocolError("bad_frames", f"{where}.nbytes {nbytes!r} != frame {frame_i} length {len(frame)}", field=f"{where}.nbytes")
            if nbytes > lim.max_file_bytes:
                raise ProtocolError("too_large", f"{where}: {nbytes} bytes, limit {lim.max_file_bytes}", field=where)
            stored = sanitize_name(entry.get("name"), f"{where}.name")
            key = stored.lower()
            if key in names:
                raise ProtocolError("invalid_file", f"{where}.name: {stored!r} is a duplicate", field=f"{where}.name")
            names.add(key)
            check_content(stored, frame.buffer, where)
            out.append((stored, frame))
        if not any(is_image(s) for s, _ in out):
            raise ProtocolError("invalid_file", "no image file (.jpg/.jpeg/.png) among the files", field="files")
        return out

    def _req_cancel(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        job = rec.job
        if rec.state == "queued":
            try:
                self.queue.remove(job)
            except ValueError:
                pass
            self._set_final(rec, "cancelled")
            log.info("job %s: cancelled while queued", job)
            self._reply(ident, "cancelled", seq, job=job, record=self._public(rec))
            self._push(job, "cancelled", record=self._public(rec))
            self.attached.pop(job, None)
        elif rec.state in ("running", "cancelling"):
            run = self.running[job]
            self.cancel_waiters.setdefault(job, []).append((ident, seq))
            if not run.cancel_requested:
                run.cancel_requested = True
                run.cancel_event.set()
                run.cancel_deadline = time.monotonic() + self.cfg.cancel_grace
                rec.state = "cancelling"
                self.store.save(rec)
                log.info("job %s: cancel requested", job)
        elif rec.state == "cancelled":
            self._reply(ident, "cancelled", seq, job=job, record=self._public(rec))
        else:
            raise ProtocolError("invalid_state", f"job {job} is {rec.state}; nothing to cancel", job=job, state=rec.state)

    def _req_fetch(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        include_files = get_field(h, "files", "bool", default=True)
        names = get_field(h, "parts", "list")
        if names is not None and not all(isinstance(n, str) for n in names):
            raise ProtocolError("malformed", "field 'parts' must be a list of strings", field="parts")
        if rec.state != "done":
            raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}, not done", job=rec.job, state=rec.state)
        self._stream_result(ident, seq, rec.job, include_files=include_files, names=names)

    def _req_subscribe(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        job = rec.job
        self._reply(ident, "subscribed", seq, job=job, record=self._public(rec))
        if rec.state in ("queued", "running", "cancelling"):
            self._attach(job, ident, seq)
        elif rec.state == "done":
            self._stream_result(ident, seq, job)
        elif rec.state == "cancelled":
            self._reply(ident, "cancelled", seq, job=job, record=self._public(rec))
        else:
            self._reply(ident, "failed", seq, job=job, **self._failure_fields(rec))

    def _req_unsubscribe(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        self.attached.get(rec.job, {}).pop(ident, None)
        self._reply(ident, "unsubscribed", seq, job=rec.job)

    def _req_resubmit(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        if rec.state not in ("failed", "cancelled", "interrupted"):
            raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}; only failed, cancelled or interrupted jobs can be resubmitted", job=rec.job, state=rec.state)
        if sum(1 for j in self.queue if self.jobs[j].state == "queued") >= self.limits.max_queue:
            raise ProtocolError("queue_full", f"the queue is full (limit {self.limits.max_queue}); try later")
        rec.state = "queued"
        rec.attempt += 1
        rec.started = rec.finished = None
        rec.error = rec.summary = rec.progress = None
        rec.exit_code, rec.signal = None, None
        rec.device = None
        self.store.save(rec)
        self.queue.append(rec.job)
        self._attach(rec.job, ident, seq)
        log.info("job %s: resubmitted (attempt %d)", rec.job, rec.attempt)
        self._schedule()
        self._reply(ident, "accepted", seq, job=rec.job, state=rec.state, position=self._position(rec.job), files=[], record=self._public(rec))

    def _req_delete(self, ident: bytes, seq: int, h: dict, payload) -> None:
        rec = self._job(h)
        if rec.state not in FINAL_STATES:
            raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}; cancel it first", job=rec.job, state=rec.state)
        del self.jobs[rec.job]
        self.attached.pop(rec.job, None)
        self.store.delete(rec.job)
        log.info("job %s: deleted", rec.job)
        self._reply(ident, "deleted", seq, job=rec.job)

    # ------------------------------------------------------------------------------------------ jobs

    def _schedule(self) -> None:
        for slot in self.cfg.slots:
            if slot.job is not None:
                continue
            while self.queue:
                job = self.queue.popleft()
                rec = self.jobs.get(job)
                if rec is not None and rec.state == "queued":
                    self._start_job(rec, slot)
                    break

    def _start_job(self, rec: JobRecord, slot: Slot) -> None:
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
            "runner": self.cfg.runner,
            "endpoint": self._worker_endpoint,
            "token": token,
            "device": slot.kind,
            "cuda_visible": slot.cuda_visible,
            "log_path": str(self.store.log_path(job)),
            "outcome_path": str(outcome),
            "log_level": self.cfg.log_level,
        }
        ev = self._mp.Event()
        proc = self._mp.Process(target=worker.main, args=(spec, ev), name=f"aligngs-job-{job}")
        try:
            proc.start()
        except Exception as e:
            log.exception("job %s: cannot start a worker process", job)
            rec.error = {"code": "worker_died", "message": f"cannot start a worker process: {e}"}
            self._set_final(rec, "failed")
            self._push(job, "failed", **self._failure_fields(rec))
            self.attached.pop(job, None)
            return
        slot.job = job
        rec.state = "running"
        rec.started = time.time()
        rec.device = slot.device
        self.store.save(rec)
        self.running[job] = Running(job, proc, ev, slot, token)
        log.info("job %s: started on %s (pid %s, attempt %d)", job, slot.device, proc.pid, rec.attempt)

    def _set_final(self, rec: JobRecord, state: str) -> None:
        rec.state = state
        rec.finished = time.time()
        self.store.save(rec)

    def _failure_fields(self, rec: JobRecord) -> dict:
        err = rec.error or {"code": "job_failed", "message": "failed"}
        return {"state": rec.state, "code": err.get("code"), "message": err.get("message"),
                "exit_code": rec.exit_code, "signal": rec.signal, "record": self._public(rec)}

    def _drain_workers(self) -> None:
        for _ in range(MAX_BATCH * 4):
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self._on_worker(frames)
            except Exception:
                log.exception("bad message from a worker")

    def _on_worker(self, frames: list) -> None:
        h = decode_json_object(frames[0].buffer, "worker message")
        job = h.get("job")
        run = self.running.get(job) if isinstance(job, str) else None
        if run is None or h.get("token") != run.token:
            return  # a stale or foreign sender
        if h.get("kind") != "progress" or not isinstance(h.get("progress"), dict):
            return
        body = json_safe(h["progress"])
        rec = self.jobs[job]
        stage_changed = (rec.progress or {}).get("stage") != body.get("stage")
        rec.progress = body
        now = time.monotonic()
        if stage_changed or now - run.last_save > 5.0:
            run.last_save = now
            self.store.save(rec)
        preview = None
        extra = []
        pv = h.get("preview")
        if isinstance(pv, dict) and len(frames) == 2:
            shape = pv.get("shape")
            if (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
                    and shape[2] == 3 and shape[0] * shape[1] * 3 == len(frames[1])):
                preview = {"name": "preview", "dtype": "uint8", "shape": shape, "nbytes": len(frames[1]), "frame": 1}
                extra = [frames[1]]
        self._push(job, "progress", extra, **body, preview=preview)

    def _tick(self) -> None:
        now = time.monotonic()
        for job, run in list(self.running.items()):
            p = run.process
            if p.exitcode is not None:
                self._finish(job, run)
            elif run.kill_deadline is not None and now > run.kill_deadline:
                log.warning("job %s: worker ignores SIGTERM; killing it", job)
                p.kill()
                run.kill_deadline = now + 3600
            elif run.cancel_deadline is not None and run.kill_deadline is None and now > run.cancel_deadline:
                log.info("job %s: not stopped %.1f s after cancel; terminating its worker", job, self.cfg.cancel_grace)
                p.terminate()
                run.kill_deadline = now + KILL_GRACE_S
        self._schedule()

    def _finish(self, job: str, run: Running) -> None:
        self._drain_workers()  # the last progress messages first
        p = run.process
        exitcode = p.exitcode
        try:
            p.close()
        except ValueError:
            pass
        del self.running[job]
        run.slot.job = None
        rec = self.jobs[job]
        rec.exit_code = exitcode
        rec.signal = signal.Signals(-exitcode).name if exitcode is not None and exitcode < 0 and -exitcode in signal.valid_signals() else None
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
            self._set_final(rec, "done")
        elif status == "cancelled" or (run.cancel_requested and status is None):
            self._set_final(rec, "cancelled")
        elif status == "error":
            code = outcome.get("code") if outcome.get("code") in ("bad_input", "job_failed") else "job_failed"
            rec.error = {"code": code, "message": str(outcome.get("message", ""))[:2000]}
            self._set_final(rec, "failed")
        else:
            how = f"was killed by {rec.signal}" if rec.signal else f"exited with code {exitcode}"
            hint = " (out of memory?)" if rec.signal == "SIGKILL" else ""
            rec.error = {"code": "worker_died", "message": f"the worker process {how}{hint} before the job finished"}
            self._set_final(rec, "failed")
        log.info("job %s: %s (exit code %s%s)", job, rec.state, exitcode, f", {rec.signal}" if rec.signal else "")
        subs = self.attached.pop(job, {})
        waiters = self.cancel_waiters.pop(job, [])
        if rec.state == "done":
            for ident, seq in subs.items():
                self._stream_result(ident, seq, job)
        elif rec.state == "cancelled":
            for ident, seq in subs.items():
                self._reply(ident, "cancelled", seq, job=job, record=self._public(rec))
        else:
            for ident, seq in subs.items():
                self._reply(ident, "failed", seq, job=job, **self._failure_fields(rec))
        for ident, seq in waiters:
            if rec.state == "cancelled":
                self._reply(ident, "cancelled", seq, job=job, record=self._public(rec))
            else:
                self._error(ident, seq, ProtocolError("invalid_state", f"job {job} ended as {rec.state} before the cancel took effect", state=rec.state), job)


def read_outcome(path: Path) -> dict | None:
    try:
        return decode_json_object(path.read_bytes(), "outcome")
    except (OSError, ProtocolError):
        return None


def count_files(folder: Path, cap: int = 100_000) -> int:
    n = 0
    for _root, _dirs, files in os.walk(folder):
        n += len(files)
        if n >= cap:
            break
    return n


def known_models() -> list[dict]:
    """Known teacher checkpoints and whether each is in the local Hugging Face cache (no transformers import)."""
    try:
        from aligngs.semantics.models import REGISTRY
    except Exception:  # the registry is optional for the server
        return []
    cache = hf_cache_dir()
    out = []
    for info in REGISTRY.values():
        folder = cache / ("models--" + info.id.replace("/", "--")) / "snapshots"
        try:
            cached = folder.is_dir() and any((s / "config.json").exists() for s in folder.iterdir())
        except OSError:
            cached = False
        out.append({"id": info.id, "task": info.task, "architecture": info.architecture, "cached": cached,
                    "non_commercial": info.non_commercial})
    return out


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home) / "hub"


def run_server(config: ServerConfig, *, install_signals: bool = True, on_started: Callable[[Server], None] | None = None) -> int:
    """Start, serve until SIGINT/SIGTERM (or ``stop()``), close. Returns a process exit code."""
    server = Server(config)
    server.start()
    if install_signals:
        def handler(signum, frame):
            log.info("signal %s: stopping", signal.Signals(signum).name)
            server.stop()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    if on_started is not None:
        on_started(server)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0
