"""The backend's exceptions: one root, :class:`BackendError`.

Everything the backend raises on purpose derives from it, so a caller (``backend.serve``, a test, a tool) can catch
``BackendError`` and show its message. Two kinds of error never leave the server as exceptions:

- a request the server refuses is a ``backend.protocol.ProtocolError`` (the wire's own error type; it becomes an
  ``error{code, message, field}`` reply, docs/protocol.md section 8). It lives with the wire code because the add-on
  shares it, and the wire code imports nothing from the backend;
- a job that fails becomes a ``failed{code, message}`` event (section 6.2). :func:`job_failure` turns the exception a
  job function raised into that code and message: user errors (bad input, missing teacher weights) get a typed code
  and a message that says what to do, never a traceback (the traceback goes to the job log only).
"""
from __future__ import annotations

from typing import Any


class BackendError(Exception):
    """Root of every exception the backend raises itself."""


class ConfigError(BackendError, ValueError):
    """The server's own configuration (command-line flags, executor settings) is unusable."""


class SecurityError(ConfigError):
    """The requested bind / key set-up is refused (non-loopback without CURVE, half a key pair)."""


class ExecutorUnavailable(ConfigError):
    """The requested executor cannot run here (e.g. ``--executor ray`` without the ``cluster`` extra)."""


class ExecutorError(BackendError):
    """An executor could not start, watch or collect a job."""


class ResultMissing(BackendError):
    """A finished job's result folder is missing or unreadable."""


#: The ``failed.code`` values a worker reports itself (the others, ``worker_died`` and ``job_interrupted``, come
#: from the scheduler); the full list is ``aligngs.wire``'s ``JOB_ERROR_CODES``.
REPORTED_CODES = ("job_failed", "bad_input", "missing_model")


def _mro_names(e: BaseException) -> set[str]:
    return {c.__name__ for c in type(e).__mro__}


def job_failure(e: BaseException) -> dict[str, Any]:
    """``{"code", "message", ...}`` for an exception a job function raised (the outcome's error part).

    - the input was rejected (``aligngs`` ``DataError``, or any error the library marks ``user_error = "bad_input"``):
      ``bad_input``, the message names the file / field;
    - teacher weights are missing (``CheckpointNotFoundError``, or ``user_error = "missing_model"``): ``missing_model``,
      with ``model`` = the checkpoint id and the message saying how to provide it or how to run without it;
    - anything else: ``job_failed`` with ``"<ExceptionType>: <message>"`` (the traceback is only in the job log).

    Classes are recognised by name along the MRO as well, so this works wherever the library keeps them.
    """
    names = _mro_names(e)
    kind = getattr(e, "user_error", None)
    if kind == "missing_model" or "CheckpointNotFoundError" in names:
        out: dict[str, Any] = {"code": "missing_model", "message": str(e)[:2000]}
        model = getattr(e, "model_id", None)
        if isinstance(model, str):
            out["model"] = model
        return out
    if kind == "bad_input" or "DataError" in names:
        return {"code": "bad_input", "message": str(e)[:2000]}
    return {"code": "job_failed", "message": f"{type(e).__name__}: {e}"[:2000]}
