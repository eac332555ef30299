"""The connection: one ZeroMQ DEALER socket owned by a worker thread (never touches bpy).

The caller (Blender's main thread) sends requests through thread-safe methods (``submit``, ``subscribe``,
``fetch``, ``cancel``, ...; each returns the request's ``seq``) and reads typed messages (``messages``) from
``Connection.events``, a ``queue.Queue``. Incoming messages are decoded by ``inbox.Inbox``. Failures are data: the
thread posts ``Error(code, message)`` and never raises into the caller.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

import zmq

from .._vendor import wire
from .address import endpoint
from .errors import InputError, StateError, unreachable_text
from .inbox import Inbox, Pending
from .inputs import IMAGE_EXTENSIONS, SIDE_EXTENSIONS, scan_folder
from .keys import CurveKeys
from .messages import Connected, Disconnected, Error, ServerInfo

log = logging.getLogger(__name__)

CLIENT_NAME = "aligngs-blender 0.1.0"


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
        self._parts_of: dict[str, list[str] | None] = {}  # job -> the parts a subscribe asked for
        self.inbox = Inbox(self)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self, hello: bool = True) -> "Connection":
        if self._thread is not None:
            raise StateError("Connection already started")
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
        self._cmds.put(("send", wire.request(type_, seq, **fields)))
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

    def subscribe(self, job: str, parts: list[str] | None = None) -> int:
        """Attach to ``job``; ``parts`` (names or kinds) replaces the job's own choice of result parts."""
        self._parts_of[job] = parts
        return self.request("subscribe", job=job, parts=parts)

    def unsubscribe(self, job: str) -> int:
        return self.request("unsubscribe", job=job)

    def resubmit(self, job: str) -> int:
        return self.request("resubmit", job=job)

    def delete(self, job: str) -> int:
        return self.request("delete", job=job)

    def fetch(self, job: str, files: bool = False, parts: list[str] | None = None) -> int:
        return self.request("fetch", job=job, files=files, parts=parts)

    def submit(self, folder: str, *, name: str | None = None, preset: str | None = None,
               overrides: dict | None = None, config: dict | None = None, parts: list[str] | None = None) -> int:
        """Send every image (and pose/intrinsics side file) of ``folder``; files are read in the worker thread.

        ``parts``: the result parts (names or kinds) this client wants; None = all."""
        seq = self._next_seq()
        header = wire.request("submit", seq, parts=parts)
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
        self._last_heard = time.monotonic()
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
                    self.inbox.on_message(frames)
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
                    data = wire.encode_header(header)
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
        self.inbox.pending[header["seq"]] = Pending(header["type"], header.get("job"),
                                                    time.monotonic() + self.timeout_s + extra)

    def _send_submit(self, sock, header: dict, folder: str) -> None:
        seq = header["seq"]
        limits = wire.Limits.from_dict(self.info.limits if self.info is not None else None)
        exts = limits.extensions or list(IMAGE_EXTENSIONS + SIDE_EXTENSIONS)
        try:
            scan = scan_folder(folder, exts)
            max_files, max_file, max_msg = limits.max_files, limits.max_file_bytes, limits.max_message_bytes
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
        sock.send_multipart([wire.encode_header(header), *frames], copy=False)

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
                    for job in list(self.inbox.attached):
                        seq = self._next_seq()
                        self.inbox.attached[job] = seq
                        self._cmds.put(("send", wire.request("subscribe", seq, job=job,
                                                             parts=self._parts_of.get(job))))
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
        pending = self.inbox.pending
        if not pending:
            return
        now = time.monotonic()
        expired = [s for s, p in pending.items() if now > p.deadline and now - self._last_heard > self.timeout_s]
        if not expired:
            return
        for s in expired:
            p = pending.pop(s)
            self._post(Error("unreachable", unreachable_text(self.endpoint, self.timeout_s, self.keys is not None),
                             job=p.job, re=s))
        if self._connected:
            self._connected = False
        self._post(Disconnected(self.address, "no answer"))
