"""A small JSON list of submitted jobs in the user's config folder, so a job can be re-attached after Blender
restarts even without its .blend (pure Python; the path comes from ``bpy.utils.user_resource('CONFIG')``)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .._vendor.wire.jsonio import write_json_atomic

MAX_ENTRIES = 50


@dataclass
class JobEntry:
    job: str
    address: str
    name: str = ""
    scene: str = ""  # Blender scene the result goes into
    blend: str = ""  # .blend file path at submit time ("" = unsaved)
    created: float = 0.0
    state: str = ""


class JobStore:
    """Newest first; at most MAX_ENTRIES; written atomically; a damaged file reads as empty (and is replaced)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def load(self) -> list[JobEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        known = {f.name for f in fields(JobEntry)}
        out = []
        for item in raw.get("jobs", []) if isinstance(raw, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("job"), str) and isinstance(item.get("address"), str):
                out.append(JobEntry(**{k: v for k, v in item.items() if k in known}))
        return out

    def _save(self, entries: list[JobEntry]) -> None:
        write_json_atomic(self.path, {"version": 1, "jobs": [asdict(e) for e in entries[:MAX_ENTRIES]]}, indent=1)

    def add(self, entry: JobEntry) -> None:
        if not entry.created:
            entry.created = time.time()
        entries = [e for e in self.load() if e.job != entry.job]
        self._save([entry] + entries)

    def update(self, job: str, **changes) -> None:
        entries = self.load()
        for e in entries:
            if e.job == job:
                for k, v in changes.items():
                    setattr(e, k, v)
        self._save(entries)

    def remove(self, job: str) -> None:
        self._save([e for e in self.load() if e.job != job])

    def get(self, job: str) -> JobEntry | None:
        return next((e for e in self.load() if e.job == job), None)
