"""What the panel shows about the job a session follows (pure Python): the phases and the progress text."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .._vendor.wire import ACTIVE_STATES

# the job's active states on the server (queued, running, cancelling) plus this client's own phases around them
ACTIVE_PHASES = ("submitting", "attaching", *ACTIVE_STATES, "receiving", "importing")
STAGE_NAMES = {"load": "Loading images", "poses": "Estimating camera poses", "priors": "Computing priors",
               "init": "Initialising", "train": "Training", "mesh": "Extracting the mesh",
               "semantics": "Labelling classes", "export": "Exporting"}


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

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    def follows(self, job: str | None, re_: int | None) -> bool:
        """Whether a message about ``job`` (or answering request ``re_``) belongs to the job this view follows."""
        if self.phase not in ACTIVE_PHASES:
            return False
        return bool((self.job and job == self.job) or (re_ is not None and re_ == self.request_seq))


def stage_text(stage: str, iteration: int | None = None, total: int | None = None, fraction: float = 0.0) -> str:
    text = STAGE_NAMES.get(stage, stage.capitalize())
    if iteration is not None and total:
        text += f" {iteration}/{total}"
    elif fraction:
        text += f" {100 * fraction:.0f}%"
    return text


def apply_progress(j: JobView, p) -> None:
    """Show a ``Progress`` message (or a job record's ``progress`` object) in ``j``."""
    if isinstance(p, dict):
        if not p.get("stage"):
            return
        stage, overall, eta = str(p.get("stage")), float(p.get("overall") or 0), p.get("eta_s")
        text = stage_text(stage, p.get("iteration"), p.get("total"), float(p.get("fraction") or 0))
    else:
        stage, overall, eta = p.stage, p.overall, p.eta_s
        text = stage_text(p.stage, p.iteration, p.total, p.fraction)
    j.stage, j.overall, j.eta_s, j.stage_text = stage, max(0.0, min(1.0, overall)), eta, text
