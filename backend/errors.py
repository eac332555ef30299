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
    """``{"code", "message"[, "fix"][, "model"]}`` for an exception a job function raised (the outcome's error).

    - teacher weights are missing (``aligngs`` ``CheckpointNotFoundError``): ``missing_model``, ``model`` = the
      checkpoint id;
    - any other user error (``aligngs.errors.UserError``: ``DataError`` and the like, bad input or a missing file):
      ``bad_input``, the message names the file / field;
    - anything else: ``job_failed`` with ``"<ExceptionType>: <message>"`` (the traceback is only in the job log).

    A user error's ``fix`` (what to do, in words) is passed on as ``fix`` and appended to the message when the
    message does not already say it, so a client that shows only ``message`` still shows the way out.
    Classes are recognised by name along the MRO, so the backend needs no import of the library here.
    """
    names = _mro_names(e)
    if "CheckpointNotFoundError" in names or "UserError" in names or "DataError" in names:
        message = str(e)
        fix = getattr(e, "fix", "")
        out: dict[str, Any] = {"code": "missing_model" if "CheckpointNotFoundError" in names else "bad_input"}
        if isinstance(fix, str) and fix:
            out["fix"] = fix[:2000]
            if fix not in message:
                message = f"{message.rstrip('.')}. {fix}"
        out["message"] = message[:2000]
        model = getattr(e, "model_id", None)
        if out["code"] == "missing_model" and isinstance(model, str):
            out["model"] = model
        return out
    return {"code": "job_failed", "message": f"{type(e).__name__}: {e}"[:2000]}
