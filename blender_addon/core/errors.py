"""The add-on's exceptions (one root, ``AddonError``) and the texts the UI shows for the server's error codes."""
from __future__ import annotations


class AddonError(Exception):
    """Root of every error the add-on raises."""


class UserError(AddonError):
    """Something the user can fix; the message is shown as is (operators report it, panels show it)."""


class AddressError(AddonError, ValueError):
    """The server address in the preferences cannot be used; the message says why."""


class InputError(AddonError, ValueError):
    """The chosen input folder cannot be submitted; the message says why."""


class CurveKeyError(AddonError, ValueError):
    """A CURVE key or key file cannot be used."""


class GeometryError(AddonError, ValueError):
    """Result data the geometry maths cannot use (up vector, colours, camera intrinsics)."""


class SettingsError(AddonError, ValueError):
    """An Advanced setting's text cannot be sent (not a JSON value)."""


class StateError(AddonError, RuntimeError):
    """An object used out of order (a connection started twice, an import finished twice)."""


class ClientError(AddonError):
    """A request failed; ``error`` holds the typed Error (code, message, field, job)."""

    def __init__(self, error):
        super().__init__(error.text())
        self.error = error


class JobCancelled(AddonError):
    """The job was cancelled while a blocking call waited for it."""


ERROR_PREFIX = {
    "invalid_settings": "The server rejected a setting",
    "invalid_file": "The server rejected an input file",
    "too_large": "Too much data for the server",
    "queue_full": "The server's queue is full; try again later",
    "unknown_job": "The server does not know this job (deleted, or another server)",
    "invalid_state": "Not possible in the job's current state",
    "server_paths_disabled": "The server does not accept folders on the server",
    "bad_input": "The reconstruction could not read the inputs",
    "missing_model": "The server lacks a model the reconstruction needs",
    "job_failed": "The reconstruction failed",
    "worker_died": "The reconstruction process crashed",
    "job_interrupted": "The server stopped while the job ran (it can be resubmitted)",
    "internal": "The server hit an internal error",
    "bad_version": "This add-on and the server speak different protocol versions",
}


def describe_error(code: str, message: str, field_name: str | None = None) -> str:
    """One readable line for the UI: a plain-language prefix for known codes + the server's message."""
    msg = (message or "").strip()
    if field_name and field_name not in msg:
        msg = f"{field_name}: {msg}" if msg else field_name
    prefix = ERROR_PREFIX.get(code)
    if code == "job_interrupted":
        return prefix  # the server's message says the same
    if prefix and msg:
        return f"{prefix}: {msg}"
    return prefix or msg or code


def unreachable_text(endpoint_: str, timeout_s: float, curve: bool = False) -> str:
    return (f"No answer from {endpoint_} within {timeout_s:g} s: is the AlignGS server running there"
            f"{' and is this client key authorised' if curve else ''}?")
