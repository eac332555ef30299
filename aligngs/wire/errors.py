"""The wire's exceptions: one root (``WireError``), a protocol error with its typed code, a result-format error."""
from __future__ import annotations

from typing import Any

from .constants import ERROR_CODES


class WireError(Exception):
    """Root of every error raised by ``aligngs.wire``."""


class ProtocolError(WireError):
    """A message that breaks the protocol; a server answers it with ``error{code, message, ...}``."""

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra: Any):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown protocol error code {code!r}")
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


class ResultFormatError(WireError, ValueError):
    """A result manifest or part does not match the result format; the message names the part and array."""
