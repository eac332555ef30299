"""The reconstruction server's socket loop: one ROUTER for clients, one PULL for job progress (docs/protocol.md).

One thread does all socket work. It polls the client ROUTER and the PULL socket workers push progress to; between
polls the scheduler (``backend.scheduler``) collects ended jobs, enforces cancel deadlines and starts queued jobs
on its executor (``backend.executors``). Requests go to the handler table (``backend.handlers``). Nothing a
client sends can stop the loop: every request is answered (an ``error`` at worst), and a handler that raises
unexpectedly produces ``error{code:"internal"}``.
"""
from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import zmq

import aligngs

from . import worker
from .devices import Slot
from .executors import Executor, make_executor
from .files import ALLOWED_EXTENSIONS
from .handlers import HANDLERS, hf_cache_dir, known_models  # noqa: F401  (re-exported)
from .handlers_submit import count_files  # noqa: F401  (re-exported)
from .jobs import JobRecord, JobStore, write_json_atomic
from .protocol import (PROTOCOL_VERSION, TYPES_WITH_FRAMES, Limits, ProtocolError, decode_json_object, decode_request,
                       encode_header, message)
from .scheduler import Scheduler, read_outcome  # noqa: F401  (re-exported)
from .security import SecurityError, check_bind_policy, start_curve
from .streaming import ResultError, load_result, stream_messages

log = logging.getLogger(__name__)

SERVER_VERSION = aligngs.__version__
POLL_MS = 50
MAX_BATCH = 64  # messages handled per socket per loop turn
MAX_WORKER_FRAME = 16 << 20  # progress JSON + a preview image


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
    executor: str = "local"
    executor_options: dict = field(default_factory=dict)  # e.g. ray_address, cpus_per_job (backend.executors.ray)


class Server:
    def __init__(self, config: ServerConfig, executor: Executor | None = None):
        self.cfg = config
        self.version = SERVER_VERSION
        self.limits = config.limits
        if not self.limits.extensions:
            self.limits.extensions = list(ALLOWED_EXTENSIONS)
        self._executor = executor
        self.store: JobStore | None = None
        self.sched: Scheduler | None = None
        self.attached: dict[str, dict[bytes, int]] = {}  # job -> client identity -> seq of the attaching request
        self.attached_parts: dict[tuple[str, bytes], list[str]] = {}  # (job, client) -> the subscribe's parts
        self.cancel_waiters: dict[str, list[tuple[bytes, int]]] = {}
        self.endpoint: str | None = None
        self._stop = threading.Event()
        self._ctx: zmq.Context | None = None
        self._router: zmq.Socket | None = None
        self._pull: zmq.Socket | None = None
        self._auth = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.curve = config.curve_secret_key is not None

    @property
    def executor(self) -> Executor:
        return self.sched.executor

    @property
    def cuda_available(self) -> bool:
        return any(s.kind == "cuda" for s in self.sched.slots)

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Check the bind policy, bind, start the executor, load the job store. Returns the bound endpoint.

        Nothing is created on disk before the bind policy and the bind itself have passed."""
        cfg = self.cfg
        if (cfg.curve_secret_key is None) != (cfg.curve_authorized_dir is None):
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
        try:
            executor = self._executor or make_executor(cfg.executor, slots=cfg.slots, **cfg.executor_options)
        except BaseException:
            self.close()
            raise
        self.store = JobStore(cfg.jobs_dir)
        self.sched = Scheduler(self.store, executor, self, runner=cfg.runner, log_level=cfg.log_level,
                               cancel_grace=cfg.cancel_grace)
        self._pull = self._ctx.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.setsockopt(zmq.MAXMSGSIZE, MAX_WORKER_FRAME)
        if os.name == "posix":
            self._tmp = tempfile.TemporaryDirectory(prefix="aligngs-")
            os.chmod(self._tmp.name, 0o700)
        self._pull.bind(executor.progress_bind(self._tmp.name if self._tmp else None))
        self.sched.worker_endpoint = self._pull.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sched.load()
        log.info(
            "serving %s (protocol %d, server %s, %s executor: %s, jobs in %s, curve %s)",
            self.endpoint, PROTOCOL_VERSION, SERVER_VERSION, executor.name, executor.describe(self.sched.slots),
            self.store.root, "on" if self.curve else "off",
        )
        if cfg.ready_file is not None:
            write_json_atomic(Path(cfg.ready_file), {"endpoint": self.endpoint, "pid": os.getpid()})
        return self.endpoint

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
            self.sched.tick(self._drain_workers)

    def close(self) -> None:
        """Stop running jobs (they become ``interrupted``, attached clients are told), close sockets."""
        if self.sched is not None:
            for rec in self.sched.stop_all():
                if self._router is not None:
                    self.push(rec.job, "failed", **self.failure_fields(rec))
            self.sched.executor.close()
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

    def _send_raw(self, ident: bytes, frames: list) -> bool:
        try:
            self._router.send_multipart([ident, *frames], copy=False)
            return True
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                # Not connected right now (gone, or reconnecting). The attachment is kept: a client that comes
                # back with the same ROUTING_ID gets later events; what it missed it gets by sending `subscribe`.
                log.debug("client %s unreachable", ident.hex()[:12])
            else:
                log.warning("send to %s failed: %s", ident.hex()[:12], e)
            return False

    def send(self, ident: bytes, header: dict, frames: list | tuple = ()) -> bool:
        return self._send_raw(ident, [encode_header(header), *frames])

    def reply(self, ident: bytes, type_: str, re_: int | None, frames=(), **fields) -> None:
        self.send(ident, message(type_, re_, **fields), frames)

    def error(self, ident: bytes, re_: int | None, err: ProtocolError, job: str | None = None) -> None:
        body = err.body()
        if job is not None and "job" not in body:
            body["job"] = job
        self.send(ident, message("error", re_, **body))

    def push(self, job: str, type_: str, frames=(), **fields) -> None:
        for ident, seq in list(self.attached.get(job, {}).items()):
            self.send(ident, message(type_, seq, job=job, **fields), frames)

    def attach(self, job: str, ident: bytes, seq: int, parts: list[str] | None = None) -> None:
        self.attached.setdefault(job, {})[ident] = seq
        if parts is None:
            self.attached_parts.pop((job, ident), None)
        else:
            self.attached_parts[(job, ident)] = parts

    def detach(self, job: str, ident: bytes | None = None) -> dict[bytes, int]:
        """Forget one client's attachment to ``job`` (or all of them); returns what was removed."""
        subs = self.attached.get(job, {})
        gone = {i: seq for i, seq in subs.items() if ident is None or i == ident}
        for i in gone:
            subs.pop(i, None)
            self.attached_parts.pop((job, i), None)
        if not subs:
            self.attached.pop(job, None)
        return gone

    def failure_fields(self, rec: JobRecord) -> dict:
        err = rec.error or {"code": "job_failed", "message": "failed"}
        out = {"state": rec.state, "code": err.get("code"), "message": err.get("message"),
               "exit_code": rec.exit_code, "signal": rec.signal, "record": self.sched.public(rec)}
        for key in ("fix", "model"):
            if isinstance(err.get(key), str):
                out[key] = err[key]
        return out

    def stream_result(self, ident: bytes, re_: int, job: str, *, include_files: bool = True,
                      parts: list[str] | None = None) -> bool:
        """Section 7: ``result``, the parts (those whose name or kind is in ``parts``; all when None), ``done``."""
        rec = self.sched.jobs[job]
        try:
            result = load_result(self.store.out(job), include_files=include_files)
        except ResultError as e:
            log.error("job %s: result unreadable: %s", job, e)
            self.error(ident, re_, ProtocolError("internal", f"the result of job {job} cannot be read: {e}"), job)
            return False
        if parts is not None:
            wanted = set(parts)
            result.parts = [p for p in result.parts if p.name in wanted or p.kind in wanted]
        for i, frames in enumerate(stream_messages(job, re_, result, self.limits.chunk_bytes)):
            if i == 0:  # the `result` header also names the job as submitted (`scene` is the manifest's name)
                frames = [encode_header(dict(decode_json_object(frames[0], "result"), name=rec.name)), *frames[1:]]
            if not self._send_raw(ident, frames):
                return False
        s = rec.summary or {}
        self.reply(
            ident, "done", re_, job=job, parts=len(result.parts), summary=s, metrics=s.get("metrics") or {},
            timings=s.get("timings") or {}, counts=s.get("counts") or {}, record=self.sched.public(rec),
        )
        return True

    # ------------------------------------------------------------------------------------------ scheduler events

    def job_progress(self, job: str, body: dict, preview: dict | None, frames: list,
                     points: dict | None = None) -> None:
        self.push(job, "progress", frames, **body, preview=preview, points=points)

    def job_ended(self, rec: JobRecord) -> None:
        job = rec.job
        parts = {ident: self.attached_parts.get((job, ident), rec.parts) for ident in self.attached.get(job, {})}
        subs = self.detach(job)
        waiters = self.cancel_waiters.pop(job, [])
        public = self.sched.public(rec)
        if rec.state == "done":
            for ident, seq in subs.items():
                self.stream_result(ident, seq, job, parts=parts[ident])
        elif rec.state == "cancelled":
            for ident, seq in subs.items():
                self.reply(ident, "cancelled", seq, job=job, record=public)
        else:
            for ident, seq in subs.items():
                self.reply(ident, "failed", seq, job=job, **self.failure_fields(rec))
        for ident, seq in waiters:
            if rec.state == "cancelled":
                self.reply(ident, "cancelled", seq, job=job, record=public)
            else:
                err = ProtocolError("invalid_state", f"job {job} ended as {rec.state} before the cancel took effect",
                                    state=rec.state)
                self.error(ident, seq, err, job)

    # ------------------------------------------------------------------------------------------ receiving

    def _drain_workers(self) -> None:
        for _ in range(MAX_BATCH * 4):
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self.sched.on_worker(frames)
            except Exception:
                log.exception("bad message from a worker")

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
            HANDLERS[req.type](self, ident, req.seq, req.header, payload)
        except ProtocolError as e:
            if re_ is None:
                re_ = e.re
            log.info("client %s: %s (%s)", ident.hex()[:12], e.code, e.message[:200])
            self.error(ident, re_, e, job)
        except Exception as e:  # a bug must not take the server down
            log.exception("client %s: request failed", ident.hex()[:12])
            err = ProtocolError("internal", f"internal error: {type(e).__name__}: {str(e)[:300]}")
            self.error(ident, re_, err, job)


def run_server(config: ServerConfig, *, install_signals: bool = True,
               on_started: Callable[[Server], None] | None = None) -> int:
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
