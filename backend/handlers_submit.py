"""The ``submit`` request (docs/protocol.md sections 5.2, 5.3): settings, input files or a server folder, the job.

Nothing is stored unless every check passes; a half-written job folder is removed again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import check_content, is_image, sanitize_name
from .jobs import JobRecord
from .protocol import ProtocolError, get_field, json_safe

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)

MAX_PARTS_ENTRIES = 1000


def parts_filter(h: dict) -> list[str] | None:
    """The optional ``parts`` field of submit / subscribe / fetch: a non-empty list of part names or kinds."""
    parts = get_field(h, "parts", "list")
    if parts is None:
        return None
    if not parts or len(parts) > MAX_PARTS_ENTRIES or not all(isinstance(n, str) and 0 < len(n) <= 255 for n in parts):
        raise ProtocolError("malformed", f"field 'parts' must be a non-empty list of at most {MAX_PARTS_ENTRIES} "
                            "part names or kinds", field="parts")
    return list(parts)


def handle_submit(srv: "Server", ident: bytes, seq: int, h: dict, payload) -> None:
    from .settings import DEFAULT_PRESET, resolve_settings

    limits = srv.limits
    queued = srv.sched.queued_count()
    if queued >= limits.max_queue:
        raise ProtocolError("queue_full", f"{queued} jobs are queued (limit {limits.max_queue}); try later")
    name = get_field(h, "name", "str", default="scene")
    if len(name) > 200:
        raise ProtocolError("malformed", "field 'name' is longer than 200 characters", field="name")
    attach = get_field(h, "attach", "bool", default=True)
    parts = parts_filter(h)
    files = get_field(h, "files", "list")
    server_path = get_field(h, "server_path", "str")
    if (files is None) == (server_path is None):
        raise ProtocolError("malformed", "give exactly one of 'files' and 'server_path'", field="files")
    if h.get("preset") == "auto":  # the preset for this server's workers: balanced on CUDA, fast on CPU
        from aligngs.config import resolve_preset

        h = dict(h, preset=resolve_preset("auto", "cuda" if srv.cuda_available else "cpu"))
    cfg = resolve_settings(h, cuda_available=srv.cuda_available)
    if server_path is not None:
        if payload:
            raise ProtocolError("bad_frames", f"a server_path submit takes no binary frames, got {len(payload)}")
        if not limits.server_paths:
            raise ProtocolError("server_paths_disabled",
                                "this server does not accept server-side folders (--allow-server-paths)",
                                field="server_path")
        p = Path(server_path)
        if not p.is_absolute() or not p.is_dir():
            raise ProtocolError("invalid_path", f"server_path {server_path[:200]!r} is not an absolute path to a "
                                "folder", field="server_path")
        stored: list[tuple[str, Any]] = []
        n_inputs = count_files(p)
    else:
        stored = check_files(srv, files, payload)
        n_inputs = len(stored)
    rec = JobRecord(job=srv.store.new_id(), name=name, settings=json_safe(cfg.to_dict()), n_inputs=n_inputs,
                    server_path=str(Path(server_path)) if server_path else None, parts=parts)
    d = srv.store.create(rec)
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
        srv.store.delete(rec.job)
        raise
    srv.sched.add(rec)
    if attach:
        srv.attach(rec.job, ident, seq)
    how = f"preset {h.get('preset') or DEFAULT_PRESET}" if h.get("config") is None else "explicit config"
    log.info("job %s: queued '%s' (%d input files, %s) from %s", rec.job, name, n_inputs, how, ident.hex()[:12])
    srv.sched.schedule()
    srv.reply(ident, "accepted", seq, job=rec.job, state=rec.state, position=srv.sched.position(rec.job),
              files=[s for s, _ in stored], record=srv.sched.public(rec))


def check_files(srv: "Server", files: list, payload: list) -> list[tuple[str, Any]]:
    """Section 5.3: every frame used once with the declared size, limits, safe unique names, content signatures."""
    lim = srv.limits
    if len(files) > lim.max_files:
        raise ProtocolError("too_large", f"{len(files)} files, limit {lim.max_files}", field="files")
    if len(files) != len(payload):
        raise ProtocolError("bad_frames", f"'files' lists {len(files)} files but the message has {len(payload)} "
                            "binary frames", field="files")
    used: set[int] = set()
    names: set[str] = set()
    out = []
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(entry, dict):
            raise ProtocolError("malformed", f"{where} must be an object {{name, frame, nbytes}}", field=where)
        frame_i = entry.get("frame")
        nbytes = entry.get("nbytes")
        if (not isinstance(frame_i, int) or isinstance(frame_i, bool) or not 1 <= frame_i <= len(payload)
                or frame_i in used):
            raise ProtocolError("bad_frames", f"{where}.frame {frame_i!r}: each of frames 1..{len(payload)} must be "
                                "used once", field=f"{where}.frame")
        used.add(frame_i)
        frame = payload[frame_i - 1]
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes != len(frame):
            raise ProtocolError("bad_frames", f"{where}.nbytes {nbytes!r} != frame {frame_i} length {len(frame)}",
                                field=f"{where}.nbytes")
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


def count_files(folder: Path, cap: int = 100_000) -> int:
    n = 0
    for _root, _dirs, files in os.walk(folder):
        n += len(files)
        if n >= cap:
            break
    return n
