"""Wire protocol v1 primitives (see docs/protocol.md): header codec, field checks, array descriptors, chunking.

Pure functions, no sockets. Frame 0 of every message is a strict-JSON UTF-8 object; frames 1..n are raw bytes
referenced from the header by index. Nothing here unpickles or evaluates anything.
"""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from aligngs.results import ALLOWED_DTYPES

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_HEADER_BYTES = 1 << 20
CHUNK_BYTES = 8 << 20
MAX_SEQ = 2**53

REQUEST_TYPES = frozenset(
    {"hello", "ping", "submit", "status", "list", "cancel", "fetch", "subscribe", "unsubscribe", "resubmit", "delete", "log"}
)
# Request types that may carry binary frames.
TYPES_WITH_FRAMES = frozenset({"submit"})

JOB_STATES = ("queued", "running", "cancelling", "done", "failed", "cancelled", "interrupted")
FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

ERROR_CODES = frozenset(
    {
        "bad_version", "malformed", "unknown_type", "bad_frames", "too_large", "invalid_settings", "invalid_file",
        "server_paths_disabled", "invalid_path", "unknown_job", "invalid_state", "queue_full", "internal",
    }
)
DTYPES = tuple(sorted(ALLOWED_DTYPES))


class ProtocolError(Exception):
    """A request that must be answered with ``error{code, message, ...}``."""

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra: Any):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra
        self.re: int | None = None  # the request's seq when it could be read

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_json_object(data: bytes | memoryview, what: str = "header") -> dict:
    """Strict JSON object from UTF-8 bytes; anything else raises ProtocolError('malformed')."""
    try:
        text = bytes(data).decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError("malformed", f"{what} is not UTF-8 JSON: {str(e)[:200]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


@dataclass
class Request:
    header: dict
    type: str
    seq: int


def read_seq(header: Any) -> int | None:
    """The request's seq when it is a valid one (used for ``re`` even when the rest is broken)."""
    if isinstance(header, dict):
        s = header.get("seq")
        if isinstance(s, int) and not isinstance(s, bool) and 0 <= s < MAX_SEQ:
            return s
    return None


def decode_request(frame0: bytes | memoryview, max_header_bytes: int = MAX_HEADER_BYTES) -> Request:
    """Decode and check frame 0 of a client request (version, type, seq).

    A ProtocolError raised here carries ``re`` = the request's seq whenever that much could be read.
    """
    if len(frame0) > max_header_bytes:
        raise ProtocolError("too_large", f"header is {len(frame0)} bytes, limit {max_header_bytes}")
    h = decode_json_object(frame0)
    seq = read_seq(h)
    try:
        v = h.get("v")
        if isinstance(v, bool) or not isinstance(v, int) or v not in SUPPORTED_VERSIONS:
            raise ProtocolError(
                "bad_version", f"protocol version {_short(v)} not supported", field="v", supported=list(SUPPORTED_VERSIONS)
            )
        t = h.get("type")
        if not isinstance(t, str):
            raise ProtocolError("malformed", "field 'type' must be a string", field="type")
        if seq is None:
            raise ProtocolError("malformed", f"field 'seq' must be an integer in [0, 2^53), got {_short(h.get('seq'))}", field="seq")
        if t not in REQUEST_TYPES:
            raise ProtocolError("unknown_type", f"unknown request type {t[:64]!r} (known: {', '.join(sorted(REQUEST_TYPES))})")
    except ProtocolError as e:
        e.re = seq
        raise
    return Request(h, t, seq)


_MISSING = object()


def get_field(h: dict, name: str, kind: str, *, required: bool = False, default: Any = None) -> Any:
    """Typed header field. kind: str, int, bool, number, object, list, str_or_list."""
    value = h.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ProtocolError("malformed", f"field {name!r} is required", field=name)
        return default
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "object": isinstance(value, dict),
        "list": isinstance(value, list),
        "str_or_list": isinstance(value, str) or (isinstance(value, list) and all(isinstance(x, str) for x in value)),
    }[kind]
    if not ok:
        expected = {"str": "a string", "int": "an integer", "bool": "true/false", "number": "a number",
                    "object": "an object", "list": "a list", "str_or_list": "a string or a list of strings"}[kind]
        raise ProtocolError("malformed", f"field {name!r} must be {expected}, got {_short(value)}", field=name)
    return value


def get_job_id(h: dict) -> str:
    job = get_field(h, "job", "str", required=True)
    if not JOB_ID_RE.match(job):
        raise ProtocolError("unknown_job", f"no job {job[:80]!r}", job=job[:80])
    return job


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


def json_safe(obj: Any) -> Any:
    """Convert to strict-JSON-safe values: numpy scalars/arrays, tuples, paths; NaN/inf become null."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    return str(obj)


def encode_header(header: dict) -> bytes:
    """Strict JSON (UTF-8). The header must already be JSON-safe (use ``json_safe`` for foreign data)."""
    return json.dumps(header, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")


def message(type_: str, re_: int | None, **fields: Any) -> dict:
    """A server -> client header."""
    h = {"v": PROTOCOL_VERSION, "type": type_, "re": re_}
    h.update(fields)
    return h


# ----------------------------------------------------------------------------------------------- arrays

def le_dtype(name: str) -> np.dtype:
    """The little-endian numpy dtype for an allow-listed dtype name."""
    if name not in ALLOWED_DTYPES:
        raise ProtocolError("malformed", f"dtype {name!r} not allowed (allowed: {', '.join(DTYPES)})", field="dtype")
    return np.dtype(name).newbyteorder("<")


def to_wire_array(arr: np.ndarray) -> np.ndarray:
    """C-contiguous little-endian array with an allowed dtype (no copy when it already is one)."""
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise ValueError(f"array dtype {arr.dtype} not allowed on the wire")
    bo = arr.dtype.byteorder
    if bo == ">" or (bo == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # (ascontiguousarray makes 0-d arrays 1-d)


def describe_array(name: str, arr: np.ndarray, frame: int | None, **extra: Any) -> dict:
    d = {"name": name, "dtype": arr.dtype.name, "shape": [int(s) for s in arr.shape], "nbytes": int(arr.nbytes), "frame": frame}
    d.update(extra)
    return d


def array_bytes(arr: np.ndarray) -> memoryview:
    """A flat byte view of a C-contiguous array (no copy; works for read-only memmaps)."""
    if arr.ndim == 0 or arr.size == 0:
        return memoryview(arr.tobytes())
    return memoryview(arr).cast("B")


@dataclass
class ArrayDesc:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    nbytes: int
    frame: int | None
    chunks: int = 0


def parse_array_desc(d: Any, where: str, *, n_frames: int | None = None, allow_chunked: bool = False) -> ArrayDesc:
    """Validate an array descriptor (allow-listed dtype, non-negative shape, nbytes consistent, frame in range)."""
    if not isinstance(d, dict):
        raise ProtocolError("malformed", f"{where}: array descriptor must be an object", field=where)
    name = d.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ProtocolError("malformed", f"{where}.name must be a non-empty string", field=f"{where}.name")
    dt = d.get("dtype")
    if not isinstance(dt, str) or dt not in ALLOWED_DTYPES:
        raise ProtocolError("malformed", f"{where}.dtype {_short(dt)} not allowed", field=f"{where}.dtype")
    shape = d.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape)
    ):
        raise ProtocolError("malformed", f"{where}.shape must be a list of at most 8 non-negative integers", field=f"{where}.shape")
    dtype = le_dtype(dt)
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
    nbytes = d.get("nbytes")
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes != expected:
        raise ProtocolError("bad_frames", f"{where}.nbytes {_short(nbytes)} != shape x itemsize = {expected}", field=f"{where}.nbytes")
    frame = d.get("frame")
    chunks = d.get("chunks", 0)
    if frame is None:
        if not allow_chunked:
            raise ProtocolError("malformed", f"{where}.frame must be an integer", field=f"{where}.frame")
        if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1:
            raise ProtocolError("malformed", f"{where}.chunks must be >= 1 when frame is null", field=f"{where}.chunks")
    else:
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 1 or (n_frames is not None and frame > n_frames):
            raise ProtocolError("bad_frames", f"{where}.frame {_short(frame)} out of range", field=f"{where}.frame")
        chunks = 0
    return ArrayDesc(name, dtype, tuple(shape), nbytes, frame, chunks)


def chunk_ranges(total: int, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """[(offset, nbytes)] covering ``total`` bytes in pieces of at most ``chunk_bytes``."""
    if total <= 0:
        return [(0, 0)]
    return [(o, min(chunk_bytes, total - o)) for o in range(0, total, chunk_bytes)]


def n_chunks(total: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    return max(1, -(-total // chunk_bytes))


@dataclass
class Limits:
    max_header_bytes: int = MAX_HEADER_BYTES
    max_files: int = 2000
    max_file_bytes: int = 64 << 20
    max_message_bytes: int = 1024 << 20
    chunk_bytes: int = CHUNK_BYTES
    max_queue: int = 100
    server_paths: bool = False
    extensions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "max_header_bytes": self.max_header_bytes,
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_message_bytes": self.max_message_bytes,
            "chunk_bytes": self.chunk_bytes,
            "max_queue": self.max_queue,
            "server_paths": self.server_paths,
            "extensions": list(self.extensions),
        }

    @property
    def max_frame_bytes(self) -> int:
        return max(self.max_file_bytes, self.max_header_bytes)
