"""Structure from motion with pycolmap (CPU, offline): SIFT features, exhaustive or sequential matching,
incremental mapping; the largest model wins, unregistered images are reported, not silently dropped."""
from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.errors import DataError
from ..data.types import Camera, Frame
from ..progress import CancelFn, check_cancel

log = logging.getLogger(__name__)

ADVICE = ("take more overlapping photos (60-80% overlap between neighbours, varied viewpoints), give known poses "
          "(transforms.json, a COLMAP model or RGB-D frames), or run VGGT on a GPU machine (poses='vggt')")


@dataclass
class SfMConfig:
    matcher: str = "auto"  # auto (exhaustive up to 60 images, else sequential) | exhaustive | sequential
    max_image_size: int = 1024
    max_features: int = 4096
    camera_model: str = "PINHOLE"  # one shared pinhole camera: what the renderer takes without undistortion
    min_registered: int = 3
    seed: int = 0


@dataclass
class PoseResult:
    """Cameras for the registered frames + a sparse coloured point cloud + a report."""

    cameras: dict[str, Camera]  # frame name -> camera at the frame's resolution
    points: np.ndarray  # [P,3] float32
    colors: np.ndarray  # [P,3] float32 0..1
    confidence: np.ndarray  # [P] float32 (SfM: 1 / (1 + reprojection error))
    method: str
    unregistered: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    # frame name -> int64 indices into ``points`` that the frame observes (SfM tracks); None = not known
    observations: dict[str, np.ndarray] | None = None


def _stage_images(frames: list[Frame], work: Path) -> tuple[Path, dict[str, str]]:
    """pycolmap reads image files: link (or copy) each frame's source file under one folder with unique names."""
    img_dir = work / "images"
    img_dir.mkdir(parents=True)
    names = {}
    for i, f in enumerate(frames):
        if f.path is None or not Path(f.path).is_file():
            raise DataError(f.path, f"frame {f.name!r} has no image file on disk for SfM")
        dst = img_dir / f"{i:05d}{Path(f.path).suffix.lower()}"
        try:
            dst.symlink_to(Path(f.path).resolve())
        except OSError:
            shutil.copyfile(f.path, dst)
        names[dst.name] = f.name
    return img_dir, names


def _content_key(f: Frame) -> str:
    import hashlib

    if f.image is not None:
        return hashlib.sha256(np.ascontiguousarray(f.image).tobytes()).hexdigest()
    return hashlib.sha256(Path(f.path).read_bytes()).hexdigest() if f.path is not None else f.name


def check_inputs(frames: list[Frame], root: Path | None = None) -> None:
    """Reject inputs SfM cannot work with before running it: fewer than 3 images, or fewer than 3 distinct ones."""
    if len(frames) < 3:
        raise DataError(root, f"SfM needs at least 3 images, got {len(frames)}: {ADVICE}")
    keys = [_content_key(f) for f in frames]
    distinct = len(set(keys))
    if distinct < 3:
        what = "all images are identical" if distinct == 1 else f"only {distinct} distinct images"
        raise DataError(root, f"SfM cannot triangulate: {what} (no camera motion between them): {ADVICE}")
    if distinct < len(frames):
        dup = [f.name for f, k in zip(frames, keys) if keys.count(k) > 1]
        log.warning("%d images are exact duplicates of others (%s); SfM will not register them all",
                    len(frames) - distinct, ", ".join(dup[:10]))


@contextmanager
def _colmap_quiet():
    """COLMAP's own (glog) lines only when this module logs at DEBUG; restored afterwards."""
    import pycolmap

    old = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if log.isEnabledFor(logging.DEBUG) else 1  # INFO | WARNING and above
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


def run_sfm(frames: list[Frame], cfg: SfMConfig | None = None, should_cancel: CancelFn | None = None) -> PoseResult:
    with _colmap_quiet():
        return _run_sfm(frames, cfg, should_cancel)


def _run_sfm(frames: list[Frame], cfg: SfMConfig | None, should_cancel: CancelFn | None) -> PoseResult:
    import pycolmap

    cfg = cfg or SfMConfig()
    root = Path(frames[0].path).parent if frames and frames[0].path is not None else None
    check_inputs(frames, root)
    with tempfile.TemporaryDirectory(prefix="aligngs-sfm-") as tmp:
        work = Path(tmp)
        img_dir, names = _stage_images(frames, work)
        db = work / "database.db"
        ext = pycolmap.FeatureExtractionOptions()
        ext.max_image_size = cfg.max_image_size
        ext.sift.max_num_features = cfg.max_features
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = cfg.camera_model
        pycolmap.extract_features(db, img_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  extraction_options=ext, device=pycolmap.Device.cpu)
        check_cancel(should_cancel)
        matcher = cfg.matcher if cfg.matcher != "auto" else ("exhaustive" if len(frames) <= 60 else "sequential")
        # the two-view RANSAC draws from a fresh random seed unless given one (pycolmap's default -1): seeded, the
        # same photos give the same poses run after run
        verify = pycolmap.TwoViewGeometryOptions()
        verify.ransac.random_seed = cfg.seed
        match = pycolmap.match_exhaustive if matcher == "exhaustive" else pycolmap.match_sequential
        match(db, verification_options=verify, device=pycolmap.Device.cpu)
        check_cancel(should_cancel)
        opts = pycolmap.IncrementalPipelineOptions()
        opts.random_seed = cfg.seed
        opts.num_threads = 2
        models = pycolmap.incremental_mapping(db, img_dir, work / "sparse", options=opts)
        if not models:
            raise DataError(root, f"SfM could not register any image pair of {len(frames)} images (too little "
                                  f"overlap or texture): {ADVICE}")
        rec = max(models.values(), key=lambda r: r.num_reg_images())
        by_name = {f.name: f for f in frames}
        cameras: dict[str, Camera] = {}
        point_ids = list(rec.points3D.keys())
        index_of = {pid: i for i, pid in enumerate(point_ids)}
        observations: dict[str, np.ndarray] = {}
        for img in rec.images.values():
            if not img.has_pose:
                continue
            fname = names[img.name]
            frame = by_name[fname]
            cam = rec.cameras[img.camera_id]
            w2c = np.eye(4)
            w2c[:3, :4] = img.cam_from_world().matrix()
            full = Camera(np.linalg.inv(w2c), cam.calibration_matrix(), cam.width, cam.height)
            w, h = (frame.image.shape[1], frame.image.shape[0]) if frame.image is not None else (cam.width, cam.height)
            cameras[fname] = full.scaled(w, h) if (w, h) != (cam.width, cam.height) else full
            seen = {index_of[p.point3D_id] for p in img.points2D if p.has_point3D() and p.point3D_id in index_of}
            observations[fname] = np.array(sorted(seen), np.int64)
        pts = [(rec.points3D[pid].xyz, rec.points3D[pid].color, rec.points3D[pid].error) for pid in point_ids]
    unregistered = [f.name for f in frames if f.name not in cameras]
    if len(cameras) < cfg.min_registered:
        raise DataError(root, f"SfM registered only {len(cameras)} of {len(frames)} images (need "
                              f"{cfg.min_registered}); unregistered: {', '.join(unregistered[:20])}: {ADVICE}")
    if unregistered:
        log.warning("SfM could not register %d of %d images: %s", len(unregistered), len(frames), ", ".join(unregistered))
    xyz = np.array([p[0] for p in pts], np.float32).reshape(-1, 3)
    rgb = np.array([p[1] for p in pts], np.float32).reshape(-1, 3) / 255.0
    err = np.array([p[2] for p in pts], np.float32)
    return PoseResult(cameras, xyz, rgb, 1.0 / (1.0 + err), "sfm", unregistered,
                      {"registered": len(cameras), "total": len(frames), "points": len(xyz), "matcher": matcher,
                       "unregistered": unregistered}, observations)
