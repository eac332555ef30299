"""Incoming messages of the connection thread: decode each one and post typed messages (``messages``).

A table maps each server message type to its handler; result streams are reassembled by the protocol's own
state machine (``wire.ResultStream``), one per (job, request). Unknown types are ignored (forward compatibility);
anything unreadable becomes ``Error('protocol', ...)`` for the request it belongs to.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .._vendor import wire
from .messages import (Accepted, Cancelled, Done, Downloading, Error, JobList, JobStatus, PartReceived, Pong,
                       Progress, ResultStarted, ServerInfo)
from .settings import choices_from_welcome

DOWNLOAD_POST_S = 0.1  # at most this often a Downloading message


@dataclass
class Pending:
    """A request waiting for its reply (for the unreachable timeout)."""

    type: str
    job: str | None
    deadline: float


class Inbox:
    def __init__(self, conn):
        self.conn = conn  # the Connection: address, info, events
        self.pending: dict[int, Pending] = {}
        self.streams: dict[tuple[str | None, int | None], wire.ResultStream] = {}
        self.attached: dict[str, int] = {}  # job -> seq of the request that attached us
        self._last_dl_post = 0.0
        self._handlers = {
            "welcome": self._welcome, "pong": self._pong, "accepted": self._accepted, "status": self._status,
            "subscribed": self._status, "jobs": self._jobs, "progress": self._progress, "result": self._result,
            "part": self._part, "chunk": self._chunk, "done": self._done, "failed": self._failed,
            "cancelled": self._cancelled, "error": self._error, "unsubscribed": self._job_event,
            "deleted": self._job_event, "log": self._job_event,
        }

    def _post(self, msg) -> None:
        self.conn.events.put(msg)

    def on_message(self, frames: list) -> None:
        h = None
        try:
            h = wire.decode_json_object(frames[0])
            if not isinstance(h.get("type"), str):
                raise wire.ProtocolError("malformed", "header is not a JSON object with a type")
            t = h["type"]
            if t in wire.REPLY_TYPES or (t == "cancelled" and h.get("re") in self.pending):
                self.pending.pop(h.get("re"), None)
            handler = self._handlers.get(t)
            if handler is not None:  # unknown types: ignored
                handler(h, frames)
        except (wire.WireError, ValueError, KeyError, TypeError) as e:
            job = h.get("job") if isinstance(h, dict) and isinstance(h.get("job"), str) else None
            re_ = h.get("re") if isinstance(h, dict) and isinstance(h.get("re"), int) else None
            if job is not None:
                self.streams.pop((job, re_), None)
            self._post(Error("protocol", f"unreadable message from the server: {e}", job=job, re=re_))

    # -- replies ----------------------------------------------------------------------------------------------
    def _welcome(self, h: dict, frames) -> None:
        conn = self.conn
        conn.info = ServerInfo(
            conn.address, str(h.get("server", "?")), int(h.get("protocol", 0)), str(h.get("device", "?")),
            dict(h.get("queue") or {}), list(h.get("workers") or []), dict(h.get("presets") or {}),
            str(h.get("default_preset", "balanced")), dict(h.get("limits") or {}), bool(h.get("curve")),
            dict(h.get("teachers") or {}), dict(h.get("defaults") or {}),
            choices_from_welcome(h.get("choices") if isinstance(h.get("choices"), dict) else None,
                                 h.get("teachers") if isinstance(h.get("teachers"), dict) else None))
        if conn.info.protocol != wire.PROTOCOL_VERSION:
            self._post(Error("bad_version", f"server speaks protocol {conn.info.protocol}, this add-on "
                                            f"{wire.PROTOCOL_VERSION}: update one of them"))
        self._post(conn.info)

    def _pong(self, h: dict, frames) -> None:
        self._post(Pong(float(h.get("time", 0.0)), h.get("re")))

    def _accepted(self, h: dict, frames) -> None:
        job = h.get("job")
        self.attached[job] = h.get("re")
        self._post(Accepted(job, str(h.get("state")), h.get("position"), dict(h.get("record") or {}), h.get("re")))

    def _status(self, h: dict, frames) -> None:
        subscribed = h["type"] == "subscribed"
        if subscribed:
            self.attached[h.get("job")] = h.get("re")
        self._post(JobStatus(h.get("job"), dict(h.get("record") or {}), subscribed, h.get("re")))

    def _jobs(self, h: dict, frames) -> None:
        self._post(JobList(list(h.get("jobs") or []), h.get("re")))

    def _error(self, h: dict, frames) -> None:
        self._post(Error(str(h.get("code", "error")), str(h.get("message", "")), job=h.get("job"),
                         field=h.get("field"), state=h.get("state"), re=h.get("re")))

    def _job_event(self, h: dict, frames) -> None:
        t = h["type"]
        self._post(JobStatus(h.get("job"), {"event": t, **({"text": h.get("text")} if t == "log" else {})}, False,
                             h.get("re")))

    # -- job events -------------------------------------------------------------------------------------------
    def _progress(self, h: dict, frames) -> None:
        preview = None
        d = h.get("preview")
        if isinstance(d, dict):
            try:
                desc = wire.parse_array_desc(d, "preview", n_frames=len(frames) - 1)
                preview = wire.array_from_frame(desc, frames[desc.frame])
            except wire.ProtocolError:
                preview = None
        points = None
        if h.get("points") is not None:
            try:
                points = wire.decode_points(h["points"], frames)
            except wire.ProtocolError:
                points = None  # a broken preview costs the preview, never the job

        def num(key, cast, default=None):
            v = h.get(key)
            return default if v is None else cast(v)

        self._post(Progress(
            job=h.get("job", ""), stage=str(h.get("stage", "")), stage_index=num("stage_index", int, 0),
            stage_count=num("stage_count", int, 8), fraction=num("fraction", float, 0.0),
            overall=num("overall", float, 0.0), message=str(h.get("message") or ""),
            iteration=num("iteration", int), total=num("total", int), eta_s=num("eta_s", float),
            n_gaussians=num("n_gaussians", int), losses=dict(h.get("losses") or {}), preview=preview,
            points=points))

    def _failed(self, h: dict, frames) -> None:
        job, re_ = h.get("job"), h.get("re")
        self.streams.pop((job, re_), None)
        self.attached.pop(job, None)
        self._post(Error(str(h.get("code") or "job_failed"), str(h.get("message") or "the job failed"),
                         job=job, state=h.get("state"), re=re_))

    def _cancelled(self, h: dict, frames) -> None:
        job, re_ = h.get("job"), h.get("re")
        self.streams.pop((job, re_), None)
        self.attached.pop(job, None)
        self._post(Cancelled(job, dict(h.get("record") or {}), re_))

    # -- the result stream ------------------------------------------------------------------------------------
    def _result(self, h: dict, frames) -> None:
        job, re_ = h.get("job"), h.get("re")
        st = wire.ResultStream(job)
        st.feed(h, frames[1:])
        self.streams[(job, re_)] = st
        self._post(ResultStarted(job, st.manifest, st.n_parts, st.nbytes, re_))

    def _stream(self, h: dict) -> wire.ResultStream:
        st = self.streams.get((h.get("job"), h.get("re")))
        if st is None:
            raise wire.ProtocolError("malformed", f"{h['type']} for job {h.get('job')!r} outside a result stream")
        return st

    def _part(self, h: dict, frames) -> None:
        st = self._stream(h)
        self._post_part(st, st.feed(h, frames[1:]))

    def _chunk(self, h: dict, frames) -> None:
        st = self._stream(h)
        self._post_part(st, st.feed(h, frames[1:]))
        now = time.monotonic()
        if now - self._last_dl_post > DOWNLOAD_POST_S:
            self._last_dl_post = now
            self._post(Downloading(st.job, st.received, st.nbytes))

    def _post_part(self, st: wire.ResultStream, part) -> None:
        if part is not None:
            self._post(PartReceived(part.name, part.kind, part.arrays, part.meta, st.job, len(st.parts) - 1,
                                    st.n_parts))

    def _done(self, h: dict, frames) -> None:
        job, re_ = h.get("job"), h.get("re")
        st = self.streams.pop((job, re_), None)
        self.attached.pop(job, None)
        if st is not None:
            st.feed(h, frames[1:])  # a stream that ends early is a protocol error
        manifest = st.manifest if st is not None else {}
        self._post(Done(job, manifest, dict(h.get("summary") or {}), dict(h.get("record") or {}), re_))
