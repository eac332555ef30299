"""Arrays on the wire (section 2.3): allow-listed dtypes, little-endian, C order, described in JSON."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .constants import ALLOWED_DTYPES, DTYPES
from .errors import ProtocolError
from .header import short

MAX_DIMS = 8
MAX_DIM = 2**40


def le_dtype(name: str) -> np.dtype:
    """The little-endian numpy dtype for an allow-listed dtype name."""
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise ProtocolError("malformed", f"dtype {short(name)} not allowed (allowed: {', '.join(DTYPES)})", field="dtype")
    return np.dtype(name).newbyteorder("<")


def to_wire_array(arr: np.ndarray) -> np.ndarray:
    """C-contiguous little-endian array with an allowed dtype (no copy when it already is one)."""
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise ValueError(f"array dtype {arr.dtype} not allowed on the wire")
    bo = arr.dtype.byteorder
    if bo == ">" or (bo == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # (ascontiguousarray makes 0-d arrays 1-d)


def describe_array(name: str, arr: np.ndarray, frame: int | None, **extra: Any) -> dict:
    d = {"name": name, "dtype": arr.dtype.name, "shape": [int(s) for s in arr.shape], "nbytes": int(arr.nbytes), "frame": frame}
    d.update(extra)
    return d


def array_bytes(arr: np.ndarray) -> memoryview:
    """A flat byte view of a C-contiguous array (no copy; works for read-only memmaps)."""
    if arr.ndim == 0 or arr.size == 0:
        return memoryview(arr.tobytes())
    return memoryview(arr).cast("B")


@dataclass
class ArrayDesc:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    nbytes: int
    frame: int | None
    chunks: int = 0


def parse_array_desc(d: Any, where: str, *, n_frames: int | None = None, allow_chunked: bool = False) -> ArrayDesc:
    """Validate an array descriptor (allow-listed dtype, non-negative shape, nbytes consistent, frame in range)."""
    if not isinstance(d, dict):
        raise ProtocolError("malformed", f"{where}: array descriptor must be an object", field=where)
    name = d.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ProtocolError("malformed", f"{where}.name must be a non-empty string", field=f"{where}.name")
    dt = d.get("dtype")
    if not isinstance(dt, str) or dt not in ALLOWED_DTYPES:
        raise ProtocolError("malformed", f"{where}.dtype {short(dt)} not allowed", field=f"{where}.dtype")
    shape = d.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < MAX_DIM for s in shape)
    ):
        raise ProtocolError("malformed", f"{where}.shape must be a list of at most {MAX_DIMS} non-negative integers",
                            field=f"{where}.shape")
    dtype = le_dtype(dt)
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
    nbytes = d.get("nbytes")
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes != expected:
        raise ProtocolError("bad_frames", f"{where}.nbytes {short(nbytes)} != shape x itemsize = {expected}", field=f"{where}.nbytes")
    frame = d.get("frame")
    chunks = d.get("chunks", 0)
    if frame is None:
        if not allow_chunked:
            raise ProtocolError("malformed", f"{where}.frame must be an integer", field=f"{where}.frame")
        if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1:
            raise ProtocolError("malformed", f"{where}.chunks must be >= 1 when frame is null", field=f"{where}.chunks")
    else:
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 1 or (n_frames is not None and frame > n_frames):
            raise ProtocolError("bad_frames", f"{where}.frame {short(frame)} out of range", field=f"{where}.frame")
        chunks = 0
    return ArrayDesc(name, dtype, tuple(shape), nbytes, frame, chunks)


def array_from_frame(desc: ArrayDesc, data) -> np.ndarray:
    """The array a descriptor names, read from its frame's bytes (no copy); the frame's length must match."""
    buf = memoryview(data)
    if buf.nbytes != desc.nbytes:
        raise ProtocolError("bad_frames", f"array {desc.name!r}: frame has {buf.nbytes} bytes, expected {desc.nbytes}")
    return np.frombuffer(buf, dtype=desc.dtype).reshape(desc.shape)
