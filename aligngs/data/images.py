"""Plain photo folders (no poses): ``Frame.camera`` is None and ``Scene.has_poses`` is False."""
from __future__ import annotations

import logging
from pathlib import Path

from ..config import DataConfig
from .errors import DataError
from .frames import FrameBuilder, FrameSpec, most_common_size
from .imageio import IMAGE_EXTENSIONS, image_size, is_image_name, natural_key
from .types import Scene

log = logging.getLogger(__name__)


def list_images(folder: str | Path) -> list[Path]:
    """The jpg/jpeg/png files of a folder (case-insensitive, not recursive), naturally sorted.

    Other files are skipped with a warning (hidden files and sub-folders silently).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "image folder does not exist")
    out = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.is_dir():
            continue
        if is_image_name(p):
            out.append(p)
        else:
            log.warning("%s: not an image (expected %s); skipping it", p, ", ".join(IMAGE_EXTENSIONS))
    if not out:
        raise DataError(folder, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    return sorted(out, key=lambda p: natural_key(p.name))


def load_images(paths: list[str | Path], cfg: DataConfig | None = None, root: str | Path | None = None) -> Scene:
    """Load an explicit list of image files (each must be a readable image: no skipping).

    Images of a size other than the most common one follow ``cfg.size_mismatch`` (resize with a warning, or error).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError(root, "no images given")
    sizes = [image_size(p) for p in paths]  # raises DataError for missing / non-image / corrupt files
    ref = most_common_size(sizes)
    builder = FrameBuilder(cfg)
    root = Path(root) if root is not None else None
    names = [p.relative_to(root).as_posix() if root is not None and p.is_relative_to(root) else p.name for p in paths]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(root, f"image name {dup} occurs twice")
    frames = [builder.build(FrameSpec(name=n, image_path=p), expected_size=ref) for n, p in zip(names, paths)]
    return Scene(frames=frames, source="images", root=root, has_poses=False)


def load_image_folder(path: str | Path, cfg: DataConfig | None = None) -> Scene:
    """Load every image of a folder (see ``list_images``), EXIF orientation applied.

    A folder without images of its own but with an ``images/`` sub-folder loads that sub-folder.
    """
    folder = Path(path)
    sub = folder / "images"
    if sub.is_dir() and not any(is_image_name(p) for p in folder.iterdir() if p.is_file()):
        folder = sub  # a dataset root whose photos sit in images/
    return load_images(list_images(folder), cfg, root=folder)
