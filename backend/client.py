"""A reference client for the backend protocol (docs/protocol.md): blocking calls over one DEALER socket.

Used by the tests and the benchmark; it needs only pyzmq and numpy. Messages that arrive while a call waits for
something else are kept in order and handed to whichever later call wants them, so several jobs and requests can
be in flight on one client.

    with Client("tcp://127.0.0.1:5555") as c:
        job, seq = c.submit({"0001.jpg": b"...", "0002.jpg": b"..."}, preset="fast")
        result = c.wait(job, seq, on_progress=lambda m: print(m.header["stage"], m.header["fraction"]))
        mesh = result.part("mesh").arrays["vertices"]
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import zmq
from zmq import auth as zauth

from aligngs.wire import (
    PointsPreview,
    ResultPart,
    ResultStream,
    array_from_frame,
    decode_json_object,
    decode_points,
    encode_header,
    parse_array_desc,
    request,
)


class ServerError(RuntimeError):
    """The server answered a request with ``error``."""

    def __init__(self, header: dict):
        self.header = header
        self.code = header.get("code")
        self.field = header.get("field")
        super().__init__(f"{self.code}: {header.get('message')}")


class JobFailed(RuntimeError):
    def __init__(self, header: dict):
        self.header = header
        self.code = header.get("code")
        super().__init__(f"job {header.get('job')} {header.get('state')}: {self.code}: {header.get('message')}")


class JobCancelled(RuntimeError):
    pass


@dataclass
class Message:
    header: dict
    frames: list  # binary frames 1..n (index k of the protocol = frames[k-1])

    @property
    def type(self) -> str:
        return self.header.get("type", "")

    @property
    def re(self) -> int | None:
        return self.header.get("re")

    @property
    def job(self) -> str | None:
        return self.header.get("job")

    def frame(self, k: int) -> memoryview:
        f = self.frames[k - 1]
        return f.buffer if isinstance(f, zmq.Frame) else memoryview(f)

    def array(self, desc: dict) -> np.ndarray:
        d = parse_array_desc(desc, "array", n_frames=len(self.frames))
        return array_from_frame(d, self.frame(d.frame))

    def points(self) -> PointsPreview | None:
        """The live point preview of a ``progress`` event (section 6.1), or None."""
        d = self.header.get("points")
        if d is None:
            return None
        return decode_points(d, [b""] + [self.frame(k) for k in range(1, len(self.frames) + 1)])


@dataclass
class JobResult:
    job: str
    scene: str = ""
    up: list = field(default_factory=list)
    version: int = 0
    parts: list = field(default_factory=list)
    done: dict = field(default_factory=dict)
    progress: list = field(default_factory=list)  # progress headers seen while waiting
    nbytes: int = 0

    def part(self, name: str) -> ResultPart:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"no part {name!r} (have {[p.name for p in self.parts]})")


class ResultAssembler:
    """Rebuilds one result stream (``result``, ``part``/``chunk``..., ``done``) into a JobResult
    (``aligngs.wire.ResultStream`` does the work)."""

    def __init__(self, job: str):
        self.result = JobResult(job)
        self.stream = ResultStream(job)

    @property
    def finished(self) -> bool:
        return self.stream.finished

    def feed(self, m: Message) -> bool:
        """Consume one message of the stream; True once ``done`` has arrived (ProtocolError if inconsistent)."""
        self.stream.feed(m.header, [m.frame(k) for k in range(1, len(m.frames) + 1)])
        st, res = self.stream, self.result
        if m.type == "result":
            h = st.header
            res.scene, res.up, res.version, res.nbytes = h.get("scene", ""), h.get("up", []), h.get("version", 0), st.nbytes
        res.parts = st.parts
        if st.finished:
            res.done = st.done
        return st.finished


def _key_bytes(k: str | bytes | os.PathLike, public: bool) -> bytes:
    """A Z85 key from a string/bytes or a zmq key file."""
    if isinstance(k, (str, os.PathLike)) and Path(k).is_file():
        pub, sec = zauth.load_certificate(str(k))
        return pub if public else sec
    return k.encode() if isinstance(k, str) else bytes(k)


class Client:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 30.0,
        server_key: str | bytes | os.PathLike | None = None,
        client_key_file: str | os.PathLike | None = None,
        routing_id: bytes | None = None,
        context: zmq.Context | None = None,
    ):
        self.timeout = timeout
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        if routing_id is not None:
            s.setsockopt(zmq.ROUTING_ID, routing_id)
        if server_key is not None:
            if client_key_file is None:
                raise ValueError("CURVE needs the client's key file (client_key_file) as well as the server key")
            pub, sec = zauth.load_certificate(str(client_key_file))
            if not sec:
                raise ValueError(f"{client_key_file}: no secret key in it")
            s.curve_serverkey = _key_bytes(server_key, public=True)
            s.curve_publickey = pub
            s.curve_secretkey = sec
        s.connect(endpoint)
        self.sock = s
        self._seq = 0
        self._pending: list[Message] = []

    def close(self) -> None:
        self.sock.close(0)
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- raw

    def send(self, type_: str, frames: Iterable = (), **fields: Any) -> int:
        self._seq += 1
        header = {**request(type_, self._seq), **fields}
        self.sock.send_multipart([encode_header(header), *frames], copy=False)
        return self._seq

    def send_raw(self, frames: list) -> None:
        """Send arbitrary frames (tests)."""
        self.sock.send_multipart(frames)

    def _recv(self, timeout: float | None) -> Message:
        t = self.timeout if timeout is None else timeout
        if not self.sock.poll(int(t * 1000)):
            raise TimeoutError(f"no message from the server within {t:.1f} s")
        frames = self.sock.recv_multipart(copy=False)
        header = decode_json_object(frames[0].buffer)
        return Message(header, frames[1:])

    def take(self, pred: Callable[[Message], bool], timeout: float | None = None) -> Message:
        """The first message (buffered or new) matching ``pred``; others stay buffered in order."""
        for i, m in enumerate(self._pending):
            if pred(m):
                return self._pending.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for a matching message")
            m = self._recv(left)
            if pred(m):
                return m
            self._pending.append(m)

    def recv_any(self, timeout: float | None = None) -> Message:
        if self._pending:
            return self._pending.pop(0)
        return self._recv(timeout)

    def request(self, type_: str, frames: Iterable = (), *, timeout: float | None = None, **fields: Any) -> Message:
        """Send a request and return its direct reply (raises ServerError on ``error``)."""
        seq = self.send(type_, frames, **fields)
        m = self.take(lambda m: m.re == seq, timeout)
        if m.type == "error":
            raise ServerError(m.header)
        return m

    # ----------------------------------------------------------------------------------------- calls

    def hello(self, client: str = "backend.client") -> dict:
        return self.request("hello", client=client).header

    def ping(self, timeout: float | None = None) -> float:
        return self.request("ping", timeout=timeout).header["time"]

    def status(self, job: str) -> dict:
        return self.request("status", job=job).header["record"]

    def list(self, state: str | list[str] | None = None) -> list[dict]:
        fields = {} if state is None else {"state": state}
        return self.request("list", **fields).header["jobs"]

    def log(self, job: str, nbytes: int = 65536) -> str:
        return self.request("log", job=job, bytes=nbytes).header["text"]

    def delete(self, job: str) -> None:
        self.request("delete", job=job)

    def submit(
        self,
        files: dict[str, bytes] | str | os.PathLike | None = None,
        *,
        server_path: str | None = None,
        name: str | None = None,
        preset: str | None = None,
        overrides: dict | None = None,
        config: dict | None = None,
        attach: bool = True,
        timeout: float | None = None,
    ) -> tuple[str, int]:
        """Submit files ({name: bytes}, or a local folder whose files are sent) or a server folder.

        Returns (job id, seq); with ``attach`` the job's events carry ``re`` = seq (pass both to ``wait``).
        """
        fields: dict[str, Any] = {"attach": attach}
        for k, v in (("name", name), ("preset", preset), ("overrides", overrides), ("config", config)):
            if v is not None:
                fields[k] = v
        frames: list = []
        if server_path is not None:
            fields["server_path"] = server_path
        else:
            if isinstance(files, (str, os.PathLike)):
                folder = Path(files)
                files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            assert files is not None, "give files or server_path"
            listing = []
            for i, (fname, data) in enumerate(files.items()):
                listing.append({"name": fname, "frame": i + 1, "nbytes": len(data)})
                frames.append(data)
            fields["files"] = listing
        m = self.request("submit", frames, timeout=timeout, **fields)
        return m.header["job"], m.re

    def subscribe(self, job: str) -> tuple[int, dict]:
        m = self.request("subscribe", job=job)
        return m.re, m.header["record"]

    def resubmit(self, job: str) -> int:
        return self.request("resubmit", job=job).re

    def cancel(self, job: str, timeout: float | None = None) -> dict:
        """Ask for a cancel; returns the ``cancelled`` header once the job has stopped."""
        return self.request("cancel", job=job, timeout=timeout).header

    def wait(
        self,
        job: str,
        re_: int,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Message], None] | None = None,
    ) -> JobResult:
        """Collect a job's events for attachment ``re_`` until it ends: the result, or JobFailed / JobCancelled."""
        asm = ResultAssembler(job)
        progress: list[dict] = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            m = self.take(lambda m: m.job == job and m.re == re_ and m.type != "accepted", max(left, 0.001))
            if m.type == "progress":
                progress.append(m.header)
                if on_progress is not None:
                    on_progress(m)
            elif m.type == "failed":
                raise JobFailed(m.header)
            elif m.type == "cancelled":
                raise JobCancelled(f"job {job} cancelled")
            elif m.type == "error":
                raise ServerError(m.header)
            elif m.type in ("result", "part", "chunk", "done"):
                if asm.feed(m):
                    asm.result.progress = progress
                    return asm.result

    def fetch(self, job: str, *, files: bool = True, parts: list[str] | None = None, timeout: float | None = None) -> JobResult:
        fields: dict[str, Any] = {"files": files}
        if parts is not None:
            fields["parts"] = parts
        seq = self.send("fetch", job=job, **fields)
        return self.wait(job, seq, timeout=timeout)
