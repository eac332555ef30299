"""Poses and initial points from images alone.

One interface: frames in -> ``PoseResult`` (cameras per registered frame, coloured points with confidence, report).
Methods: ``vggt`` (SfM-free feed-forward, GPU; optional ``vggt`` package), ``sfm`` (pycolmap, CPU, offline),
``known`` (the loader's poses). ``estimate_poses`` walks a fallback chain and records what it used.
"""
from __future__ import annotations

import logging

from ..data.errors import DataError
from ..data.types import Scene
from ..progress import CancelFn
from .sfm import PoseResult, SfMConfig, run_sfm

log = logging.getLogger(__name__)

CHAINS = {"auto": ("vggt", "sfm"), "vggt": ("vggt",), "sfm": ("sfm",)}


class MethodUnavailable(RuntimeError):
    """A pose method cannot run here (package or weights missing, no GPU); the chain moves on."""


def run_method(name: str, scene: Scene, should_cancel: CancelFn | None = None) -> PoseResult:
    if name == "sfm":
        return run_sfm(scene.frames, SfMConfig(), should_cancel)
    if name == "vggt":
        from .vggt import run_vggt

        return run_vggt(scene.frames, should_cancel=should_cancel)
    raise ValueError(f"unknown pose method {name!r} (known: vggt, sfm, known)")


def apply_poses(scene: Scene, result: PoseResult) -> Scene:
    """A new Scene whose frames carry the estimated cameras; unregistered frames are dropped and listed."""
    frames = [f.with_camera(result.cameras[f.name]) for f in scene.frames if f.name in result.cameras]
    meta = dict(scene.meta)
    meta["poses"] = {"method": result.method, **result.report, "unregistered": result.unregistered}
    meta["points_source"] = result.method
    return Scene(frames, scene.source, scene.root, True, scene.up, result.points, result.colors, meta)


def estimate_poses(scene: Scene, method: str = "auto", should_cancel: CancelFn | None = None) -> Scene:
    """Estimate poses with the first method of the chain that works; 'known' keeps the loader's poses."""
    if method == "known":
        if not scene.has_poses:
            raise DataError(scene.root, "poses='known' but the input has no poses (a plain image folder): "
                                        "use poses='sfm' or 'vggt', or provide transforms.json / a COLMAP model")
        return scene
    if method not in CHAINS:
        raise ValueError(f"unknown pose method {method!r} (known: auto, known, sfm, vggt)")
    tried = []
    for name in CHAINS[method]:
        try:
            result = run_method(name, scene, should_cancel)
        except MethodUnavailable as e:
            log.warning("pose method %s unavailable: %s", name, e)
            tried.append(f"{name}: {e}")
            continue
        log.info("poses from %s: %s", name, result.report)
        return apply_poses(scene, result)
    raise DataError(scene.root, "no pose method could run (" + "; ".join(tried) + "). Install VGGT on a GPU machine, "
                                "or give known poses (transforms.json / COLMAP model / RGB-D frames)")
