"""Frame 0 of every message: a strict-JSON UTF-8 object. Decoding and checking requests, building headers."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .constants import JOB_ID_RE, MAX_HEADER_BYTES, MAX_SEQ, PROTOCOL_VERSION, REQUEST_TYPES, SUPPORTED_VERSIONS
from .errors import ProtocolError


def short(value: Any) -> str:
    """``repr(value)`` cut to 80 characters (for error messages)."""
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


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


def encode_header(header: dict) -> bytes:
    """Strict JSON (UTF-8). The header must already be JSON-safe (use ``json_safe`` for foreign data)."""
    return json.dumps(header, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")


def message(type_: str, re_: int | None, **fields: Any) -> dict:
    """A server -> client header."""
    h = {"v": PROTOCOL_VERSION, "type": type_, "re": re_}
    h.update(fields)
    return h


def request(type_: str, seq: int, **fields: Any) -> dict:
    """A client -> server header; fields that are None are left out."""
    h = {"v": PROTOCOL_VERSION, "type": type_, "seq": seq}
    h.update({k: v for k, v in fields.items() if v is not None})
    return h


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
                "bad_version", f"protocol version {short(v)} not supported", field="v", supported=list(SUPPORTED_VERSIONS)
            )
        t = h.get("type")
        if not isinstance(t, str):
            raise ProtocolError("malformed", "field 'type' must be a string", field="type")
        if seq is None:
            raise ProtocolError("malformed", f"field 'seq' must be an integer in [0, 2^53), got {short(h.get('seq'))}", field="seq")
        if t not in REQUEST_TYPES:
            raise ProtocolError("unknown_type", f"unknown request type {t[:64]!r} (known: {', '.join(sorted(REQUEST_TYPES))})")
    except ProtocolError as e:
        e.re = seq
        raise
    return Request(h, t, seq)


_MISSING = object()
_KINDS = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true/false", lambda v: isinstance(v, bool)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "str_or_list": ("a string or a list of strings",
                    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))),
    "str_list": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}


def get_field(h: dict, name: str, kind: str, *, required: bool = False, default: Any = None) -> Any:
    """Typed header field. kind: str, int, bool, number, object, list, str_or_list, str_list."""
    value = h.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ProtocolError("malformed", f"field {name!r} is required", field=name)
        return default
    expected, ok = _KINDS[kind]
    if not ok(value):
        raise ProtocolError("malformed", f"field {name!r} must be {expected}, got {short(value)}", field=name)
    return value


def get_job_id(h: dict) -> str:
    job = get_field(h, "job", "str", required=True)
    if not JOB_ID_RE.match(job):
        raise ProtocolError("unknown_job", f"no job {job[:80]!r}", job=job[:80])
    return job
