"""Progress reporting and cooperative cancellation shared by the pipeline, the CLI and the backend worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .errors import Cancelled  # noqa: F401  (re-exported: raised by check_cancel)

STAGES = ("load", "poses", "priors", "init", "train", "mesh", "semantics", "export")


@dataclass
class PointPreview:
    """A decimated snapshot of the Gaussians while they train (the live preview a viewer draws as points).

    ``positions`` float16 [N,3] (world units), ``colors`` uint8 [N,3] (the SH DC colour), ``class_ids`` uint8 [N]
    (ADE20K ids 0..149 of the current argmax; 255 = no class) or None when semantics are off. ``total`` is the
    number of Gaussians the N were drawn from; ``up`` the reconstruction's world up (set by the pipeline, so a
    viewer can orient the preview as it will orient the result). The compact dtypes are the wire's: 50k points
    are ~0.5 MB.
    """

    positions: np.ndarray
    colors: np.ndarray
    class_ids: np.ndarray | None = None
    total: int = 0
    up: tuple[float, float, float] | None = None

    def __post_init__(self):
        n = len(self.positions)
        if self.positions.shape != (n, 3) or self.positions.dtype != np.float16:
            raise ValueError(f"PointPreview.positions: expected float16 [N,3], got {self.positions.dtype} {self.positions.shape}")
        if self.colors.shape != (n, 3) or self.colors.dtype != np.uint8:
            raise ValueError(f"PointPreview.colors: expected uint8 [{n},3], got {self.colors.dtype} {self.colors.shape}")
        if self.class_ids is not None and (self.class_ids.shape != (n,) or self.class_ids.dtype != np.uint8):
            raise ValueError(f"PointPreview.class_ids: expected uint8 [{n}], got {self.class_ids.dtype} {self.class_ids.shape}")

    @property
    def n(self) -> int:
        return len(self.positions)


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
    points: PointPreview | None = None  # optional live point preview of the Gaussians (training stage)

    def to_dict(self) -> dict:
        """JSON-safe form (the image and point previews travel separately as raw bytes)."""
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


def check_cancel(should_cancel: Optional[CancelFn]) -> None:
    if should_cancel is not None and should_cancel():
        raise Cancelled("cancelled by request")
