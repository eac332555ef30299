"""The one Session of an enabled add-on (created on first use, closed on unregister) and the file-load hook."""
from __future__ import annotations

import os

import bpy
from bpy.app.handlers import persistent

from ..core.jobstore import JobStore
from ..core.jobview import JobView
from .session import Session

_session: Session | None = None


def jobstore_path() -> str:
    base = bpy.utils.user_resource("CONFIG", path="aligngs", create=True)
    return os.path.join(base, "jobs.json")


def get_session() -> Session:
    global _session
    if _session is None:
        _session = Session(JobStore(jobstore_path()))
    return _session


def current_session() -> Session | None:
    """The session if one exists (without making one)."""
    return _session


def close_session() -> None:
    global _session
    if _session is not None:
        _session.close()
        _session = None


@persistent
def _on_load_post(*_args):
    # A different .blend: the job view belongs to the old file's scenes. The connection stays.
    s = _session
    if s is not None and s.job.phase not in ("receiving", "importing"):
        s.job = JobView()


def register():
    bpy.app.handlers.load_post.append(_on_load_post)


def unregister():
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    close_session()
