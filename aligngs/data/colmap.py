"""COLMAP sparse models (text or binary, read with pycolmap's ``Reconstruction``).

Layouts found by ``find_colmap_model``: ``ROOT/sparse/0/`` or ``ROOT/sparse/`` with images in ``ROOT/images/``;
or a model folder itself (``cameras``/``images``/``points3D`` ``.txt`` or ``.bin``) with images in ``images/``
next to it, or in its parent's / grandparent's ``images/`` (pointing at ``ROOT/sparse/0`` works).
Camera models: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV (distorted ones are undistorted to a
pinhole image with the same K). Only registered images are loaded; images listed by the model but missing on disk
are skipped with a warning. ``points3D`` become ``Scene.points`` / ``Scene.point_colors``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import DataConfig
from .checks import check_intrinsics, check_pose, make_K
from .errors import DataError
from .frames import FrameBuilder, FrameSpec
from .imageio import natural_key
from .types import Camera, Scene
from .undistort import Distortion

log = logging.getLogger(__name__)

MODEL_FILES = ("cameras", "images", "points3D")


def _model_files(folder: Path) -> dict[str, Path | None]:
    out = {}
    for stem in MODEL_FILES:
        found = None
        for ext in (".bin", ".txt"):
            if (folder / f"{stem}{ext}").is_file():
                found = folder / f"{stem}{ext}"
                break
        out[stem] = found
    return out


def is_colmap_model(folder: Path) -> bool:
    files = _model_files(folder)
    return folder.is_dir() and files["cameras"] is not None and files["images"] is not None


def find_colmap_model(path: str | Path) -> tuple[Path, Path] | None:
    """(model folder, images folder) for a COLMAP layout at ``path``, or None if it is not one."""
    path = Path(path)
    for model in (path / "sparse" / "0", path / "sparse", path):
        if is_colmap_model(model):
            break
    else:
        return None
    candidates = [path / "images", model / "images", model.parent / "images", model.parent.parent / "images"]
    return model, next((c for c in candidates if c.is_dir()), path / "images")


def _camera(cam, model_dir: Path) -> tuple[np.ndarray, Distortion | None]:
    name = cam.model.name
    p = [float(v) for v in cam.params]
    where = f"camera {cam.camera_id} ({name})"
    if name == "SIMPLE_PINHOLE":
        K, d = make_K(p[0], p[0], p[1], p[2]), None
    elif name == "PINHOLE":
        K, d = make_K(p[0], p[1], p[2], p[3]), None
    elif name == "SIMPLE_RADIAL":
        K, d = make_K(p[0], p[0], p[1], p[2]), Distortion(k1=p[3])
    elif name == "RADIAL":
        K, d = make_K(p[0], p[0], p[1], p[2]), Distortion(k1=p[3], k2=p[4])
    elif name == "OPENCV":
        K, d = make_K(p[0], p[1], p[2], p[3]), Distortion(k1=p[4], k2=p[5], p1=p[6], p2=p[7])
    else:
        raise DataError(model_dir / "cameras", f"{where}: unsupported camera model (SIMPLE_PINHOLE, PINHOLE, "
                        "SIMPLE_RADIAL, RADIAL, OPENCV are supported; undistort the model with COLMAP first)")
    K = check_intrinsics(K, model_dir / "cameras", where)
    return K, (None if d is None or d.is_zero else d)


def load_colmap(path: str | Path, cfg: DataConfig | None = None, images_dir: str | Path | None = None) -> Scene:
    """Load a COLMAP model (see the module doc for the layouts); ``images_dir`` overrides where images are."""
    path = Path(path)
    found = find_colmap_model(path)
    if found is None:
        raise DataError(path, "no COLMAP model here (expected sparse/0/, sparse/ or cameras/images/points3D .bin/.txt)")
    model_dir, img_dir = found
    img_dir = Path(images_dir) if images_dir is not None else img_dir
    files = _model_files(model_dir)
    missing = [s for s in MODEL_FILES if files[s] is None]
    if missing:
        raise DataError(model_dir, f"COLMAP model is missing {', '.join(m + '.bin/.txt' for m in missing)}")
    if not img_dir.is_dir():
        raise DataError(img_dir, "COLMAP images folder does not exist (pass images_dir=...)")

    import pycolmap  # heavy: only when a COLMAP model is actually read

    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except (ValueError, RuntimeError) as e:
        raise DataError(model_dir, f"cannot read the COLMAP model ({e})") from e

    cams: dict[int, tuple[np.ndarray, Distortion | None, int, int]] = {}
    for cid, cam in rec.cameras.items():
        K, d = _camera(cam, model_dir)
        cams[cid] = (K, d, int(cam.width), int(cam.height))

    specs: list[FrameSpec] = []
    skipped: list[str] = []
    for iid, im in rec.images.items():
        if not im.has_pose:
            continue
        img_path = img_dir / im.name
        if not img_path.is_file():
            skipped.append(im.name)
            log.warning("%s: image %s (id %d) listed in the model is missing; skipping it", img_dir, im.name, iid)
            continue
        w2c = np.eye(4)
        w2c[:3, :] = np.asarray(im.cam_from_world().matrix(), dtype=np.float64)
        if not np.isfinite(w2c).all():
            raise DataError(files["images"], f"image {im.name} (id {iid}) has a NaN/inf pose")
        c2w = check_pose(np.linalg.inv(w2c), files["images"], f"pose of image {im.name} (id {iid})")
        K, d, w, h = cams[im.camera_id]
        specs.append(FrameSpec(name=im.name, image_path=img_path, camera=Camera(c2w, K, w, h), distortion=d))
    if not specs:
        raise DataError(model_dir, f"no registered images with files in {img_dir} ({len(skipped)} missing)")
    if skipped:
        log.warning("%s: loaded %d images, %d listed images missing", model_dir, len(specs), len(skipped))
    specs.sort(key=lambda s: natural_key(s.name))
    builder = FrameBuilder(cfg)
    frames = [builder.build(s) for s in specs]

    points = colors = None
    if rec.num_points3D() > 0:
        pts = [p for _, p in sorted(rec.points3D.items(), key=lambda kv: kv[0])]  # by point3D id
        points = np.array([p.xyz for p in pts], dtype=np.float32).reshape(-1, 3)
        colors = np.array([p.color for p in pts], dtype=np.float32).reshape(-1, 3) / 255.0
    return Scene(
        frames=frames, source="colmap", root=path, has_poses=True, points=points, point_colors=colors,
        meta={"model": str(model_dir), "images": str(img_dir), "skipped": skipped,
              "undistorted": any(s.distortion is not None for s in specs)},
    )
