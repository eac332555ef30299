"""Request handlers (docs/protocol.md section 5): one function per request type, looked up in :data:`HANDLERS`.

Each handler gets the server (``backend.server.Server``: its scheduler, job store, limits and send helpers), the
client's identity, the request's ``seq``, its header and its binary frames. It answers with ``srv.reply`` or raises
``ProtocolError`` (the server turns that into the ``error`` reply). ``submit`` lives in ``handlers_submit``.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .jobs import JobRecord
from .protocol import (DTYPES, FINAL_STATES, JOB_STATES, PROTOCOL_VERSION, ProtocolError, get_field, get_job_id,
                       json_safe)
from .handlers_submit import handle_submit, parts_filter

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)

LOG_TAIL_DEFAULT = 65536
LOG_TAIL_MAX = 1 << 20


def job_of(srv: "Server", h: dict) -> JobRecord:
    job = get_job_id(h)
    rec = srv.sched.get(job)
    if rec is None:
        raise ProtocolError("unknown_job", f"no job {job!r}", job=job)
    return rec


def handle_hello(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    from aligngs.config import PRESETS, PipelineConfig

    from .settings import CHOICES, DEFAULT_PRESET, DEPTH_TEACHERS, SEMANTIC_TEACHERS

    client = get_field(h, "client", "str", default="")
    log.info("hello from %s (%s)", ident.hex()[:12], client[:100])
    slots = srv.sched.slots
    srv.reply(
        ident, "welcome", seq,
        protocol=PROTOCOL_VERSION,
        server=srv.version,
        device=srv.executor.describe(slots),
        workers=srv.executor.workers(slots),
        executor=srv.executor.name,
        teachers={"semantic": list(SEMANTIC_TEACHERS), "depth": list(DEPTH_TEACHERS)},
        models=known_models(),
        presets=json_safe(PRESETS),
        default_preset=DEFAULT_PRESET,
        defaults=json_safe(PipelineConfig().to_dict()),
        choices={key: list(names) for key, names in CHOICES.items()},
        limits=srv.limits.to_dict(),
        dtypes=list(DTYPES),
        queue={"queued": len(srv.sched.queue), "running": len(srv.sched.running)},
        curve=srv.curve,
    )


def handle_ping(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    srv.reply(ident, "pong", seq, time=time.time())


def handle_status(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    srv.reply(ident, "status", seq, job=rec.job, record=srv.sched.public(rec))


def handle_list(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    states = get_field(h, "state", "str_or_list")
    if isinstance(states, str):
        states = [states]
    if states is not None:
        unknown = [s for s in states if s not in JOB_STATES]
        if unknown:
            raise ProtocolError("malformed", f"field 'state': unknown job state {unknown[0][:40]!r} "
                                f"(states: {', '.join(JOB_STATES)})", field="state")
    recs = [srv.sched.public(r) for r in srv.sched.jobs.values() if states is None or r.state in states]
    recs.sort(key=lambda r: (r["created"], r["job"]))
    srv.reply(ident, "jobs", seq, jobs=recs)


def handle_log(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    n = get_field(h, "bytes", "int", default=LOG_TAIL_DEFAULT)
    if not 1 <= n <= LOG_TAIL_MAX:
        raise ProtocolError("malformed", f"field 'bytes' must be in 1..{LOG_TAIL_MAX}", field="bytes")
    path = srv.store.log_path(rec.job)
    text, truncated = "", False
    if path.is_file():
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size > n:
                f.seek(size - n)
                truncated = True
            text = f.read(n).decode("utf-8", errors="replace")
    srv.reply(ident, "log", seq, job=rec.job, text=text, truncated=truncated)


def handle_cancel(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    job = rec.job
    if rec.state == "queued":
        srv.sched.cancel(rec)
        srv.reply(ident, "cancelled", seq, job=job, record=srv.sched.public(rec))
        srv.push(job, "cancelled", record=srv.sched.public(rec))
        srv.detach(job)
    elif rec.state in ("running", "cancelling"):
        srv.cancel_waiters.setdefault(job, []).append((ident, seq))
        srv.sched.cancel(rec)
    elif rec.state == "cancelled":
        srv.reply(ident, "cancelled", seq, job=job, record=srv.sched.public(rec))
    else:
        raise ProtocolError("invalid_state", f"job {job} is {rec.state}; nothing to cancel", job=job, state=rec.state)


def handle_fetch(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    include_files = get_field(h, "files", "bool", default=True)
    parts = parts_filter(h)
    if rec.state != "done":
        raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}, not done", job=rec.job, state=rec.state)
    srv.stream_result(ident, seq, rec.job, include_files=include_files, parts=parts)


def handle_subscribe(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    job = rec.job
    parts = parts_filter(h)
    srv.reply(ident, "subscribed", seq, job=job, record=srv.sched.public(rec))
    if rec.state in ("queued", "running", "cancelling"):
        srv.attach(job, ident, seq, parts)
    elif rec.state == "done":
        srv.stream_result(ident, seq, job, parts=parts if parts is not None else rec.parts)
    elif rec.state == "cancelled":
        srv.reply(ident, "cancelled", seq, job=job, record=srv.sched.public(rec))
    else:
        srv.reply(ident, "failed", seq, job=job, **srv.failure_fields(rec))


def handle_unsubscribe(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    srv.detach(rec.job, ident)
    srv.reply(ident, "unsubscribed", seq, job=rec.job)


def handle_resubmit(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    if rec.state not in ("failed", "cancelled", "interrupted"):
        raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}; only failed, cancelled or interrupted "
                            "jobs can be resubmitted", job=rec.job, state=rec.state)
    if srv.sched.queued_count() >= srv.limits.max_queue:
        raise ProtocolError("queue_full", f"the queue is full (limit {srv.limits.max_queue}); try later")
    srv.sched.requeue(rec)
    srv.attach(rec.job, ident, seq)
    log.info("job %s: resubmitted (attempt %d)", rec.job, rec.attempt)
    srv.sched.schedule()
    srv.reply(ident, "accepted", seq, job=rec.job, state=rec.state, position=srv.sched.position(rec.job), files=[],
              record=srv.sched.public(rec))


def handle_delete(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    rec = job_of(srv, h)
    if rec.state not in FINAL_STATES:
        raise ProtocolError("invalid_state", f"job {rec.job} is {rec.state}; cancel it first", job=rec.job,
                            state=rec.state)
    srv.sched.delete(rec)
    srv.detach(rec.job)
    log.info("job %s: deleted", rec.job)
    srv.reply(ident, "deleted", seq, job=rec.job)


Handler = Callable[["Server", bytes, int, dict, Any], None]

HANDLERS: dict[str, Handler] = {
    "hello": handle_hello,
    "ping": handle_ping,
    "submit": handle_submit,
    "status": handle_status,
    "list": handle_list,
    "cancel": handle_cancel,
    "fetch": handle_fetch,
    "subscribe": handle_subscribe,
    "unsubscribe": handle_unsubscribe,
    "resubmit": handle_resubmit,
    "delete": handle_delete,
    "log": handle_log,
}


def known_models() -> list[dict]:
    """Known teacher checkpoints and whether each is in the local Hugging Face cache (no transformers import)."""
    registry = None
    for mod in ("aligngs.priors.models", "aligngs.priors.checkpoints", "aligngs.semantics.models"):
        try:
            registry = __import__(mod, fromlist=["REGISTRY"]).REGISTRY
            break
        except Exception:  # the registry is optional for the server (and moves with the library layout)
            continue
    if registry is None:
        return []
    cache = hf_cache_dir()
    out = []
    for info in registry.values():
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
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    home = os.environ.get("HF_HOME") or os.path.join(cache, "huggingface")
    return Path(home) / "hub"
