"""What the user starts, as plain functions of the session (operators only call them): connect, submit, attach,
resubmit, cancel, list, re-import, import a folder, and the blocking script path. ``UserError`` when it cannot."""
from __future__ import annotations

import os
import types

import bpy

from .._vendor.wire import ResultFormatError
from ..core import client
from ..core.address import normalize_address, online_block_reason
from ..core.errors import AddressError, CurveKeyError, SettingsError, UserError
from ..core.fileparts import save_file_part, wanted_parts
from ..core.inputs import InputError, scan_folder
from ..core.jobview import ACTIVE_PHASES, JobView
from . import classes
from .handlers import drop_importer, previous_root
from .importer import ROOT_PREFIX, ImportOptions, import_parts, import_result_folder
from .session import Session
from .settings import overrides_from_settings, sync_settings


def splat_dir(prefs) -> str:
    """The folder the user wants the Gaussian-splat PLY saved to ("" = do not ask the server for it)."""
    folder = getattr(prefs, "splat_dir", "") or ""
    return bpy.path.abspath(folder) if folder.strip() else ""


def submit_overrides(session: Session, s) -> dict | None:
    """The Advanced settings as a submit's ``overrides`` (None when Advanced is off or nothing differs)."""
    if session.info is not None:
        sync_settings(s, session.info)
    try:
        return overrides_from_settings(s) or None
    except SettingsError as e:
        raise UserError(f"Advanced settings: {e}") from None


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
                    raise CurveKeyError(f"{prefs.client_key_file} holds no secret key (use the *.key_secret file)")
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
    name = os.path.basename(os.path.normpath(folder)) or scene.name
    seq = conn.submit(folder, name=name, preset=s.preset or None, overrides=submit_overrides(session, s),
                      parts=wanted_parts(bool(splat_dir(prefs))))
    drop_importer(session)
    session.splat_dir = splat_dir(prefs)
    session.job = JobView(scene=scene.name, name=name, phase="submitting", request_seq=seq,
                          stage_text="Sending images…")
    session.ensure_timer()
    return seq


def attach_job(session: Session, scene, prefs, job: str, *, fetch: bool = False) -> int:
    """Follow ``job`` for ``scene``: subscribe (progress, then the result) or, with ``fetch``, download its result."""
    if session.job.phase in ACTIVE_PHASES and session.job.job != job:
        raise UserError("another job is running here (cancel it first)")
    conn = ensure_connection(session, prefs)
    folder = splat_dir(prefs)
    parts = wanted_parts(bool(folder))
    seq = conn.fetch(job, files=bool(folder), parts=parts) if fetch else conn.subscribe(job, parts)
    drop_importer(session)
    session.splat_dir = folder
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
    session.splat_dir = splat_dir(prefs)
    entry = session.jobstore.get(job) if session.jobstore is not None else None
    rec = next((r for r in session.server_jobs if r.get("job") == job), {})
    name = rec.get("name") or (entry.name if entry else "") or scene.aligngs.job_name
    drop_importer(session)
    session.job = JobView(scene=scene.name, name=name, phase="submitting", request_seq=seq,
                          stage_text="Resubmitting…")
    session.ensure_timer()
    return seq


def cancel_job(session: Session) -> None:
    if session.conn is None or not session.job.job or session.job.phase not in ACTIVE_PHASES:
        raise UserError("no running job to cancel")
    if session.job.phase in ("receiving", "importing"):
        # the server has finished: stop following and drop what was received
        drop_importer(session)
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
        res = import_result_folder(scene, folder, replace=previous_root(scene))
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
    name = os.path.basename(os.path.normpath(folder)) or scene.name
    folder_out = splat_dir(prefs)
    try:
        with client.Client(address, keys=keys, timeout_s=timeout) as c:
            info = c.server_info()
            session = types.SimpleNamespace(info=info)
            acc = c.submit(folder, name=name, preset=s.preset or None, overrides=submit_overrides(session, s),
                           parts=wanted_parts(bool(folder_out)))
            s.job_id, s.job_address, s.job_name, s.job_state = acc.job, address, name, acc.state
            res = c.collect(acc.re, acc.job, timeout_s, on_progress)
            for part in res.parts:
                if part.kind == "file" and folder_out:
                    save_file_part(part, folder_out)
    except client.ClientError as e:
        raise UserError(e.error.text()) from None
    except client.JobCancelled as e:
        raise UserError(str(e)) from None
    try:
        imp = import_parts(scene, res.manifest, res.parts, ImportOptions(collection_name=f"{ROOT_PREFIX}{name}"),
                           replace=previous_root(scene))
    except ResultFormatError as e:
        raise UserError(f"The server's result cannot be imported: {e}") from None
    classes.fill_class_list(scene, imp)
    s.job_state = "done"
    return imp
