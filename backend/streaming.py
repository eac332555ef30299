"""Result stream (protocol section 7): a finished job's parts as ZeroMQ frames, without copying array bytes.

Arrays are memory-mapped from the ``.npy`` files (``aligngs.wire.read_parts``); the stream itself is encoded by
``aligngs.wire.encode_result_stream`` (inline frames and chunk frames are ``memoryview`` slices of those maps,
handed to ZeroMQ with ``copy=False``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from aligngs.wire import ALLOWED_DTYPES, ResultPart, encode_result_stream, json_safe, read_parts, to_wire_array


class ResultError(ValueError):
    """The job's result folder is missing or inconsistent."""


@dataclass
class LoadedResult:
    scene: str
    up: list[float]
    version: int
    parts: list[ResultPart]

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for p in self.parts for a in p.arrays.values())


def is_3dgs_ply(path: Path) -> bool:
    """A PLY in the standard 3DGS layout (its header declares the ``f_dc_0`` vertex property)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError:
        return False
    end = head.find(b"end_header")
    return head.startswith(b"ply") and end > 0 and b" f_dc_0" in head[:end]


def load_result(out_dir: Path, *, include_files: bool = True, names: list[str] | None = None) -> LoadedResult:
    """The manifest's parts (validated, memory-mapped) plus one ``file`` part per 3DGS PLY at the top of ``out_dir``."""
    try:
        manifest, parts = read_parts(Path(out_dir) / "result", mmap=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ResultError(f"cannot read the result in {out_dir}: {e}") from e
    if not isinstance(manifest, dict):
        raise ResultError("manifest is not an object")
    checked = []
    for i, p in enumerate(parts):
        if not isinstance(p.name, str) or not isinstance(p.kind, str) or not isinstance(p.meta, dict):
            raise ResultError(f"part {i}: name/kind must be strings and meta an object")
        arrays = {}
        for key, arr in p.arrays.items():
            if not isinstance(arr, np.ndarray) or arr.dtype.name not in ALLOWED_DTYPES:
                raise ResultError(f"part {p.name!r}: array {key!r} has unsupported dtype {getattr(arr, 'dtype', None)}")
            arrays[str(key)] = to_wire_array(arr)
        checked.append(ResultPart(p.name, p.kind, arrays, json_safe(p.meta)))
    if include_files:
        for f in sorted(Path(out_dir).glob("*.ply")):
            if not f.is_file() or not is_3dgs_ply(f):
                continue
            size = f.stat().st_size
            data = np.memmap(f, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
            checked.append(ResultPart(f.name, "file", {"data": data}, {"filename": f.name, "format": "ply", "layout": "3dgs", "nbytes": size}))
    if names is not None:
        checked = [p for p in checked if p.name in names]
    up = manifest.get("up", [0.0, 0.0, 1.0])
    if not (isinstance(up, list) and len(up) == 3 and all(isinstance(u, (int, float)) and math.isfinite(u) for u in up)):
        up = [0.0, 0.0, 1.0]
    version = manifest.get("version", 1)
    return LoadedResult(str(manifest.get("scene", "scene")), [float(u) for u in up], int(version) if isinstance(version, int) else 1, checked)


def stream_messages(job: str, re_: int | None, result: LoadedResult, chunk_bytes: int) -> Iterator[list]:
    """The messages of one result stream: ``result``, then per part ``part`` + its ``chunk``s (frames lists)."""
    return encode_result_stream(job, re_, result.parts, scene=result.scene, up=result.up, version=result.version,
                                chunk_bytes=chunk_bytes)
