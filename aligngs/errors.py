"""The library's exception root, at the bottom of the layers (imports nothing from aligngs).

Every exception class under ``aligngs/`` derives from :class:`AlignGSError`, except :mod:`aligngs.wire`'s
(``WireError`` and its subclasses): the wire imports nothing else from aligngs because ``build_addon.py`` vendors it
alone into the Blender extension.

- :class:`UserError`: bad input or a missing prerequisite (model weights, files) that the user fixes; the message
  names the file, field or checkpoint, and ``fix`` says in words what to do. The backend reports these as typed
  protocol errors, not tracebacks.
- :class:`Cancelled`: the pipeline stopped because its ``should_cancel()`` poll turned true.

Subclasses keep their historical built-in base as a second base (``DataError`` is still a ``ValueError``,
``CheckpointNotFoundError`` a ``FileNotFoundError``), so existing ``except`` clauses keep working.
"""
from __future__ import annotations


class AlignGSError(Exception):
    """Root of every exception the aligngs library raises (aligngs.wire excepted, see the module doc)."""


class UserError(AlignGSError):
    """Something the user can fix: bad input, a missing file or checkpoint.

    ``fix`` (keyword) says what to do, in words; the message itself is passed on unchanged."""

    fix: str = ""

    def __init__(self, *args: object, fix: str = "") -> None:
        super().__init__(*args)
        if fix:
            self.fix = fix


class Cancelled(AlignGSError):
    """Raised inside the pipeline when ``should_cancel()`` turns true."""
