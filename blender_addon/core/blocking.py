"""Blocking helpers for scripts on top of ``Connection``: ``Client`` (context manager), ``submit_and_wait``,
``fetch``. Errors raise ``ClientError`` (holding the typed ``Error``) or ``JobCancelled``."""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .connection import Connection
from .errors import ClientError, JobCancelled, unreachable_text
from .keys import CurveKeys
from .messages import (Accepted, Cancelled, Done, Error, JobList, JobStatus, PartReceived, Progress, ResultStarted,
                       ServerInfo)


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
               overrides: dict | None = None, config: dict | None = None,
               parts: list[str] | None = None) -> Accepted:
        if self.conn.info is None:
            self.server_info()  # learn the limits first
        seq = self.conn.submit(folder, name=name, preset=preset, overrides=overrides, config=config, parts=parts)
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
