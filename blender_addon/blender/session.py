"""The add-on's runtime: one ``Session`` per registration, shared by operators, the timer and the panels.

Flamenco's pattern: the client thread (``core.client.Connection``) posts small typed messages to a queue and never
touches bpy; ``tick()`` runs on the main thread from a ``bpy.app.timers`` callback, drains the queue within a time
budget (~50 ms) through the handler table (``handlers``), feeds result parts to an incremental ``SceneImport``
(also budgeted) and, once the job is done and every part is built, links the objects in one go and pushes one undo
step. Nothing here blocks on the network. What the user starts (submit, attach, cancel...) is in ``actions``.

All logic lives in plain functions taking the session (operators only call them), so headless tests can drive it:
they capture the callback handed to ``bpy.app.timers.register`` and call it by hand.
"""
from __future__ import annotations

import logging
import queue
import time

import bpy

from ..core import client
from ..core.inputs import ImageCountCache
from ..core.jobstore import JobStore
from ..core.jobview import ACTIVE_PHASES, JobView
from .handlers import fail, finish_import, handle

log = logging.getLogger(__name__)

TICK_BUDGET_S = 0.05
TICK_INTERVAL_S = 0.1


class Session:
    def __init__(self, jobstore: JobStore | None = None):
        self.jobstore = jobstore
        self.conn: client.Connection | None = None
        self.conn_key: tuple | None = None
        self.status = "disconnected"  # disconnected | connecting | connected | error
        self.status_text = "Not connected"
        self.info: client.ServerInfo | None = None
        self.job = JobView()
        self.importer = None  # SceneImport
        self.done: client.Done | None = None
        self.splat_dir = ""  # where the followed job's 3DGS PLY is saved ("" = it is not asked for)
        self.server_jobs: list[dict] = []
        self.list_seq: int | None = None
        self.test_seq: int | None = None
        self.hello_seq: int | None = None
        self.last_import = None  # ImportResult
        self.last_summary: dict = {}  # the server's summary of the last imported job
        self.image_counts = ImageCountCache()
        self.budget_s = TICK_BUDGET_S
        self.timer_active = False
        self.reports: list[tuple[str, str]] = []  # (level, text), newest last
        self._unshown: list[tuple[str, str]] = []  # reports not yet shown in Blender's status bar / Info log
        self._timer = self._make_timer()

    # -- timer ----------------------------------------------------------------------------------------------
    def _make_timer(self):
        def aligngs_tick():
            return tick(self)

        return aligngs_tick

    def ensure_timer(self) -> None:
        if not self.timer_active:
            self.timer_active = True
            bpy.app.timers.register(self._timer, first_interval=0.0, persistent=True)

    def busy(self) -> bool:
        """Whether the timer must keep running (a job, an import or a request in flight)."""
        return (self.job.phase in ACTIVE_PHASES or self.importer is not None or self.status == "connecting"
                or self.list_seq is not None)

    def close(self) -> None:
        if self.importer is not None:
            self.importer.abort()
            self.importer = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.timer_active:
            try:
                if bpy.app.timers.is_registered(self._timer):
                    bpy.app.timers.unregister(self._timer)
            except (ValueError, AttributeError):
                pass
            self.timer_active = False

    def report(self, level: str, text: str) -> None:
        if self.reports and self.reports[-1] == (level, text):
            return
        self.reports.append((level, text))
        self._unshown.append((level, text))
        del self.reports[:-20]
        (log.error if level == "ERROR" else log.info)("%s", text)


def tick(session: Session, budget_s: float | None = None) -> float | None:
    """One timer step: drain messages, build parts, finish the import. Returns the next interval or None."""
    budget = session.budget_s if budget_s is None else budget_s
    t0 = time.perf_counter()
    changed = False
    more = False  # messages left in the queue on purpose: come back at once
    try:
        conn = session.conn
        while conn is not None and time.perf_counter() - t0 < budget:
            try:
                msg = conn.events.get_nowait()
            except queue.Empty:
                break
            phase = session.job.phase
            handle(session, msg)
            changed = True
            if session.job.phase != phase:
                # end the drain at a phase change, so the panel draws every phase (receiving, importing...) at
                # least once even when the whole result arrived between two ticks; the next tick comes at once
                more = not conn.events.empty()
                break
        imp = session.importer
        if imp is not None and imp.pending_units:
            left = budget - (time.perf_counter() - t0)
            imp.step(max(left, 0.001))
            changed = True
        if session.importer is not None and session.done is not None and not session.importer.pending_units:
            finish_import(session)
            changed = True
    except Exception as e:  # a bug must not kill the timer silently or spam tracebacks every tick
        log.exception("AlignGS tick failed")
        fail(session, f"Internal add-on error: {type(e).__name__}: {e}")
        changed = True
    if changed:
        _show_reports(session)
        _redraw()
    if session.busy() or more:
        return 0.0 if more or (session.importer is not None and session.importer.pending_units) else TICK_INTERVAL_S
    session.timer_active = False
    return None


def _show_reports(session: Session) -> None:
    """Background messages go through an operator's report(): status bar + Info log, like an operator's own."""
    while session._unshown:
        level, text = session._unshown.pop(0)
        try:
            bpy.ops.aligngs.show_report(level=level, message=text)
        except (RuntimeError, AttributeError):
            pass


def _redraw() -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
