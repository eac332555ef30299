"""The input folder: which files a submit sends (pure Python).

A folder of photos, optionally with the side files the pipeline's loaders read (``transforms.json``, COLMAP text,
``*.pose.txt`` / ``intrinsics.K.txt``), in subfolders up to 3 levels deep (the wire allows 4 path components).
Hidden files and folders are skipped. Names are sent relative to the folder with ``/`` separators.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".exr")
SIDE_EXTENSIONS = (".txt", ".json")
MAX_DEPTH = 3  # subfolder levels below the chosen folder


@dataclass
class InputFile:
    name: str  # relative, "/"-separated
    path: Path
    nbytes: int
    is_image: bool


@dataclass
class InputScan:
    folder: Path
    files: list[InputFile] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return sum(1 for f in self.files if f.is_image)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.files)


def scan_folder(folder: str | os.PathLike, extensions=None) -> InputScan:
    """List the files to send from ``folder``; raises InputError when it is missing or holds no image."""
    raw = str(folder).strip()
    if not raw:
        raise InputError("no image folder chosen")
    root = Path(os.path.expanduser(raw))
    if not root.exists():
        raise InputError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    allowed = tuple(e.lower() for e in (extensions or IMAGE_EXTENSIONS + SIDE_EXTENSIONS))
    scan = InputScan(root)
    try:
        _walk(root, root, 0, allowed, scan)
    except PermissionError as e:
        raise InputError(f"cannot read {e.filename}: permission denied") from None
    scan.files.sort(key=lambda f: f.name)
    if scan.n_images == 0:
        raise InputError(f"no images in {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return scan


def _walk(root: Path, d: Path, depth: int, allowed: tuple, scan: InputScan) -> None:
    with os.scandir(d) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir(follow_symlinks=True):
            if depth < MAX_DEPTH:
                _walk(root, Path(e.path), depth + 1, allowed, scan)
            continue
        ext = os.path.splitext(e.name)[1].lower()
        if ext not in allowed:
            continue
        p = Path(e.path)
        scan.files.append(InputFile(p.relative_to(root).as_posix(), p, e.stat().st_size, ext in IMAGE_EXTENSIONS))


class ImageCountCache:
    """Image counts per folder for the UI (draw() runs often): re-scans when the folder's mtime changes."""

    def __init__(self):
        self._cache: dict[str, tuple[float, int | str]] = {}

    def count(self, folder: str) -> int | str:
        """Number of images, or the reason there are none (a string)."""
        key = str(folder)
        try:
            mtime = os.stat(os.path.expanduser(key.strip())).st_mtime if key.strip() else -1.0
        except OSError:
            mtime = -1.0
        hit = self._cache.get(key)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        try:
            value: int | str = scan_folder(key).n_images
        except InputError as e:
            value = str(e)
        self._cache[key] = (mtime, value)
        return value
