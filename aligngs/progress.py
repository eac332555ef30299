"""Progress reporting and cooperative cancellation shared by the pipeline, the CLI and the backend worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

STAGES = ("load", "poses", "priors", "init", "train", "mesh", "semantics", "export")


@dataclass
class Progress:
    stage: str  # one of STAGES
    fraction: float  # 0..1 within the stage
    message: str = ""
    iteration: int | None = None
    total: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    n_gaussians: int | None = None
    eta_s: float | None = None
    preview: np.ndarray | None = None  # optional small uint8 [h,w,3] render

    def to_dict(self) -> dict:
        """JSON-safe form (the preview travels separately as raw bytes)."""
        return {
            "stage": self.stage,
            "fraction": float(self.fraction),
            "message": self.message,
            "iteration": self.iteration,
            "total": self.total,
            "losses": {k: float(v) for k, v in self.losses.items()},
            "n_gaussians": self.n_gaussians,
            "eta_s": None if self.eta_s is None else float(self.eta_s),
        }


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside the pipeline when ``should_cancel()`` turns true."""


def check_cancel(should_cancel: Optional[CancelFn]) -> None:
    if should_cancel is not None and should_cancel():
        raise Cancelled("cancelled by request")
