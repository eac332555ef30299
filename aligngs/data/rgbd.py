"""RGB-D frame folders (7-Scenes / tsdf-fusion layout).

``frame-NNNNNN.color.{png,jpg}``, ``frame-NNNNNN.depth.png`` (uint16, millimetres, 0 = invalid),
``frame-NNNNNN.pose.txt`` (4x4 camera-to-world, OpenCV axes), and one shared 3x3 intrinsics file named
``intrinsics.K.txt`` or ``camera-intrinsics.txt`` (the name in the tsdf-fusion sample data).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ..config import DataConfig
from .checks import check_intrinsics, check_pose
from .errors import DataError
from .frames import FrameBuilder, FrameSpec, most_common_size
from .imageio import image_size, natural_key
from .types import Camera, Scene

log = logging.getLogger(__name__)

COLOR_RE = re.compile(r"^(?P<stem>.+)\.color\.(png|jpg|jpeg)$", re.IGNORECASE)
INTRINSICS_NAMES = ("intrinsics.K.txt", "camera-intrinsics.txt")  # first found wins, in this order


def is_rgbd_folder(path: Path) -> bool:
    """A folder of ``*.color.*`` images with an intrinsics file or ``*.pose.txt`` files next to them."""
    if not path.is_dir():
        return False
    names = [p.name for p in path.iterdir()]
    has_color = any(COLOR_RE.match(n) for n in names)
    return has_color and (any(n in names for n in INTRINSICS_NAMES) or any(n.endswith(".pose.txt") for n in names))


def find_intrinsics(root: Path) -> Path:
    """The folder's intrinsics file; a DataError naming every accepted name when there is none."""
    for name in INTRINSICS_NAMES:
        if (root / name).is_file():
            return root / name
    raise DataError(root / INTRINSICS_NAMES[0],
                    f"missing intrinsics file (3x3 K) for the RGB-D folder; accepted names: {', '.join(INTRINSICS_NAMES)}")


def _read_matrix(path: Path, what: str) -> np.ndarray:
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip() and not line.lstrip().startswith("#")]
        m = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read {what} ({e})") from e
    except ValueError as e:  # ragged rows or a non-number
        raise DataError(path, f"{what} must be a whitespace-separated numeric matrix ({e})") from e
    return m


def load_rgbd(path: str | Path, cfg: DataConfig | None = None, depth_scale: float = 1000.0) -> Scene:
    """Load an RGB-D frame folder; depth in metres = PNG value / ``depth_scale``."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "RGB-D folder does not exist")
    k_path = find_intrinsics(root)
    K = check_intrinsics(_read_matrix(k_path, "intrinsics"), k_path)

    colors = sorted((p for p in root.iterdir() if COLOR_RE.match(p.name)), key=lambda p: natural_key(p.name))
    if not colors:
        raise DataError(root, "no frame-*.color.png/jpg images in the RGB-D folder")
    sizes = [image_size(p) for p in colors]
    width, height = most_common_size(sizes)

    specs = []
    for p in colors:
        stem = COLOR_RE.match(p.name).group("stem")
        pose_path = root / f"{stem}.pose.txt"
        if not pose_path.is_file():
            raise DataError(pose_path, f"missing pose file for {p.name}")
        c2w = check_pose(_read_matrix(pose_path, "pose"), pose_path)
        depth_path = root / f"{stem}.depth.png"
        specs.append(FrameSpec(
            name=stem, image_path=p, camera=Camera(c2w, K, width, height),
            depth_path=depth_path if depth_path.is_file() else None, depth_scale=depth_scale,
        ))
    n_depth = sum(s.depth_path is not None for s in specs)
    if 0 < n_depth < len(specs):
        missing = next(s for s in specs if s.depth_path is None)
        raise DataError(root / f"{missing.name}.depth.png", f"missing depth map ({n_depth} of {len(specs)} frames have one)")
    builder = FrameBuilder(cfg)
    frames = [builder.build(s) for s in specs]
    return Scene(frames=frames, source="rgbd", root=root, has_poses=True, meta={"depth_scale": depth_scale})
