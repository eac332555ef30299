"""Poses and initial points from images alone.

One interface: frames in -> ``PoseResult`` (cameras per registered frame, coloured points with confidence, report).
Methods: ``vggt`` (SfM-free feed-forward, GPU; optional ``vggt`` package), ``sfm`` (pycolmap, CPU, offline),
``known`` (the loader's poses). ``estimate_poses`` walks a fallback chain (``CHAINS``: ``auto`` = vggt -> sfm) and
records in ``Scene.meta["poses"]`` what it used and why earlier methods were skipped (``fallbacks``).
``dense_align`` aligns dense per-view depth to the SfM points (SPARS3R) for a dense initial cloud; ``align`` holds
the Sim3 (Umeyama) alignment and pose errors used to score all of this.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..data.errors import DataError
from ..errors import AlignGSError
from ..data.types import Scene
from ..progress import CancelFn
from .sfm import PoseResult, SfMConfig, run_sfm
from .vggt import VGGTConfig

log = logging.getLogger(__name__)

CHAINS = {"auto": ("vggt", "sfm"), "vggt": ("vggt",), "sfm": ("sfm",)}
ADVICE = ("take more overlapping photos (60-80% overlap between neighbours), give known poses (transforms.json, "
          "a COLMAP model or RGB-D frames), or run VGGT on a GPU machine")


class MethodUnavailable(AlignGSError, RuntimeError):
    """A pose method cannot run here (package or weights missing, no GPU); the chain moves on."""


@dataclass
class PoseConfig:
    sfm: SfMConfig = field(default_factory=SfMConfig)
    vggt: VGGTConfig = field(default_factory=VGGTConfig)


def run_method(name: str, scene: Scene, should_cancel: CancelFn | None = None,
               cfg: PoseConfig | None = None) -> PoseResult:
    cfg = cfg or PoseConfig()
    if name == "sfm":
        return run_sfm(scene.frames, cfg.sfm, should_cancel)
    if name == "vggt":
        from .vggt import run_vggt

        return run_vggt(scene.frames, cfg.vggt, should_cancel=should_cancel)
    raise ValueError(f"unknown pose method {name!r} (known: vggt, sfm, known)")


def apply_poses(scene: Scene, result: PoseResult, fallbacks: list[str] | None = None) -> Scene:
    """A new Scene whose frames carry the estimated cameras; unregistered frames are dropped and listed in
    ``meta["poses"]["unregistered"]``. SfM tracks go to ``meta["point_observations"]`` (for ``dense_align``)."""
    frames = [f.with_camera(result.cameras[f.name]) for f in scene.frames if f.name in result.cameras]
    meta = dict(scene.meta)
    meta["poses"] = {"method": result.method, **result.report, "unregistered": list(result.unregistered),
                     "fallbacks": list(fallbacks or [])}
    meta["points_source"] = result.method
    if result.observations is not None:
        meta["point_observations"] = result.observations
    return Scene(frames, scene.source, scene.root, True, scene.up, result.points, result.colors, meta)


def estimate_poses(scene: Scene, method: str = "auto", should_cancel: CancelFn | None = None,
                   cfg: PoseConfig | None = None) -> Scene:
    """Estimate poses with the first method of the chain that works; 'known' keeps the loader's poses.

    A method that cannot run here (``MethodUnavailable``) hands over to the next one, with a warning and a line in
    ``meta["poses"]["fallbacks"]``; when none can run a ``DataError`` says what to do."""
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
            result = run_method(name, scene, should_cancel, cfg)
        except MethodUnavailable as e:
            log.warning("pose method %s unavailable: %s", name, e)
            tried.append(f"{name}: {e}")
            continue
        log.info("poses from %s: registered %s of %s", name, result.report.get("registered"),
                 result.report.get("total"))
        return apply_poses(scene, result, tried)
    raise DataError(scene.root, "no pose method could run (" + "; ".join(tried) + "): install VGGT on a GPU "
                                "machine, use poses='sfm', or give known poses (transforms.json / COLMAP model / "
                                "RGB-D frames)")
