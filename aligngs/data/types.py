"""The one camera/frame type every loader returns and every stage consumes.

Conventions (fixed across the project):
- ``c2w`` is a 4x4 float64 camera-to-world matrix in **OpenCV** camera axes (x right, y down, z forward).
- ``K`` is the 3x3 float64 pinhole intrinsics at the frame's ``width`` x ``height``.
- ``image`` is float32 RGB in [0, 1], shape [H, W, 3]; ``depth`` float32 metres [H, W], 0 = invalid;
  ``mask`` bool [H, W], True = valid pixel; ``labels`` int32 [H, W] ADE20K class ids (0..149), -1 = unknown.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: OpenCV camera-to-world pose + intrinsics at (width, height)."""

    c2w: np.ndarray  # [4,4] float64
    K: np.ndarray  # [3,3] float64
    width: int
    height: int

    def __post_init__(self) -> None:
        c2w = np.asarray(self.c2w, dtype=np.float64)
        K = np.asarray(self.K, dtype=np.float64)
        if c2w.shape != (4, 4):
            raise ValueError(f"Camera.c2w must be 4x4, got shape {c2w.shape}")
        if K.shape != (3, 3):
            raise ValueError(f"Camera.K must be 3x3, got shape {K.shape}")
        if not (np.isfinite(c2w).all() and np.isfinite(K).all()):
            raise ValueError("Camera pose/intrinsics contain NaN or inf")
        object.__setattr__(self, "c2w", c2w)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def w2c(self) -> np.ndarray:
        """World-to-camera (the ``viewmats`` gsplat expects)."""
        return np.linalg.inv(self.c2w)

    @property
    def center(self) -> np.ndarray:
        return self.c2w[:3, 3].copy()

    def scaled(self, width: int, height: int) -> "Camera":
        """The same camera at another resolution (intrinsics rescaled, pixel-centre convention)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 1] *= sy
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Camera(self.c2w, K, width, height)


@dataclass
class Frame:
    """One view: a camera plus what was observed from it."""

    name: str
    camera: Camera | None  # None until poses are known (plain photo folders)
    image: np.ndarray | None = None  # [H,W,3] float32 0..1
    depth: np.ndarray | None = None  # [H,W] float32 metres, 0 = invalid
    mask: np.ndarray | None = None  # [H,W] bool
    labels: np.ndarray | None = None  # [H,W] int32 class ids, -1 unknown
    path: Path | None = None  # the image file it came from
    extras: dict = field(default_factory=dict)  # e.g. {"instance": int32 [H,W]}

    def with_camera(self, camera: Camera) -> "Frame":
        return replace(self, camera=camera)


@dataclass
class Scene:
    """What a loader returns: frames (all sharing one world frame) and what is known about them."""

    frames: list[Frame]
    source: str  # "images" | "colmap" | "transforms" | "rgbd" | ...
    root: Path | None = None
    has_poses: bool = True
    up: np.ndarray | None = None  # world up vector if the source defines one (e.g. Blender's +Z)
    points: np.ndarray | None = None  # optional initial points [P,3] float32 (e.g. COLMAP points3D)
    point_colors: np.ndarray | None = None  # [P,3] float32 0..1
    meta: dict = field(default_factory=dict)

    def names(self) -> list[str]:
        return [f.name for f in self.frames]


@dataclass
class TriMesh:
    """A triangle mesh as plain arrays (what TSDF fusion, exports and result parts exchange)."""

    vertices: np.ndarray  # [N,3] float32
    faces: np.ndarray  # [M,3] int32
    colors: np.ndarray | None = None  # [N,3] uint8
    vertex_attrs: dict = field(default_factory=dict)  # e.g. {"class_id": int32 [N], "confidence": float32 [N]}
