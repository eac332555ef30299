"""The on-disk job store: one folder per job with state.json (atomic), settings.json, inputs/, out/, job.log.

Layout of ``<root>/<job id>/``:
- ``state.json``   the job record (protocol section 3), rewritten atomically (tmp + os.replace) on every change;
- ``settings.json`` the resolved PipelineConfig (``to_dict``) the job runs with;
- ``inputs/``      the submitted files (sanitised relative paths), unless the job uses a server-side folder;
- ``out/``         the pipeline's out_dir (``out/result/manifest.json`` + arrays, PLYs, checkpoint, report.json);
- ``job.log``      the worker's log (Python logging plus the process's stdout/stderr);
- ``outcome.json`` written by the worker when the job function returns or raises.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aligngs.wire import write_json_atomic  # noqa: F401  (re-exported: server, worker)

from .protocol import FINAL_STATES, JOB_ID_RE, JOB_STATES, json_safe

log = logging.getLogger(__name__)


@dataclass
class JobRecord:
    job: str
    name: str
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    device: str | None = None
    n_inputs: int = 0
    attempt: int = 1
    progress: dict | None = None
    error: dict | None = None
    summary: dict | None = None
    settings: dict = field(default_factory=dict)
    server_path: str | None = None  # input folder on the server (instead of inputs/)
    exit_code: int | None = None
    signal: str | None = None
    node: str | None = None  # the cluster node that runs / ran the job (Ray executor), else None
    parts: list[str] | None = None  # submit's ``parts``: the result parts pushed to attached clients (None: all)

    def public(self, position: int | None = None) -> dict[str, Any]:
        """The record as sent on the wire (protocol section 3)."""
        return {
            "job": self.job,
            "name": self.name,
            "state": self.state,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "position": position,
            "device": self.device,
            "node": self.node,
            "n_inputs": self.n_inputs,
            "attempt": self.attempt,
            "progress": self.progress,
            "error": self.error,
            "summary": self.summary,
            "settings": self.settings,
            "parts": self.parts,
        }

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class JobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.root, 0o700)
        except OSError:  # not ours / not supported: leave as is
            pass

    # paths
    def dir(self, job: str) -> Path:
        if not JOB_ID_RE.match(job):
            raise ValueError(f"invalid job id {job!r}")
        return self.root / job

    def inputs(self, job: str) -> Path:
        return self.dir(job) / "inputs"

    def out(self, job: str) -> Path:
        return self.dir(job) / "out"

    def result_dir(self, job: str) -> Path:
        return self.out(job) / "result"

    def log_path(self, job: str) -> Path:
        return self.dir(job) / "job.log"

    def outcome_path(self, job: str) -> Path:
        return self.dir(job) / "outcome.json"

    def input_path(self, rec: JobRecord) -> Path:
        return Path(rec.server_path) if rec.server_path else self.inputs(rec.job)

    # lifecycle
    def new_id(self) -> str:
        while True:
            job = secrets.token_urlsafe(16)
            if not (self.root / job).exists():
                return job

    def create(self, rec: JobRecord) -> Path:
        d = self.dir(rec.job)
        d.mkdir(parents=True, exist_ok=False)
        (d / "inputs").mkdir()
        (d / "out").mkdir()
        write_json_atomic(d / "settings.json", rec.settings)
        self.save(rec)
        return d

    def save(self, rec: JobRecord) -> None:
        write_json_atomic(self.dir(rec.job) / "state.json", json_safe(asdict(rec)))

    def delete(self, job: str) -> None:
        shutil.rmtree(self.dir(job), ignore_errors=True)

    def load_all(self) -> list[JobRecord]:
        """Every readable job record, oldest first (unreadable folders are logged and skipped)."""
        out = []
        known = {f for f in JobRecord.__dataclass_fields__}
        for d in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            p = d / "state.json"
            if not d.is_dir() or not JOB_ID_RE.match(d.name) or not p.is_file():
                continue
            try:
                raw = json.loads(p.read_text())
                rec = JobRecord(**{k: v for k, v in raw.items() if k in known})
                if rec.job != d.name or rec.state not in JOB_STATES:
                    raise ValueError(f"inconsistent record (job {rec.job!r}, state {rec.state!r})")
            except (OSError, ValueError, TypeError) as e:
                log.warning("job store: skipping %s: %s", d, e)
                continue
            out.append(rec)
        out.sort(key=lambda r: (r.created, r.job))
        return out


