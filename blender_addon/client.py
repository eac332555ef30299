"""AlignGS wire-protocol v1 client (written from docs/protocol.md; pure Python + pyzmq + numpy, no bpy).

Two ways to use it:

* ``Connection``: a worker thread owns one ZeroMQ DEALER socket. The caller (Blender's main thread) sends requests
  through thread-safe methods (``submit``, ``subscribe``, ``fetch``, ``cancel``, ...; each returns the request's
  ``seq``) and reads small typed messages (``Connected``, ``ServerInfo``, ``Accepted``, ``Progress``,
  ``ResultStarted``, ``PartReceived``, ``Done``, ``Cancelled``, ``JobList``, ``JobStatus``, ``Error``,
  ``Disconnected``) from ``Connection.events`` (a ``queue.Queue``). The thread never touches bpy.
* Blocking helpers for scripts: ``Client`` (context manager), ``submit_and_wait`` and ``fetch``.

Failures are data: the thread posts ``Error(code, message)`` with a readable message and never raises into the
caller. Codes are the server's (section 8 of the protocol) plus client-side ones: ``unreachable`` (no answer in
time), ``auth`` (CURVE handshake rejected), ``protocol`` (the server sent something this client cannot read),
``input`` (the image folder cannot be sent), ``job_failed``/``bad_input``/``worker_died``/``job_interrupted``
(a job's ``failed`` event).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import zmq
from zmq.utils import z85

from .address import endpoint
from .inputs import IMAGE_EXTENSIONS, SIDE_EXTENSIONS, InputError, scan_folder

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
CLIENT_NAME = "aligngs-blender 0.1.0"
ALLOWED_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "int32", "uint32", "int64", "float16", "float32",
                            "float64", "bool"})
FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})


# ---------------------------------------------------------------------------------------------------- messages

@dataclass
class Connected:
    address: str


@dataclass
class ServerInfo:
    address: str
    server: str
    protocol: int
    device: str
    queue: dict
    workers: list
    presets: dict
    default_preset: str
    limits: dict
    curve: bool
    teachers: dict = field(default_factory=dict)

    @property
    def queue_length(self) -> int:
        return int(self.queue.get("queued", 0)) + int(self.queue.get("running", 0))


@dataclass
class Accepted:
    job: str
    state: str
    position: int | None
    record: dict
    re: int | None = None


@dataclass
class JobStatus:
    job: str
    record: dict
    subscribed: bool = False
    re: int | None = None


@dataclass
class JobList:
    jobs: list[dict]
    re: int | None = None


@dataclass
class Progress:
    job: str
    stage: str
    stage_index: int
    stage_count: int
    fraction: float
    overall: float
    message: str = ""
    iteration: int | None = None
    total: int | None = None
    eta_s: float | None = None
    n_gaussians: int | None = None
    losses: dict = field(default_factory=dict)
    preview: np.ndarray | None = None  # uint8 [h,w,3], rows top to bottom


@dataclass
class ResultStarted:
    job: str
    manifest: dict  # version, scene, up, parts (filled in as parts arrive)
    n_parts: int
    nbytes: int
    re: int | None = None


@dataclass
class Downloading:
    job: str
    received: int
    total: int


@dataclass
class PartReceived:
    name: str
    kind: str
    arrays: dict[str, np.ndarray]
    meta: dict
    job: str = ""
    index: int = 0
    count: int = 0


@dataclass
class Done:
    job: str
    manifest: dict
    summary: dict
    record: dict
    re: int | None = None


@dataclass
class Cancelled:
    job: str
    record: dict
    re: int | None = None


@dataclass
class Pong:
    time: float
    re: int | None = None


@dataclass
class Error:
    code: str
    message: str
    job: str | None = None
    field: str | None = None
    state: str | None = None
    re: int | None = None

    def text(self) -> str:
        return describe_error(self.code, self.message, self.field)


@dataclass
class Disconnected:
    address: str
    reason: str


Message = (Connected | ServerInfo | Accepted | JobStatus | JobList | Progress | ResultStarted | Downloading
           | PartReceived | Done | Cancelled | Pong | Error | Disconnected)

_ERROR_PREFIX = {
    "invalid_settings": "The server rejected a setting",
    "invalid_file": "The server rejected an input file",
    "too_large": "Too much data for the server",
    "queue_full": "The server's queue is full; try again later",
    "unknown_job": "The server does not know this job (deleted, or another server)",
    "invalid_state": "Not possible in the job's current state",
    "server_paths_disabled": "The server does not accept folders on the server",
    "bad_input": "The reconstruction could not read the inputs",
    "job_failed": "The reconstruction failed",
    "worker_died": "The reconstruction process crashed",
    "job_interrupted": "The server stopped while the job ran (it can be resubmitted)",
    "internal": "The server hit an internal error",
    "bad_version": "This add-on and the server speak different protocol versions",
}


def describe_error(code: str, message: str, field_name: str | None = None) -> str:
    """One readable line for the UI: a plain-language prefix for known codes + the server's message."""
    msg = (message or "").strip()
    if field_name and field_name not in msg:
        msg = f"{field_name}: {msg}" if msg else field_name
    prefix = _ERROR_PREFIX.get(code)
    if code == "job_interrupted":
        return prefix  # the server's message says the same
    if prefix and msg:
        return f"{prefix}: {msg}"
    return prefix or msg or code


def unreachable_text(endpoint_: str, timeout_s: float, curve: bool = False) -> str:
    return (f"No answer from {endpoint_} within {timeout_s:g} s: is the AlignGS server running there"
            f"{' and is this client key authorised' if curve else ''}?")


# ---------------------------------------------------------------------------------------------------- keys

@dataclass
class CurveKeys:
    """CURVE keys as Z85 text (40 characters each)."""

    server_public: str
    client_public: str
    client_secret: str

    def validate(self) -> None:
        for name in ("server_public", "client_public", "client_secret"):
            v = getattr(self, name)
            if not isinstance(v, str) or len(v.strip()) != 40:
                raise ValueError(f"CURVE {name.replace('_', ' ')} key must be 40 Z85 characters, got {len(v.strip())}")
            try:
                z85.decode(v.strip().encode("ascii"))
            except Exception:
                raise ValueError(f"CURVE {name.replace('_', ' ')} key is not valid Z85 text") from None


def load_key_file(path: str | os.PathLike) -> tuple[str, str | None]:
    """(public, secret or None) from a ZeroMQ certificate file (``zmq.auth.create_certificates`` format)."""
    p = os.path.expanduser(str(path))
    if not os.path.isfile(p):
        raise ValueError(f"CURVE key file {p} does not exist")
    public = secret = None
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            key, value = key.strip(), value.strip().strip('"')
            if key == "public-key":
                public = value
            elif key == "secret-key":
                secret = value
    if public is None:
        raise ValueError(f"CURVE key file {p} has no public-key line")
    return public, secret


# ---------------------------------------------------------------------------------------------------- helpers

def _le_dtype(name: Any) -> np.dtype:
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise _ProtocolViolation(f"array dtype {name!r} is not in the allow-list")
    return np.dtype(name).newbyteorder("<")


class _ProtocolViolation(Exception):
    pass


@dataclass
class _ArrayIn:
    name: str
    dtype: np.dtype
    shape: tuple
    nbytes: int
    chunks: int
    buf: bytearray | None = None
    received: int = 0
    next_chunk: int = 0


def _desc(d: Any, n_frames: int) -> _ArrayIn:
    if not isinstance(d, dict) or not isinstance(d.get("name"), str):
        raise _ProtocolViolation("array descriptor without a name")
    dt = _le_dtype(d.get("dtype"))
    shape = d.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in shape):
        raise _ProtocolViolation(f"array {d['name']!r}: bad shape {shape!r}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize if shape else dt.itemsize
    if d.get("nbytes") != nbytes:
        raise _ProtocolViolation(f"array {d['name']!r}: nbytes {d.get('nbytes')!r} != {nbytes}")
    frame = d.get("frame")
    if frame is None:
        chunks = d.get("chunks")
        if not isinstance(chunks, int) or chunks < 1:
            raise _ProtocolViolation(f"array {d['name']!r}: no frame and no chunk count")
        return _ArrayIn(d["name"], dt, tuple(shape), nbytes, chunks)
    if not isinstance(frame, int) or not 1 <= frame <= n_frames:
        raise _ProtocolViolation(f"array {d['name']!r}: frame {frame!r} out of range")
    a = _ArrayIn(d["name"], dt, tuple(shape), nbytes, 0)
    a.next_chunk = frame  # inline: remember the frame index here
    return a


def _from_frame(a: _ArrayIn, data: bytes) -> np.ndarray:
    if len(data) != a.nbytes:
        raise _ProtocolViolation(f"array {a.name!r}: frame has {len(data)} bytes, expected {a.nbytes}")
    return np.frombuffer(data, dtype=a.dtype).reshape(a.shape)


@dataclass
class _Stream:
    """Reassembly of one result stream (section 7)."""

    job: str
    manifest: dict
    n_parts: int
    total: int
    received: int = 0
    part: dict | None = None  # {"index", "name", "kind", "meta", "arrays": {name: ndarray}, "pending": [_ArrayIn]}
    done_parts: int = 0


@dataclass
class _Pending:
    type: str
    job: str | None
    deadline: float


# ---------------------------------------------------------------------------------------------------- connection

class Connection:
    """One DEALER socket in a worker thread; requests in via methods, typed messages out via ``events``."""

    def __init__(self, address: str, events: "queue.Queue | None" = None, *, keys: CurveKeys | None = None,
                 timeout_s: float = 5.0, client_name: str = CLIENT_NAME, poll_ms: int = 20):
        self.address = address
        self.endpoint = endpoint(address)  # raises AddressError for a bad address
        self.events: queue.Queue = events if events is not None else queue.Queue()
        self.keys = keys
        if keys is not None:
            keys.validate()
        self.timeout_s = float(timeout_s)
        self.client_name = client_name
        self.poll_ms = poll_ms
        self.info: ServerInfo | None = None  # last welcome (written by the thread, read-only elsewhere)
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._routing_id = b"\x01" + os.urandom(15)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self, hello: bool = True) -> "Connection":
        if self._thread is not None:
            raise RuntimeError("Connection already started")
        self._thread = threading.Thread(target=self._run, name=f"aligngs-client {self.address}", daemon=True)
        self._thread.start()
        if hello:
            self.hello()
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- requests (thread-safe; each returns its seq) -------------------------------------------------------
    def _next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def request(self, type_: str, **fields: Any) -> int:
        seq = self._next_seq()
        header = {"v": PROTOCOL_VERSION, "type": type_, "seq": seq}
        header.update({k: v for k, v in fields.items() if v is not None})
        self._cmds.put(("send", header))
        return seq

    def hello(self) -> int:
        return self.request("hello", client=self.client_name)

    def ping(self) -> int:
        return self.request("ping")

    def status(self, job: str) -> int:
        return self.request("status", job=job)

    def list_jobs(self, state: str | list | None = None) -> int:
        return self.request("list", state=state)

    def cancel(self, job: str) -> int:
        return self.request("cancel", job=job)

    def subscribe(self, job: str) -> int:
        return self.request("subscribe", job=job)

    def unsubscribe(self, job: str) -> int:
        return self.request("unsubscribe", job=job)

    def resubmit(self, job: str) -> int:
        return self.request("resubmit", job=job)

    def delete(self, job: str) -> int:
        return self.request("delete", job=job)

    def fetch(self, job: str, files: bool = False, parts: list[str] | None = None) -> int:
        return self.request("fetch", job=job, files=files, parts=parts)

    def submit(self, folder: str, *, name: str | None = None, preset: str | None = None,
               overrides: dict | None = None, config: dict | None = None) -> int:
        """Send every image (and pose/intrinsics side file) of ``folder``; files are read in the worker thread."""
        seq = self._next_seq()
        header = {"v": PROTOCOL_VERSION, "type": "submit", "seq": seq}
        if name:
            header["name"] = name[:200]
        if config is not None:
            header["config"] = config
        else:
            if preset:
                header["preset"] = preset
            if overrides:
                header["overrides"] = overrides
        self._cmds.put(("submit", header, str(folder)))
        return seq

    # -- worker thread --------------------------------------------------------------------------------------
    def _post(self, msg) -> None:
        self.events.put(msg)

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = mon = None
        try:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.ROUTING_ID, self._routing_id)
            sock.setsockopt(zmq.HEARTBEAT_IVL, 5000)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30000)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            if self.keys is not None:
                sock.curve_serverkey = self.keys.server_public.strip().encode("ascii")
                sock.curve_publickey = self.keys.client_public.strip().encode("ascii")
                sock.curve_secretkey = self.keys.client_secret.strip().encode("ascii")
            mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                                          | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                          | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                          | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            sock.connect(self.endpoint)
            self._loop(sock, mon)
        except Exception as e:  # never let the thread die silently
            log.exception("AlignGS client thread failed")
            self._post(Error("internal_client", f"client error: {type(e).__name__}: {e}"))
        finally:
            self._connected = False
            self._post(Disconnected(self.address, "closed"))
            for s in (mon, sock):
                if s is not None:
                    s.close(0)
            ctx.term()

    def _loop(self, sock, mon) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        self._pending: dict[int, _Pending] = {}
        self._streams: dict[tuple[str, int | None], _Stream] = {}
        self._attached: dict[str, int] = {}  # job -> seq of the request that attached us
        self._last_heard = time.monotonic()
        self._last_dl_post = 0.0
        self._handshakes = 0
        while not self._stop.is_set():
            self._send_commands(sock)
            events = dict(poller.poll(self.poll_ms))
            if mon in events:
                self._on_monitor(mon)
            if sock in events:
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._last_heard = time.monotonic()
                    if not self._connected:
                        self._connected = True
                        self._post(Connected(self.address))
                    self._on_message(frames)
            self._check_timeouts()

    def _send_commands(self, sock) -> None:
        while True:
            try:
                cmd = self._cmds.get_nowait()
            except queue.Empty:
                return
            try:
                if cmd[0] == "send":
                    header = cmd[1]
                    data = json.dumps(header, allow_nan=False).encode("utf-8")
                    self._track(header, 0)
                    sock.send(data)
                elif cmd[0] == "submit":
                    self._send_submit(sock, cmd[1], cmd[2])
            except (TypeError, ValueError) as e:
                self._post(Error("input", f"could not encode the {cmd[1].get('type')} request: {e}",
                                 re=cmd[1].get("seq")))

    def _track(self, header: dict, payload: int) -> None:
        # A request may wait for: its reply; a cancel until the job stops; uploads at >= ~2 MB/s.
        extra = payload / 2e6 + (30.0 if header["type"] == "cancel" else 0.0)
        self._pending[header["seq"]] = _Pending(header["type"], header.get("job"),
                                                time.monotonic() + self.timeout_s + extra)

    def _send_submit(self, sock, header: dict, folder: str) -> None:
        seq = header["seq"]
        limits = self.info.limits if self.info is not None else {}
        exts = limits.get("extensions") or list(IMAGE_EXTENSIONS + SIDE_EXTENSIONS)
        try:
            scan = scan_folder(folder, exts)
            max_files = int(limits.get("max_files", 2000))
            max_file = int(limits.get("max_file_bytes", 64 << 20))
            max_msg = int(limits.get("max_message_bytes", 1024 << 20))
            if len(scan.files) > max_files:
                raise InputError(f"{len(scan.files)} files in {scan.folder}; the server accepts at most {max_files}")
            big = [f for f in scan.files if f.nbytes > max_file]
            if big:
                raise InputError(f"{big[0].name} is {big[0].nbytes / 2**20:.1f} MiB; the server accepts at most "
                                 f"{max_file / 2**20:.0f} MiB per file")
            if scan.nbytes > max_msg:
                raise InputError(f"the folder holds {scan.nbytes / 2**20:.0f} MiB; the server accepts at most "
                                 f"{max_msg / 2**20:.0f} MiB per job")
            frames = []
            files = []
            for i, f in enumerate(scan.files):
                data = f.path.read_bytes()
                files.append({"name": f.name, "frame": i + 1, "nbytes": len(data)})
                frames.append(data)
        except (InputError, OSError) as e:
            self._post(Error("input", str(e), re=seq))
            return
        header = dict(header, files=files)
        self._track(header, scan.nbytes)
        sock.send_multipart([json.dumps(header, allow_nan=False).encode("utf-8"), *frames], copy=False)

    def _on_monitor(self, mon) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(mon, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = ev["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshakes += 1
                if self._handshakes > 1:
                    # Reconnected (perhaps to a restarted server): re-attach so every job still ends in exactly
                    # one done / failed / cancelled for us.
                    for job in list(self._attached):
                        seq = self._next_seq()
                        self._attached[job] = seq
                        self._cmds.put(("send", {"v": PROTOCOL_VERSION, "type": "subscribe", "seq": seq,
                                                 "job": job}))
            elif kind == zmq.EVENT_DISCONNECTED:
                if self._connected:
                    self._connected = False
                    self._post(Disconnected(self.address, "connection lost; reconnecting"))
            elif kind in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                          zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self._connected = False
                why = ("the server rejected this client's CURVE key (not in its authorised folder?)"
                       if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH else
                       "the encrypted handshake failed: check the server public key and whether the server uses "
                       "CURVE encryption")
                self._post(Error("auth", f"{self.address}: {why}"))

    def _check_timeouts(self) -> None:
        if not self._pending:
            return
        now = time.monotonic()
        expired = [s for s, p in self._pending.items() if now > p.deadline and now - self._last_heard > self.timeout_s]
        if not expired:
            return
        for s in expired:
            p = self._pending.pop(s)
            self._post(Error("unreachable", unreachable_text(self.endpoint, self.timeout_s, self.keys is not None),
                             job=p.job, re=s))
        if self._connected:
            self._connected = False
        self._post(Disconnected(self.address, "no answer"))

    # -- incoming -------------------------------------------------------------------------------------------
    def _on_message(self, frames: list[bytes]) -> None:
        try:
            header = json.loads(frames[0].decode("utf-8"))
            if not isinstance(header, dict) or not isinstance(header.get("type"), str):
                raise _ProtocolViolation("header is not a JSON object with a type")
            self._dispatch(header, frames)
        except (_ProtocolViolation, ValueError, KeyError, TypeError) as e:
            self._post(Error("protocol", f"unreadable message from the server: {e}"))

    def _dispatch(self, h: dict, frames: list[bytes]) -> None:
        t = h["type"]
        re_ = h.get("re")
        job = h.get("job")
        replies = {"welcome", "pong", "accepted", "status", "jobs", "subscribed", "unsubscribed", "deleted", "log",
                   "error"}
        if t in replies or (t == "cancelled" and re_ in self._pending):
            self._pending.pop(re_, None)
        if t == "welcome":
            self.info = ServerInfo(
                self.address, str(h.get("server", "?")), int(h.get("protocol", 0)), str(h.get("device", "?")),
                dict(h.get("queue") or {}), list(h.get("workers") or []), dict(h.get("presets") or {}),
                str(h.get("default_preset", "balanced")), dict(h.get("limits") or {}), bool(h.get("curve")),
                dict(h.get("teachers") or {}))
            if self.info.protocol != PROTOCOL_VERSION:
                self._post(Error("bad_version", f"server speaks protocol {self.info.protocol}, this add-on "
                                                f"{PROTOCOL_VERSION}: update one of them"))
            self._post(self.info)
        elif t == "pong":
            self._post(Pong(float(h.get("time", 0.0)), re_))
        elif t == "accepted":
            self._attached[job] = re_
            self._post(Accepted(job, str(h.get("state")), h.get("position"), dict(h.get("record") or {}), re_))
        elif t in ("status", "subscribed"):
            if t == "subscribed":
                self._attached[job] = re_
            self._post(JobStatus(job, dict(h.get("record") or {}), t == "subscribed", re_))
        elif t == "jobs":
            self._post(JobList(list(h.get("jobs") or []), re_))
        elif t == "progress":
            self._post(self._progress(h, frames))
        elif t == "result":
            self._on_result(h)
        elif t == "part":
            self._on_part(h, frames)
        elif t == "chunk":
            self._on_chunk(h, frames)
        elif t == "done":
            st = self._streams.pop((job, re_), None)
            manifest = st.manifest if st is not None else {}
            self._attached.pop(job, None)
            self._post(Done(job, manifest, dict(h.get("summary") or {}), dict(h.get("record") or {}), re_))
        elif t == "failed":
            self._streams.pop((job, re_), None)
            self._attached.pop(job, None)
            self._post(Error(str(h.get("code") or "job_failed"), str(h.get("message") or "the job failed"),
                             job=job, state=h.get("state"), re=re_))
        elif t == "cancelled":
            self._streams.pop((job, re_), None)
            self._attached.pop(job, None)
            self._post(Cancelled(job, dict(h.get("record") or {}), re_))
        elif t == "error":
            self._post(Error(str(h.get("code", "error")), str(h.get("message", "")), job=job,
                             field=h.get("field"), state=h.get("state"), re=re_))
        elif t in ("unsubscribed", "deleted", "log"):
            self._post(JobStatus(job, {"event": t, **({"text": h.get("text")} if t == "log" else {})}, False, re_))
        # unknown types: ignored (forward compatibility)

    def _progress(self, h: dict, frames: list[bytes]) -> Progress:
        preview = None
        d = h.get("preview")
        if isinstance(d, dict):
            try:
                a = _desc(d, len(frames) - 1)
                if a.chunks == 0:
                    preview = _from_frame(a, frames[a.next_chunk])
            except _ProtocolViolation:
                preview = None

        def num(key, cast, default=None):
            v = h.get(key)
            return default if v is None else cast(v)

        return Progress(
            job=h.get("job", ""), stage=str(h.get("stage", "")), stage_index=num("stage_index", int, 0),
            stage_count=num("stage_count", int, 8), fraction=num("fraction", float, 0.0),
            overall=num("overall", float, 0.0), message=str(h.get("message") or ""),
            iteration=num("iteration", int), total=num("total", int), eta_s=num("eta_s", float),
            n_gaussians=num("n_gaussians", int), losses=dict(h.get("losses") or {}), preview=preview)

    def _on_result(self, h: dict) -> None:
        job, re_ = h.get("job"), h.get("re")
        n = h.get("parts")
        if not isinstance(n, int) or n < 0:
            raise _ProtocolViolation("result without a part count")
        manifest = {"version": h.get("version", 1), "scene": h.get("scene") or "result",
                    "up": h.get("up") or [0.0, 0.0, 1.0], "parts": []}
        st = _Stream(job, manifest, n, int(h.get("nbytes") or 0))
        self._streams[(job, re_)] = st
        self._post(ResultStarted(job, manifest, n, st.total, re_))

    def _stream(self, h: dict) -> _Stream:
        st = self._streams.get((h.get("job"), h.get("re")))
        if st is None:
            raise _ProtocolViolation(f"{h['type']} for job {h.get('job')!r} outside a result stream")
        return st

    def _on_part(self, h: dict, frames: list[bytes]) -> None:
        st = self._stream(h)
        if st.part is not None:
            raise _ProtocolViolation("a new part started before the previous one was complete")
        descs = h.get("arrays") or []
        if not isinstance(descs, list):
            raise _ProtocolViolation("part arrays must be a list")
        arrays, pending = {}, []
        for d in descs:
            a = _desc(d, len(frames) - 1)
            if a.chunks == 0:
                arrays[a.name] = _from_frame(a, frames[a.next_chunk])
                st.received += a.nbytes
            else:
                a.buf = bytearray(a.nbytes)
                a.next_chunk = 0
                pending.append(a)
        meta = h.get("meta") if isinstance(h.get("meta"), dict) else {}
        st.part = {"index": int(h.get("index", st.done_parts)), "name": str(h.get("name", "")),
                   "kind": str(h.get("kind", "")), "meta": meta, "arrays": arrays, "pending": pending}
        st.manifest["parts"].append({"name": st.part["name"], "kind": st.part["kind"], "meta": meta})
        self._maybe_finish_part(st)

    def _on_chunk(self, h: dict, frames: list[bytes]) -> None:
        st = self._stream(h)
        part = st.part
        if part is None or not part["pending"]:
            raise _ProtocolViolation("chunk outside a part")
        a: _ArrayIn = part["pending"][0]
        if h.get("part") != part["index"] or h.get("array") != a.name or h.get("index") != a.next_chunk:
            raise _ProtocolViolation(f"unexpected chunk {h.get('array')!r}#{h.get('index')} "
                                     f"(expected {a.name!r}#{a.next_chunk} of part {part['index']})")
        if len(frames) != 2:
            raise _ProtocolViolation("a chunk must carry exactly one frame")
        data = frames[1]
        off, nb = h.get("offset"), len(data)
        if not isinstance(off, int) or off != a.received or off + nb > a.nbytes or h.get("nbytes") != nb:
            raise _ProtocolViolation(f"chunk of {a.name!r} at offset {off!r} with {nb} bytes does not fit")
        a.buf[off:off + nb] = data
        a.received += nb
        a.next_chunk += 1
        st.received += nb
        if a.next_chunk == a.chunks:
            if a.received != a.nbytes:
                raise _ProtocolViolation(f"array {a.name!r}: {a.received} of {a.nbytes} bytes after the last chunk")
            part["arrays"][a.name] = np.frombuffer(a.buf, dtype=a.dtype).reshape(a.shape)
            part["pending"].pop(0)
            self._maybe_finish_part(st)
        now = time.monotonic()
        if now - self._last_dl_post > 0.1:
            self._last_dl_post = now
            self._post(Downloading(st.job, st.received, st.total))

    def _maybe_finish_part(self, st: _Stream) -> None:
        part = st.part
        if part["pending"]:
            return
        st.part = None
        st.done_parts += 1
        self._post(PartReceived(part["name"], part["kind"], part["arrays"], part["meta"], st.job, part["index"],
                                st.n_parts))


# ---------------------------------------------------------------------------------------------------- blocking

class ClientError(RuntimeError):
    """A request failed; ``error`` holds the typed Error (code, message, field, job)."""

    def __init__(self, error: Error):
        super().__init__(error.text())
        self.error = error


class JobCancelled(RuntimeError):
    pass


@dataclass
class Result:
    job: str
    manifest: dict
    parts: list[PartReceived]
    summary: dict = field(default_factory=dict)


class Client:
    """Blocking client for scripts: ``with Client("localhost:5555") as c: res = c.submit_and_wait(folder)``."""

    def __init__(self, address: str, *, keys: CurveKeys | None = None, timeout_s: float = 10.0):
        self.conn = Connection(address, keys=keys, timeout_s=timeout_s)
        self.timeout_s = timeout_s
        self.conn.start(hello=False)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _wait(self, seq: int, want: tuple, timeout_s: float | None = None,
              on_event: Callable[[Any], None] | None = None, timeout_error: Error | None = None):
        # a little grace so that the connection's own (more specific) timeout error arrives first
        deadline = None if timeout_s is None else time.monotonic() + timeout_s + 1.0
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                raise ClientError(timeout_error or Error(
                    "unreachable", unreachable_text(self.conn.endpoint, timeout_s, self.conn.keys is not None)))
            try:
                msg = self.conn.events.get(timeout=0.5 if left is None else min(left, 0.5))
            except queue.Empty:
                if not self.conn.alive:
                    raise ClientError(Error("unreachable", "client thread stopped")) from None
                continue
            if isinstance(msg, Error) and (msg.re == seq or msg.re is None and msg.code in ("auth", "protocol")):
                raise ClientError(msg)
            if isinstance(msg, want) and getattr(msg, "re", seq) in (seq, None):
                return msg
            if on_event is not None:
                on_event(msg)

    def server_info(self) -> ServerInfo:
        return self._wait(self.conn.hello(), (ServerInfo,), self.timeout_s)

    def list_jobs(self, state=None) -> list[dict]:
        return self._wait(self.conn.list_jobs(state), (JobList,), self.timeout_s).jobs

    def status(self, job: str) -> dict:
        return self._wait(self.conn.status(job), (JobStatus,), self.timeout_s).record

    def cancel(self, job: str) -> dict:
        return self._wait(self.conn.cancel(job), (Cancelled,), self.timeout_s + 60).record

    def submit(self, folder: str, *, name: str | None = None, preset: str | None = None,
               overrides: dict | None = None, config: dict | None = None) -> Accepted:
        if self.conn.info is None:
            self.server_info()  # learn the limits first
        seq = self.conn.submit(folder, name=name, preset=preset, overrides=overrides, config=config)
        acc = self._wait(seq, (Accepted,), None)
        acc.re = seq
        return acc

    def collect(self, seq: int, job: str, timeout_s: float | None = None, on_progress=None) -> Result:
        """Wait for the result stream of ``job`` (events of request ``seq``) and return it."""
        parts: list[PartReceived] = []

        def on_event(msg):
            if isinstance(msg, ResultStarted) and msg.job == job:
                parts.clear()
            elif isinstance(msg, PartReceived) and msg.job == job:
                parts.append(msg)
            elif isinstance(msg, Progress) and msg.job == job and on_progress is not None:
                on_progress(msg)

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        late = Error("timeout", f"job {job} did not finish within {timeout_s:g} s (it keeps running on the server)",
                     job=job) if timeout_s is not None else None
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            msg = self._wait(seq, (Done, Cancelled, Error), left, on_event, late)
            if isinstance(msg, Done) and msg.job == job:
                return Result(job, msg.manifest, parts, msg.summary)
            if isinstance(msg, Cancelled) and msg.job == job:
                raise JobCancelled(f"job {job} was cancelled")
            if isinstance(msg, Error) and msg.job == job:
                raise ClientError(msg)

    def wait(self, job: str, *, timeout_s: float | None = None, on_progress=None) -> Result:
        """Attach to ``job`` (subscribe) and wait for its result."""
        seq = self.conn.subscribe(job)
        return self.collect(seq, job, timeout_s, on_progress)

    def submit_and_wait(self, folder: str, *, timeout_s: float | None = None, on_progress=None, **kw) -> Result:
        acc = self.submit(folder, **kw)
        return self.collect(acc.re, acc.job, timeout_s, on_progress)

    def fetch(self, job: str, timeout_s: float | None = None) -> Result:
        seq = self.conn.fetch(job)
        return self.collect(seq, job, timeout_s)


def submit_and_wait(address: str, folder: str, *, name: str | None = None, preset: str | None = None,
                    overrides: dict | None = None, keys: CurveKeys | None = None, timeout_s: float | None = None,
                    on_progress: Callable[[Progress], None] | None = None) -> Result:
    """Submit ``folder`` to the server at ``address``, wait for the job and return its result parts."""
    with Client(address, keys=keys) as c:
        return c.submit_and_wait(folder, name=name, preset=preset, overrides=overrides, timeout_s=timeout_s,
                                 on_progress=on_progress)


def fetch(address: str, job: str, *, keys: CurveKeys | None = None, timeout_s: float | None = 600.0) -> Result:
    """Download a finished job's result parts."""
    with Client(address, keys=keys) as c:
        return c.fetch(job, timeout_s)
