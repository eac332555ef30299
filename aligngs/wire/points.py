"""The live point preview on the wire: the optional ``points`` field of a ``progress`` event (docs/protocol.md 6.1).

While a job trains, the worker sends a decimated snapshot of the Gaussians every few seconds; a viewer redraws one
point object from it. The field is an object of three array descriptors, each naming a frame of the same message:

- ``positions``: float16 [N,3], world units of the reconstruction (before the importer's up rotation);
- ``colors``: uint8 [N,3], sRGB;
- ``class_colors``: uint8 [N,3], sRGB colour of each point's current ADE20K class, or null without semantics;

plus ``total`` (how many Gaussians the N were drawn from) and ``up`` (the world up the result will carry, 3 floats,
or null). N is at most ``MAX_PREVIEW_POINTS``. Clients that do not know the field ignore it (unknown fields are
ignored, section 2), and its frames come after every frame the message had before.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import array_bytes, array_from_frame, describe_array, parse_array_desc, to_wire_array
from .errors import ProtocolError

MAX_PREVIEW_POINTS = 200_000
POINT_ARRAYS: dict[str, str] = {"positions": "float16", "colors": "uint8", "class_colors": "uint8"}


@dataclass
class PointsPreview:
    positions: np.ndarray  # float16 [N,3]
    colors: np.ndarray  # uint8 [N,3]
    class_colors: np.ndarray | None  # uint8 [N,3] or None
    total: int
    up: tuple[float, float, float] | None

    @property
    def n(self) -> int:
        return int(self.positions.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.positions, self.colors, self.class_colors) if a is not None)


def encode_points(p: PointsPreview, first_frame: int) -> tuple[dict, list[memoryview]]:
    """The ``points`` field and its frames, numbered from ``first_frame`` (the message's next free frame index)."""
    field: dict[str, Any] = {"total": int(p.total), "up": None if p.up is None else [float(v) for v in p.up]}
    frames: list[memoryview] = []
    for name, dtype in POINT_ARRAYS.items():
        arr = getattr(p, name)
        if arr is None:
            field[name] = None
            continue
        arr = to_wire_array(np.asarray(arr))
        if arr.dtype.name != dtype or arr.shape != (p.n, 3):
            raise ValueError(f"points.{name}: expected {dtype} [{p.n},3], got {arr.dtype} {list(arr.shape)}")
        field[name] = describe_array(name, arr, first_frame + len(frames))
        frames.append(array_bytes(arr))
    return field, frames


def decode_points(d: Any, frames: list, where: str = "points") -> PointsPreview:
    """Check a ``points`` field against its frames (``frames[0]`` is the header) and read the arrays (no copy).

    Raises ``ProtocolError`` on a wrong dtype or shape, a missing frame or arrays of different lengths.
    """
    if not isinstance(d, dict):
        raise ProtocolError("malformed", f"{where} must be an object or null", field=where)
    arrays: dict[str, np.ndarray | None] = {}
    n = None
    for name, dtype in POINT_ARRAYS.items():
        desc_d = d.get(name)
        if desc_d is None:
            if name != "class_colors":
                raise ProtocolError("malformed", f"{where}.{name} is required", field=f"{where}.{name}")
            arrays[name] = None
            continue
        desc = parse_array_desc(desc_d, f"{where}.{name}", n_frames=len(frames) - 1)
        if desc.dtype.name != dtype or len(desc.shape) != 2 or desc.shape[1] != 3:
            raise ProtocolError("malformed", f"{where}.{name}: expected {dtype} [N,3]", field=f"{where}.{name}")
        if n is not None and desc.shape[0] != n:
            raise ProtocolError("malformed", f"{where}.{name} has {desc.shape[0]} rows, positions {n}", field=f"{where}.{name}")
        n = desc.shape[0]
        if n > MAX_PREVIEW_POINTS:
            raise ProtocolError("too_large", f"{where}: {n} points > {MAX_PREVIEW_POINTS}", field=f"{where}.{name}")
        arrays[name] = array_from_frame(desc, frames[desc.frame])
    total = d.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ProtocolError("malformed", f"{where}.total must be a non-negative integer", field=f"{where}.total")
    up = d.get("up")
    if up is not None:
        if (not isinstance(up, list) or len(up) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in up)):
            raise ProtocolError("malformed", f"{where}.up must be 3 finite numbers or null", field=f"{where}.up")
        up = tuple(float(v) for v in up)
    return PointsPreview(arrays["positions"], arrays["colors"], arrays["class_colors"], total, up)
