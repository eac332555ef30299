"""JSON files written atomically (report.json, cameras.json, ...): never half-written, numpy-aware."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from aligngs.export._atomic import atomic_open


def to_jsonable(obj, where: str = "$"):
    """Plain JSON values from ``obj``: numpy scalars/arrays -> numbers/lists, tuples/sets -> lists,
    ``Path`` -> str, dataclasses and objects with ``to_dict()`` -> objects, numeric dict keys -> strings.
    Non-finite floats (NaN, inf) become ``null`` so the file stays strict JSON. Anything else raises
    ``TypeError`` naming where it sits (``$.a.b[3]``)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"to_jsonable: array at {where} has dtype {obj.dtype}; expected bool/int/float")
        return to_jsonable(obj.tolist(), where)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"to_jsonable: key {k!r} at {where} is a {type(k).__name__}; expected str or int")
            out[str(k)] = to_jsonable(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(items)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where)
    if callable(getattr(obj, "to_dict", None)):
        return to_jsonable(obj.to_dict(), where)
    raise TypeError(f"to_jsonable: value at {where} is a {type(obj).__name__}, which JSON cannot hold")


def write_json_atomic(path, obj, indent: int | None = 2) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` via a temporary file in the same folder + ``os.replace``
    (readers see the old file or the new one, never a partial one). Creates the folder. Returns the path."""
    path = Path(path)
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return path


def read_json(path) -> object:
    """Read a JSON file (errors name the file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"read_json: no such file {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"read_json: {path} is not valid JSON: {exc}") from exc
