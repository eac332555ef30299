"""One entry point for every input: ``load_scene(path, cfg)`` detects the format and returns a ``Scene``.

Detection order for a folder: ``transforms.json`` -> COLMAP model (``sparse/0``, ``sparse`` or the folder itself)
-> RGB-D frame folder (``intrinsics.K.txt`` or ``camera-intrinsics.txt`` + ``*.color.png``) -> plain image folder (no poses).
A path to a ``.json`` file is read as transforms.json. The per-format loaders are re-exported here.
"""
from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from .colmap import find_colmap_model, load_colmap
from .errors import DataError
from .images import load_image_folder, load_images
from .rgbd import is_rgbd_folder, load_rgbd
from .split import split_frames
from .transforms import load_transforms
from .types import Scene

__all__ = [
    "DataError", "detect_format", "load_scene", "load_transforms", "load_colmap", "load_rgbd",
    "load_image_folder", "load_images", "split_frames",
]


def detect_format(path: str | Path) -> str:
    """"transforms" | "colmap" | "rgbd" | "images" for ``path``, or DataError if it is none of them."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "transforms"
        raise DataError(path, "expected a folder (or a transforms.json file)")
    if not path.is_dir():
        raise DataError(path, "does not exist")
    if (path / "transforms.json").is_file():
        return "transforms"
    if find_colmap_model(path) is not None:
        return "colmap"
    if is_rgbd_folder(path):
        return "rgbd"
    if not any(True for _ in path.iterdir()):
        raise DataError(path, "folder is empty")
    return "images"


def load_scene(path: str | Path, cfg: DataConfig | None = None) -> Scene:
    """Load any supported input (see the module doc) at ``cfg.resolution``."""
    fmt = detect_format(path)
    loader = {"transforms": load_transforms, "colmap": load_colmap, "rgbd": load_rgbd, "images": load_image_folder}[fmt]
    return loader(path, cfg)
