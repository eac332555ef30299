"""Result stream (protocol section 7): a finished job's parts as ZeroMQ frames, without copying array bytes.

Arrays are memory-mapped from the ``.npy`` files (``aligngs.results.read_parts``); inline frames and chunk frames
are ``memoryview`` slices of those maps, handed to ZeroMQ with ``copy=False``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from aligngs.results import ALLOWED_DTYPES, ResultPart, read_parts

from .protocol import array_bytes, chunk_ranges, describe_array, encode_header, json_safe, message, n_chunks, to_wire_array


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
    n = len(result.parts)
    yield [
        encode_header(
            message(
                "result", re_, job=job, scene=result.scene, up=result.up, version=result.version, parts=n,
                nbytes=result.nbytes, chunk_bytes=chunk_bytes,
            )
        )
    ]
    for i, part in enumerate(result.parts):
        descs, inline, chunked = [], [], []
        for name, arr in part.arrays.items():
            if arr.nbytes <= chunk_bytes:
                inline.append(array_bytes(arr))
                descs.append(describe_array(name, arr, len(inline), chunks=0))
            else:
                descs.append(describe_array(name, arr, None, chunks=n_chunks(arr.nbytes, chunk_bytes)))
                chunked.append((name, arr))
        header = message("part", re_, job=job, index=i, count=n, name=part.name, kind=part.kind, meta=part.meta, arrays=descs)
        yield [encode_header(header), *inline]
        for name, arr in chunked:
            buf = array_bytes(arr)
            ranges = chunk_ranges(arr.nbytes, chunk_bytes)
            for j, (off, nb) in enumerate(ranges):
                h = message(
                    "chunk", re_, job=job, part=i, array=name, index=j, count=len(ranges), offset=off, nbytes=nb, total=int(arr.nbytes)
                )
                yield [encode_header(h), buf[off:off + nb]]
