"""Protocol constants (docs/protocol.md): versions, message and request types, job states, error codes, dtypes,
limits. Every other module (server, reference client, Blender add-on) takes them from here."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
RESULTS_VERSION = 1  # the result format (manifest.json + .npy arrays; section 7)
SUPPORTED_RESULTS_VERSIONS = (1,)

MAX_HEADER_BYTES = 1 << 20
CHUNK_BYTES = 8 << 20
MAX_SEQ = 2**53

# Requests a client sends (section 5) and the ones that may carry binary frames.
REQUEST_TYPES = frozenset(
    {"hello", "ping", "submit", "status", "list", "cancel", "fetch", "subscribe", "unsubscribe", "resubmit", "delete", "log"}
)
TYPES_WITH_FRAMES = frozenset({"submit"})
# Direct replies the server sends (a ``cancelled`` is a reply to ``cancel`` too, and also a pushed event).
REPLY_TYPES = frozenset({"welcome", "pong", "accepted", "status", "jobs", "subscribed", "unsubscribed", "deleted", "log", "error"})
# Events pushed to attached clients (section 6) and the result stream (section 7).
EVENT_TYPES = frozenset({"progress", "result", "part", "chunk", "done", "failed", "cancelled"})

JOB_STATES = ("queued", "running", "cancelling", "done", "failed", "cancelled", "interrupted")
FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
ACTIVE_STATES = tuple(s for s in JOB_STATES if s not in FINAL_STATES)
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

# ``error.code`` values (section 8).
ERROR_CODES = frozenset(
    {
        "bad_version", "malformed", "unknown_type", "bad_frames", "too_large", "invalid_settings", "invalid_file",
        "server_paths_disabled", "invalid_path", "unknown_job", "invalid_state", "queue_full", "internal",
    }
)
# ``failed.code`` values (section 6.2).
JOB_ERROR_CODES = frozenset({"job_failed", "bad_input", "missing_model", "worker_died", "job_interrupted"})

# The dtype allow-list of arrays on the wire and in result folders (section 2.3).
ALLOWED_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "int32", "uint32", "int64", "float16", "float32", "float64", "bool"}
)
DTYPES = tuple(sorted(ALLOWED_DTYPES))

# Result part kinds (section 7); clients skip kinds they do not know.
PART_KINDS = ("mesh", "points", "cameras", "class", "file")


@dataclass
class Limits:
    """The server's size limits (section 1.2), as ``welcome.limits`` reports them."""

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

    @classmethod
    def from_dict(cls, d: dict | None) -> "Limits":
        """Limits from a ``welcome.limits`` object; missing or mistyped keys keep their defaults."""
        out = cls()
        for key, value in (d or {}).items():
            default = getattr(out, key, None)
            if key == "extensions" and isinstance(value, list):
                out.extensions = [str(v) for v in value]
            elif isinstance(default, bool):
                if isinstance(value, bool):
                    setattr(out, key, value)
            elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
                setattr(out, key, value)
        return out

    @property
    def max_frame_bytes(self) -> int:
        return max(self.max_file_bytes, self.max_header_bytes)
