"""nerfstudio / instant-ngp ``transforms.json`` (+ the extra keys our synthetic-scene generator writes).

- ``transform_matrix``: camera-to-world in OpenGL axes; converted with ``c2w_cv = c2w_gl @ diag(1,-1,-1,1)``.
- Intrinsics shared at the top level and/or per frame (per-frame keys win): ``fl_x``, ``fl_y``, ``cx``, ``cy``,
  ``w``, ``h``, or ``camera_angle_x`` (/ ``camera_angle_y``); missing ``cx``/``cy`` = image centre; missing
  ``w``/``h`` = the image's size. OpenCV distortion ``k1 k2 p1 p2 (k3)`` -> the image is undistorted, K kept.
- Frames whose image file is missing are skipped with a warning (``Scene.meta["skipped"]``).
- Optional per frame: ``depth_file_path`` (16-bit PNG; metres = value / top-level ``depth_scale`` (default 1000),
  or value * nerfstudio's ``depth_unit_scale_factor`` when that is given), ``semantic_file_path`` (8-bit PNG,
  ADE20K id + 1, 0 = unknown -> ``Frame.labels``), ``instance_file_path`` (16-bit PNG -> ``extras["instance"]``).
- Top level ``aligngs_world_up`` [3] -> ``Scene.up``.
- The input's own train/test split -> ``Scene.meta["split"]`` (``{"train": [...] | None, "test": [...], "source": key}``,
  frame names): nerfstudio's top-level ``test_filenames`` (else ``val_filenames``) with optional
  ``train_filenames``, as its dataparser reads them; else per-frame ``"split": "train" | "test"`` keys (our synthetic
  rooms). Listed files whose image is missing are skipped like their frames. ``split_frames`` decides whether to use it.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from ..config import DataConfig
from .checks import GL_TO_CV, check_intrinsics, check_pose, make_K
from .errors import DataError
from .frames import FrameBuilder, FrameSpec
from .imageio import image_size, natural_key
from .types import Camera, Scene
from .undistort import DIST_KEYS, Distortion

log = logging.getLogger(__name__)

_UNSUPPORTED_MODELS = ("OPENCV_FISHEYE", "EQUIRECTANGULAR", "FISHEYE")


def load_transforms(path: str | Path, cfg: DataConfig | None = None) -> Scene:
    """Load a transforms.json (the file, or a folder holding one)."""
    path = Path(path)
    json_path = path / "transforms.json" if path.is_dir() else path
    if not json_path.is_file():
        raise DataError(json_path, "transforms.json not found")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(json_path, f"not valid JSON ({e})") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise DataError(json_path, "expected an object with a 'frames' list")
    root = json_path.parent
    model = str(meta.get("camera_model", "OPENCV")).upper()
    if model in _UNSUPPORTED_MODELS:
        raise DataError(json_path, f"camera_model {model} is not supported (only pinhole / OPENCV)")

    depth_factor = _depth_factor(meta, json_path)
    up = _world_up(meta, json_path)

    specs: list[FrameSpec] = []
    skipped: list[str] = []
    seen: set[str] = set()
    frame_splits: dict[str, str] = {}
    for i, fr in enumerate(meta["frames"]):
        where = f"frames[{i}]"
        if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
            raise DataError(json_path, f"{where} needs 'file_path' and 'transform_matrix'")
        img_path = _resolve_image(root, str(fr["file_path"]))
        if img_path is None:
            skipped.append(str(fr["file_path"]))
            log.warning("%s: %s image %s is missing; skipping the frame", json_path, where, fr["file_path"])
            continue
        name = img_path.relative_to(root).as_posix() if img_path.is_relative_to(root) else img_path.name
        if name in seen:
            raise DataError(json_path, f"{where}: image {name} is listed twice")
        seen.add(name)
        if "split" in fr:
            if fr["split"] not in ("train", "test", "val"):
                raise DataError(json_path, f"{where}.split must be 'train', 'test' or 'val', got {fr['split']!r}")
            frame_splits[name] = "test" if fr["split"] == "val" else fr["split"]
        c2w = check_pose(fr["transform_matrix"], json_path, f"{where}.transform_matrix") @ GL_TO_CV
        K, w, h, dist = _intrinsics(meta, fr, img_path, json_path, where)
        specs.append(FrameSpec(
            name=name, image_path=img_path, camera=Camera(c2w, K, w, h), distortion=dist,
            depth_path=_aux_path(root, fr, "depth_file_path", json_path, where),
            depth_scale=1.0 / depth_factor,
            semantic_path=_aux_path(root, fr, "semantic_file_path", json_path, where),
            instance_path=_aux_path(root, fr, "instance_file_path", json_path, where),
        ))
    if not specs:
        raise DataError(json_path, f"no usable frames ({len(meta['frames'])} listed, {len(skipped)} images missing)")
    if skipped:
        log.warning("%s: loaded %d of %d frames (%d images missing)", json_path, len(specs), len(meta["frames"]), len(skipped))
    specs.sort(key=lambda s: natural_key(s.name))
    split = _input_split(meta, root, {s.name for s in specs}, frame_splits, json_path)
    builder = FrameBuilder(cfg)
    frames = [builder.build(s) for s in specs]
    dists = {s.distortion for s in specs if s.distortion is not None and not s.distortion.is_zero}
    return Scene(
        frames=frames, source="transforms", root=root, has_poses=True, up=up,
        meta={"skipped": skipped, "json": str(json_path), "undistorted": bool(dists), "split": split},
    )


def _input_split(meta: dict, root: Path, names: set[str], frame_splits: dict[str, str], json_path: Path) -> dict | None:
    """The split the file itself declares (nerfstudio's ``*_filenames`` lists win over per-frame keys), or None."""
    def listed(key: str) -> list[str] | None:
        value = meta.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(json_path, f"top-level {key} must be a list of file paths, got {type(value).__name__}")
        out = []
        for v in value:
            p = _resolve_image(root, v)
            name = None if p is None else (p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name)
            if name in names:
                out.append(name)
            else:
                log.warning("%s: %s lists %s, which is not a loaded frame; ignoring it", json_path, key, v)
        return out

    test_key = "test_filenames" if meta.get("test_filenames") is not None else "val_filenames"
    test = listed(test_key)
    if test is not None:
        train = listed("train_filenames")
        overlap = sorted(set(train or ()) & set(test))
        if overlap:
            raise DataError(json_path, f"train_filenames and {test_key} share {len(overlap)} frame(s), e.g. {overlap[0]}")
        return {"train": train, "test": test, "source": test_key}
    if frame_splits:
        return {"train": None, "test": sorted((n for n, s in frame_splits.items() if s == "test"), key=natural_key),
                "source": "frames[].split"}
    return None


def _resolve_image(root: Path, file_path: str) -> Path | None:
    p = Path(file_path)
    p = p if p.is_absolute() else root / p
    if p.is_file():
        return p
    if not p.suffix:  # Blender synthetic sets: "./train/r_0" means r_0.png
        for ext in (".png", ".jpg", ".jpeg", ".PNG", ".JPG"):
            q = p.with_name(p.name + ext)
            if q.is_file():
                return q
    return None


def _aux_path(root: Path, fr: dict, key: str, json_path: Path, where: str) -> Path | None:
    value = fr.get(key)
    if value is None:
        return None
    p = Path(str(value))
    p = p if p.is_absolute() else root / p
    if not p.is_file():
        raise DataError(p, f"listed as {where}.{key} in {json_path.name} but does not exist")
    return p


def _number(d: dict, key: str, json_path: Path, where: str) -> float | None:
    if key not in d or d[key] is None:
        return None
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DataError(json_path, f"{where}.{key} must be a finite number, got {v!r}")
    return float(v)


def _intrinsics(meta: dict, fr: dict, img_path: Path, json_path: Path, where: str):
    def get(key):  # per-frame value wins over the shared one
        v = _number(fr, key, json_path, where)
        return v if v is not None else _number(meta, key, json_path, "top level")

    w, h = get("w"), get("h")
    if w is None or h is None:
        iw, ih = image_size(img_path)
        w = iw if w is None else w
        h = ih if h is None else h
    w, h = int(round(w)), int(round(h))
    fx, fy = get("fl_x"), get("fl_y")
    ax, ay = get("camera_angle_x"), get("camera_angle_y")
    if fx is None and ax is not None:
        fx = 0.5 * w / math.tan(0.5 * ax)
    if fy is None and ay is not None:
        fy = 0.5 * h / math.tan(0.5 * ay)
    if fx is None and fy is None:
        raise DataError(json_path, f"{where}: missing intrinsics (need fl_x/fl_y or camera_angle_x, shared or per frame)")
    fx = fy if fx is None else fx
    fy = fx if fy is None else fy
    cx, cy = get("cx"), get("cy")
    cx = w / 2.0 if cx is None else cx
    cy = h / 2.0 if cy is None else cy
    K = check_intrinsics(make_K(fx, fy, cx, cy), json_path, f"{where} intrinsics")
    coeffs = {k: get(k) or 0.0 for k in DIST_KEYS}
    for k in ("k4", "k5", "k6"):
        if get(k):
            raise DataError(json_path, f"{where}: distortion coefficient {k} is not supported (OPENCV k1,k2,k3,p1,p2 only)")
    dist = Distortion(**coeffs)
    return K, w, h, (None if dist.is_zero else dist)


def _depth_factor(meta: dict, json_path: Path) -> float:
    """Multiplier from raw depth PNG values to metres."""
    if meta.get("depth_unit_scale_factor") is not None:
        f = _number(meta, "depth_unit_scale_factor", json_path, "top level")
    else:
        s = _number(meta, "depth_scale", json_path, "top level")
        s = 1000.0 if s is None else s
        if s <= 0:
            raise DataError(json_path, f"depth_scale must be positive, got {s}")
        f = 1.0 / s
    if f <= 0:
        raise DataError(json_path, f"depth unit scale must be positive, got {f}")
    return f


def _world_up(meta: dict, json_path: Path) -> np.ndarray | None:
    v = meta.get("aligngs_world_up")
    if v is None:
        return None
    try:
        up = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        up = np.zeros(0)
    if up.shape != (3,) or not np.isfinite(up).all() or np.linalg.norm(up) == 0:
        raise DataError(json_path, f"aligngs_world_up must be a non-zero 3-vector, got {v!r}")
    return up / np.linalg.norm(up)
