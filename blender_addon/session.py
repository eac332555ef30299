"""The add-on's runtime: one ``Session`` per registration, shared by operators, the timer and the panels.

Flamenco's pattern: the client thread (``client.Connection``) posts small typed messages to a queue and never touches
bpy; ``tick()`` runs on the main thread from a ``bpy.app.timers`` callback, drains the queue within a time budget
(~50 ms), feeds result parts to an incremental ``SceneImport`` (also budgeted) and, once the job is done and every
part is built, links the objects in one go and pushes one undo step. Nothing here blocks on the network.

All logic lives in plain functions taking the session (operators only call them), so headless tests can drive it:
they capture the callback handed to ``bpy.app.timers.register`` and call it by hand.
"""
from __future__ import annotations

import logging
import os
import queue
import time
from dataclasses import dataclass, field

import bpy

from . import classes, client
from .address import AddressError, normalize_address, online_block_reason
from .importer import ROOT_PREFIX, ImportOptions, SceneImport, import_parts, import_result_folder
from .inputs import ImageCountCache, InputError, scan_folder
from .jobstore import JobEntry, JobStore
from .resultfmt import ResultFormatError

log = logging.getLogger(__name__)

TICK_BUDGET_S = 0.05
TICK_INTERVAL_S = 0.1
ACTIVE_PHASES = ("submitting", "attaching", "queued", "running", "cancelling", "receiving", "importing")


class UserError(Exception):
    """Something the user can fix; the message is shown as is (operators report it, panels show it)."""


@dataclass
class JobView:
    """What the panel shows about the job this session follows."""

    job: str = ""
    scene: str = ""  # Blender scene that receives the result
    name: str = ""
    phase: str = "idle"  # idle | submitting | attaching | queued | running | cancelling | receiving | importing
    #                      | done | failed | cancelled
    request_seq: int | None = None  # the submit/subscribe/fetch this view waits on
    stage: str = ""
    stage_text: str = ""
    overall: float = 0.0
    eta_s: float | None = None
    position: int | None = None
    received: int = 0
    total: int = 0
    parts_done: int = 0
    parts_total: int = 0
    error: str = ""
    started: float = field(default_factory=time.time)


class Session:
    def __init__(self, jobstore: JobStore | None = None):
        self.jobstore = jobstore
        self.conn: client.Connection | None = None
        self.conn_key: tuple | None = None
        self.status = "disconnected"  # disconnected | connecting | connected | error
        self.status_text = "Not connected"
        self.info: client.ServerInfo | None = None
        self.job = JobView()
        self.importer: SceneImport | None = None
        self.done: client.Done | None = None
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


# ------------------------------------------------------------------------------------------------- connection

def connection_settings(prefs) -> tuple[str, client.CurveKeys | None, float]:
    """(normalized address, CURVE keys or None, timeout) from the preferences; UserError when unusable."""
    try:
        address = normalize_address(prefs.address)
    except AddressError as e:
        raise UserError(str(e)) from None
    reason = online_block_reason(address, bool(bpy.app.online_access))
    if reason:
        raise UserError(reason)
    keys = None
    if prefs.use_curve:
        try:
            server_pub = prefs.server_public_key.strip()
            client_pub, client_sec = prefs.client_public_key.strip(), prefs.client_secret_key.strip()
            if prefs.server_key_file.strip():
                server_pub, _ = client.load_key_file(bpy.path.abspath(prefs.server_key_file))
            if prefs.client_key_file.strip():
                client_pub, client_sec = client.load_key_file(bpy.path.abspath(prefs.client_key_file))
                if client_sec is None:
                    raise ValueError(f"{prefs.client_key_file} holds no secret key (use the *.key_secret file)")
            keys = client.CurveKeys(server_pub, client_pub, client_sec or "")
            keys.validate()
        except ValueError as e:
            raise UserError(f"CURVE keys (add-on preferences): {e}") from None
    return address, keys, float(prefs.timeout_s)


def ensure_connection(session: Session, prefs) -> client.Connection:
    """The session's connection for the current preferences (re-created when they changed)."""
    address, keys, timeout = connection_settings(prefs)
    key = (address, None if keys is None else (keys.server_public, keys.client_public, keys.client_secret), timeout)
    if session.conn is not None and session.conn_key == key and session.conn.alive:
        return session.conn
    if session.conn is not None:
        session.conn.close()
    session.conn = client.Connection(address, keys=keys, timeout_s=timeout)
    session.conn_key = key
    session.info = None
    session.status, session.status_text = "connecting", f"Connecting to {address}…"
    session.conn.start(hello=False)
    session.hello_seq = session.conn.hello()
    session.ensure_timer()
    return session.conn


def test_connection(session: Session, prefs) -> None:
    """Say hello (again) and report the server's answer (or the reason there is none)."""
    before = session.conn
    conn = ensure_connection(session, prefs)
    if conn is before:
        session.hello_seq = conn.hello()
    session.status, session.status_text = "connecting", f"Contacting {conn.address}…"
    session.test_seq = session.hello_seq
    session.ensure_timer()


# ------------------------------------------------------------------------------------------------- readiness

def reconstruct_block_reason(session: Session, prefs, settings) -> str | None:
    """Why Reconstruct Scene cannot run now (None when it can)."""
    if prefs is None:
        return "the AlignGS add-on is not enabled"
    try:
        connection_settings(prefs)
    except UserError as e:
        return str(e)
    if session.job.phase in ACTIVE_PHASES:
        return "a job is already running (cancel it first)"
    count = session.image_counts.count(bpy.path.abspath(settings.image_dir) if settings.image_dir else "")
    if isinstance(count, str):
        return count[:1].upper() + count[1:]
    return None


# ------------------------------------------------------------------------------------------------- actions

def start_reconstruction(session: Session, scene, prefs) -> int:
    """Submit the scene's image folder; returns the submit's seq. UserError when it cannot start."""
    s = scene.aligngs
    reason = reconstruct_block_reason(session, prefs, s)
    if reason:
        raise UserError(reason)
    folder = bpy.path.abspath(s.image_dir)
    try:
        scan_folder(folder)
    except InputError as e:
        raise UserError(str(e)) from None
    conn = ensure_connection(session, prefs)
    from .props import overrides_from_settings

    name = os.path.basename(os.path.normpath(folder)) or scene.name
    seq = conn.submit(folder, name=name, preset=s.preset, overrides=overrides_from_settings(s) or None)
    _drop_importer(session)
    session.job = JobView(scene=scene.name, name=name, phase="submitting", request_seq=seq,
                          stage_text="Sending images…")
    session.ensure_timer()
    return seq


def attach_job(session: Session, scene, prefs, job: str, *, fetch: bool = False) -> int:
    """Follow ``job`` for ``scene``: subscribe (progress, then the result) or, with ``fetch``, download its result."""
    if session.job.phase in ACTIVE_PHASES and session.job.job != job:
        raise UserError("another job is running here (cancel it first)")
    conn = ensure_connection(session, prefs)
    seq = conn.fetch(job) if fetch else conn.subscribe(job)
    _drop_importer(session)
    s = scene.aligngs
    if job != s.job_id:
        entry = session.jobstore.get(job) if session.jobstore is not None else None
        rec = next((r for r in session.server_jobs if r.get("job") == job), {})
        s.job_name = rec.get("name") or (entry.name if entry else "")
    s.job_id, s.job_address = job, conn.address
    session.job = JobView(job=job, scene=scene.name, name=s.job_name, phase="receiving" if fetch else "attaching",
                          request_seq=seq, stage_text="Requesting the result…" if fetch else "Re-attaching…")
    session.ensure_timer()
    return seq


def resubmit_job(session: Session, scene, prefs, job: str) -> int:
    """Run a failed / cancelled / interrupted job again on the server (same id, inputs and settings)."""
    if session.job.phase in ACTIVE_PHASES:
        raise UserError("a job is already running (cancel it first)")
    conn = ensure_connection(session, prefs)
    seq = conn.resubmit(job)
    entry = session.jobstore.get(job) if session.jobstore is not None else None
    rec = next((r for r in session.server_jobs if r.get("job") == job), {})
    name = rec.get("name") or (entry.name if entry else "") or scene.aligngs.job_name
    _drop_importer(session)
    session.job = JobView(scene=scene.name, name=name, phase="submitting", request_seq=seq,
                          stage_text="Resubmitting…")
    session.ensure_timer()
    return seq


def cancel_job(session: Session) -> None:
    if session.conn is None or not session.job.job or session.job.phase not in ACTIVE_PHASES:
        raise UserError("no running job to cancel")
    if session.job.phase in ("receiving", "importing"):
        # the server has finished: stop following and drop what was received
        _drop_importer(session)
        session.job.phase, session.job.stage_text = "cancelled", "Import cancelled"
        return
    session.conn.cancel(session.job.job)
    session.job.phase, session.job.stage_text = "cancelling", "Cancelling…"


def refresh_jobs(session: Session, prefs) -> None:
    conn = ensure_connection(session, prefs)
    session.list_seq = conn.list_jobs()
    session.ensure_timer()


def reimport(session: Session, scene, prefs) -> str:
    """Import the scene's result again: from its job on the server, else from its result folder.
    Returns "fetch" (async) or "folder" (done)."""
    s = scene.aligngs
    if s.job_id:
        attach_job(session, scene, prefs, s.job_id, fetch=True)
        return "fetch"
    if s.result_dir:
        import_folder(session, scene, bpy.path.abspath(s.result_dir))
        return "folder"
    raise UserError("nothing to re-import: this scene has no job and no result folder")


def import_folder(session: Session, scene, folder: str):
    """Blocking import of a result folder into ``scene`` (replacing its previous import)."""
    try:
        res = import_result_folder(scene, folder, replace=_previous_root(scene))
    except (FileNotFoundError, ResultFormatError, ValueError) as e:
        raise UserError(f"Cannot import {folder}: {e}") from None
    classes.fill_class_list(scene, res)
    scene.aligngs.result_dir = folder
    session.last_import = res
    return res


def reconstruct_blocking(scene, prefs, *, timeout_s: float | None = None, on_progress=None):
    """Script path: submit, wait for the result and import it, all in the calling thread. Returns ImportResult."""
    s = scene.aligngs
    address, keys, timeout = connection_settings(prefs)
    folder = bpy.path.abspath(s.image_dir)
    try:
        scan_folder(folder)
    except InputError as e:
        raise UserError(str(e)) from None
    from .props import overrides_from_settings

    name = os.path.basename(os.path.normpath(folder)) or scene.name
    try:
        with client.Client(address, keys=keys, timeout_s=timeout) as c:
            acc = c.submit(folder, name=name, preset=s.preset, overrides=overrides_from_settings(s) or None)
            s.job_id, s.job_address, s.job_name, s.job_state = acc.job, address, name, acc.state
            res = c.collect(acc.re, acc.job, timeout_s, on_progress)
    except client.ClientError as e:
        raise UserError(e.error.text()) from None
    except client.JobCancelled as e:
        raise UserError(str(e)) from None
    try:
        imp = import_parts(scene, res.manifest, res.parts, ImportOptions(collection_name=f"{ROOT_PREFIX}{name}"),
                           replace=_previous_root(scene))
    except ResultFormatError as e:
        raise UserError(f"The server's result cannot be imported: {e}") from None
    classes.fill_class_list(scene, imp)
    s.job_state = "done"
    return imp


# ------------------------------------------------------------------------------------------------- the tick

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
            _handle(session, msg)
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
            _finish_import(session)
            changed = True
    except Exception as e:  # a bug must not kill the timer silently or spam tracebacks every tick
        log.exception("AlignGS tick failed")
        _fail(session, f"Internal add-on error: {type(e).__name__}: {e}")
        changed = True
    if changed:
        _show_reports(session)
        _redraw()
    if session.busy() or more:
        return 0.0 if more or (session.importer is not None and session.importer.pending_units) else TICK_INTERVAL_S
    session.timer_active = False
    return None


def _is_active_job_msg(session: Session, job: str | None, re_: int | None) -> bool:
    j = session.job
    if j.phase not in ACTIVE_PHASES:
        return False
    return (j.job and job == j.job) or (re_ is not None and re_ == j.request_seq)


def _handle(session: Session, msg) -> None:
    j = session.job
    if isinstance(msg, client.Connected):
        session.status = "connected"
        session.status_text = f"Connected to {msg.address}"
    elif isinstance(msg, client.ServerInfo):
        session.info = msg
        session.status = "connected"
        session.status_text = f"Connected to {msg.address}"
        if session.test_seq is not None:
            session.test_seq = None
            session.report("INFO", f"AlignGS server {msg.server} at {msg.address} ({msg.device}), "
                                   f"{msg.queue_length} job(s) queued or running")
    elif isinstance(msg, client.Disconnected):
        if msg.reason == "closed" or session.status == "error":
            return  # our own close, or the error that caused it says more
        session.status = "disconnected"
        session.status_text = f"{msg.address}: {msg.reason}"
    elif isinstance(msg, client.Error):
        text = msg.text()
        if msg.code in ("unreachable", "auth") and msg.job is None:
            session.status, session.status_text = "error", text
            session.test_seq = None
            if msg.re is not None and msg.re == session.list_seq:
                session.list_seq = None
            if _is_active_job_msg(session, msg.job, msg.re):
                _fail(session, text)
            else:
                session.report("ERROR", text)
        elif msg.re is not None and msg.re == session.list_seq:
            session.list_seq = None
            session.report("ERROR", text)
        elif _is_active_job_msg(session, msg.job, msg.re):
            if msg.code == "unreachable" and j.phase in ("queued", "running"):
                session.status, session.status_text = "error", text  # keep following; zmq reconnects
            else:
                _fail(session, text)
        else:
            session.report("ERROR", text)
    elif isinstance(msg, client.Accepted):
        if msg.re == j.request_seq and j.phase == "submitting":
            j.job, j.phase, j.position = msg.job, msg.state, msg.position
            j.stage_text = "Queued" if msg.state == "queued" else "Starting…"
            scene = bpy.data.scenes.get(j.scene)
            if scene is not None:
                s = scene.aligngs
                s.job_id, s.job_address, s.job_name, s.job_state = msg.job, session.conn.address, j.name, msg.state
            if session.jobstore is not None:
                session.jobstore.add(JobEntry(msg.job, session.conn.address, j.name, j.scene,
                                              bpy.data.filepath, time.time(), msg.state))
    elif isinstance(msg, client.JobStatus):
        if _is_active_job_msg(session, msg.job, msg.re) and msg.subscribed:
            state = msg.record.get("state", "")
            if state in ("queued", "running", "cancelling"):
                j.phase = state
                j.position = msg.record.get("position")
                _apply_progress_record(j, msg.record.get("progress"))
            _set_scene_state(session, state)
    elif isinstance(msg, client.JobList):
        if msg.re == session.list_seq:
            session.list_seq = None
            session.server_jobs = msg.jobs
    elif isinstance(msg, client.Progress):
        if _is_active_job_msg(session, msg.job, None):
            if j.phase in ("queued", "attaching"):
                j.phase = "running"
            j.stage, j.overall, j.eta_s = msg.stage, max(0.0, min(1.0, msg.overall)), msg.eta_s
            j.stage_text = _stage_text(msg)
    elif isinstance(msg, client.ResultStarted):
        if _is_active_job_msg(session, msg.job, msg.re):
            scene = bpy.data.scenes.get(j.scene)
            if scene is None:
                _fail(session, f"the scene {j.scene!r} for job {msg.job} no longer exists; use Re-import")
                return
            _drop_importer(session)
            try:
                # name the collection after the job as submitted (a server job's manifest names its input folder)
                name = f"{ROOT_PREFIX}{j.name}" if j.name else None
                session.importer = SceneImport(scene, msg.manifest, ImportOptions(collection_name=name))
            except ResultFormatError as e:
                _fail(session, f"The server's result cannot be imported: {e}")
                return
            j.phase, j.parts_total, j.parts_done, j.total, j.received = "receiving", msg.n_parts, 0, msg.nbytes, 0
            j.stage_text = "Receiving the result…"
    elif isinstance(msg, client.Downloading):
        if _is_active_job_msg(session, msg.job, None):
            j.received, j.total = msg.received, msg.total
    elif isinstance(msg, client.PartReceived):
        if session.importer is not None and _is_active_job_msg(session, msg.job, None):
            try:
                session.importer.add_part(msg)
            except ResultFormatError as e:
                _fail(session, f"The server's result cannot be imported: {e}")
                return
            j.parts_done += 1
            j.stage_text = f"Received {j.parts_done}/{j.parts_total} parts"
    elif isinstance(msg, client.Done):
        if _is_active_job_msg(session, msg.job, msg.re):
            if session.importer is None:
                _fail(session, "the server finished without sending a result")
                return
            session.done = msg
            j.phase, j.stage_text, j.overall = "importing", "Building objects…", 1.0
    elif isinstance(msg, client.Cancelled):
        if _is_active_job_msg(session, msg.job, msg.re):
            _drop_importer(session)
            j.phase, j.stage_text = "cancelled", "Cancelled"
            _set_scene_state(session, "cancelled")
            _refresh_info(session)
            session.report("INFO", f"AlignGS job {msg.job} cancelled")


def _stage_text(p: client.Progress) -> str:
    names = {"load": "Loading images", "poses": "Estimating camera poses", "priors": "Computing priors",
             "init": "Initialising", "train": "Training", "mesh": "Extracting the mesh",
             "semantics": "Labelling classes", "export": "Exporting"}
    text = names.get(p.stage, p.stage.capitalize())
    if p.iteration is not None and p.total:
        text += f" {p.iteration}/{p.total}"
    elif p.fraction:
        text += f" {100 * p.fraction:.0f}%"
    return text


def _apply_progress_record(j: JobView, prog) -> None:
    if isinstance(prog, dict) and prog.get("stage"):
        p = client.Progress(job=j.job, stage=str(prog.get("stage")), stage_index=int(prog.get("stage_index") or 0),
                            stage_count=int(prog.get("stage_count") or 8), fraction=float(prog.get("fraction") or 0),
                            overall=float(prog.get("overall") or 0), iteration=prog.get("iteration"),
                            total=prog.get("total"), eta_s=prog.get("eta_s"))
        j.stage, j.overall, j.eta_s, j.stage_text = p.stage, p.overall, p.eta_s, _stage_text(p)


def _set_scene_state(session: Session, state: str) -> None:
    scene = bpy.data.scenes.get(session.job.scene)
    if scene is not None and scene.aligngs.job_id == session.job.job:
        scene.aligngs.job_state = state
    if session.jobstore is not None and session.job.job:
        session.jobstore.update(session.job.job, state=state)


def _refresh_info(session: Session) -> None:
    """Ask for a fresh welcome (queue length, workers) after a job ends."""
    if session.conn is not None and session.conn.alive:
        session.hello_seq = session.conn.hello()


def _fail(session: Session, text: str) -> None:
    _refresh_info(session)
    _drop_importer(session)
    session.job.phase, session.job.error, session.job.stage_text = "failed", text, "Failed"
    _set_scene_state(session, "failed")
    session.report("ERROR", text)


def _drop_importer(session: Session) -> None:
    if session.importer is not None:
        session.importer.abort()
    session.importer = None
    session.done = None


def _previous_root(scene):
    """The scene's current import (replaced by the next one), if it is still there."""
    old = scene.aligngs.root
    if old is None:
        return None
    try:
        return old if old.name in bpy.data.collections else None
    except ReferenceError:
        return None


def _finish_import(session: Session) -> None:
    j = session.job
    scene = bpy.data.scenes.get(j.scene)
    imp, done = session.importer, session.done
    session.importer, session.done = None, None
    if scene is None:
        imp.abort()
        _fail(session, f"the scene {j.scene!r} no longer exists; use Re-import")
        return
    session.last_summary = done.summary if done is not None else {}
    result = imp.finish(replace=_previous_root(scene))
    classes.fill_class_list(scene, result)
    session.last_import = result
    j.phase, j.stage_text = "done", "Done"
    _set_scene_state(session, "done")
    _refresh_info(session)
    try:
        bpy.ops.ed.undo_push(message="AlignGS Import")
    except RuntimeError:
        pass  # no window (headless): nothing to push onto
    msg = (f"AlignGS: imported {result.n_points:,} points, {result.n_faces:,} faces, {len(result.classes)} classes"
           f", {result.n_cameras} cameras")
    for w in result.warnings:
        session.report("WARNING", w)
    session.report("INFO", msg)
    if done is not None and done.summary.get("warnings"):
        for w in done.summary["warnings"][:5]:
            session.report("WARNING", f"server: {w}")


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
