"""``file`` result parts (the 3DGS PLY the pipeline wrote): Blender has no Gaussian-splat type, so the add-on asks
for them only when the user chose a folder for them (preferences), and saves them there as they arrive."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._vendor.wire import PART_KINDS, ResultFormatError, atomic_open, safe_name

FILE_KIND = "file"


def wanted_parts(save_files: bool) -> list[str] | None:
    """The ``parts`` a submit / subscribe / fetch asks for: every kind (None) when file parts are saved, else every
    kind but ``file``."""
    return None if save_files else [k for k in PART_KINDS if k != FILE_KIND]


def save_file_part(part, folder: str | os.PathLike) -> Path:
    """Write a ``file`` part's bytes to ``folder/<its file name>`` (atomically; folders created); returns the path."""
    data = part.arrays.get("data")
    if data is None:
        raise ResultFormatError(f"file part {part.name!r} has no 'data' array")
    name = safe_name(str(part.meta.get("filename") or part.name), default="gaussians.ply")
    path = Path(os.path.expanduser(str(folder))) / name
    with atomic_open(path, "wb") as fh:
        fh.write(np.ascontiguousarray(data, dtype=np.uint8).tobytes())
    return path
