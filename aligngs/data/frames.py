"""Turning a frame's files into a ``Frame``: size checks, resolution scaling, undistortion.

Every loader describes its frames as ``FrameSpec``s (paths + native camera) and hands them to ``FrameBuilder``,
so scaling, size policies and undistortion behave the same for every input format.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DataConfig, SizeMismatch, choices
from .errors import DataError
from .imageio import image_size, read_depth_png, read_image, read_label_png, resize_nearest, target_size
from .types import Camera, Frame
from .undistort import Distortion, Undistorter

log = logging.getLogger(__name__)

SIZE_POLICIES = choices(SizeMismatch)


@dataclass
class FrameSpec:
    """What a loader knows about one frame before reading its pixels."""

    name: str
    image_path: Path
    camera: Camera | None = None  # at the size the source declares (None: unposed)
    distortion: Distortion | None = None  # None or zero: already a pinhole image
    depth_path: Path | None = None  # 16-bit PNG
    depth_scale: float = 1000.0  # raw value / depth_scale = metres
    semantic_path: Path | None = None  # 8-bit PNG, value = class id + 1, 0 = unknown
    instance_path: Path | None = None  # 8/16-bit PNG, 0 = none


class FrameBuilder:
    """Reads frames at the configured resolution. One per scene load (it caches undistortion maps)."""

    def __init__(self, cfg: DataConfig | None = None) -> None:
        self.cfg = cfg or DataConfig()
        if self.cfg.size_mismatch not in SIZE_POLICIES:
            raise ValueError(f"DataConfig.size_mismatch must be one of {SIZE_POLICIES}, got {self.cfg.size_mismatch!r}")
        self._undistort = Undistorter()

    def build(self, spec: FrameSpec, expected_size: tuple[int, int] | None = None) -> Frame:
        """Read one frame. ``expected_size`` (w, h) defaults to the camera's size, else the image's own."""
        path = spec.image_path
        native = image_size(path)
        if expected_size is None and spec.camera is not None:
            expected_size = (spec.camera.width, spec.camera.height)
        ref = expected_size or native
        if native != tuple(ref):
            problem = f"image is {native[0]}x{native[1]} but {ref[0]}x{ref[1]} was expected"
            if spec.camera is not None:
                problem += " (the camera's declared size)"
            else:
                problem += " (the size of the other images)"
            if self.cfg.size_mismatch == "error":
                raise DataError(path, problem + "; set DataConfig.size_mismatch='resize' to resize it")
            log.warning("%s: %s; resizing it", path, problem)
        tw, th = target_size(int(ref[0]), int(ref[1]), self.cfg.resolution)
        image, mask = read_image(path, size=None if (tw, th) == native else (tw, th))

        camera = spec.camera
        if camera is not None and (camera.width, camera.height) != (tw, th):
            camera = camera.scaled(tw, th)

        depth = labels = instance = None
        if spec.depth_path is not None:
            depth = self._aux(read_depth_png(spec.depth_path, spec.depth_scale), spec.depth_path, path, native, tw, th)
        if spec.semantic_path is not None:
            raw = read_label_png(spec.semantic_path, "semantic label PNG (8-bit)")
            labels = self._aux(raw - 1, spec.semantic_path, path, native, tw, th)
        if spec.instance_path is not None:
            raw = read_label_png(spec.instance_path, "instance PNG (8/16-bit)", sixteen_bit=True)
            instance = self._aux(raw, spec.instance_path, path, native, tw, th)

        d = spec.distortion
        if camera is not None and d is not None and not d.is_zero:
            image, valid = self._undistort.image(image, camera.K, d)
            mask = valid if mask is None else (mask & valid)
            if depth is not None:
                depth = self._undistort.nearest(depth, camera.K, d, fill=0.0)
            if labels is not None:
                labels = self._undistort.nearest(labels, camera.K, d, fill=-1)
            if instance is not None:
                instance = self._undistort.nearest(instance, camera.K, d, fill=0)
        if mask is not None and mask.all():
            mask = None
        extras = {} if instance is None else {"instance": instance.astype(np.int32, copy=False)}
        return Frame(
            name=spec.name, camera=camera, image=image, depth=depth, mask=mask,
            labels=None if labels is None else labels.astype(np.int32, copy=False),
            path=path, extras=extras,
        )

    @staticmethod
    def _aux(arr: np.ndarray, aux_path: Path, image_path: Path, native: tuple[int, int], tw: int, th: int) -> np.ndarray:
        h, w = arr.shape[:2]
        if (w, h) != tuple(native):
            raise DataError(
                aux_path,
                f"size {w}x{h} differs from its colour image {image_path.name} ({native[0]}x{native[1]})",
            )
        return resize_nearest(arr, tw, th)


def most_common_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most frequent (w, h); ties go to the one seen first."""
    counts: dict[tuple[int, int], int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    best = max(counts.values())
    return next(s for s in sizes if counts[s] == best)
