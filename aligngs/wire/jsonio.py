"""JSON the way every AlignGS file and header needs it: strict (no NaN), numpy-aware, written atomically."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path, PurePath
from typing import Any

import numpy as np


def to_jsonable(obj: Any, where: str = "$", *, lenient: bool = False) -> Any:
    """Plain JSON values from ``obj``: numpy scalars/arrays -> numbers/lists, tuples/sets -> lists,
    paths -> str, dataclasses and objects with ``to_dict()`` -> objects, numeric dict keys -> strings.
    Non-finite floats (NaN, inf) become ``null`` so the result stays strict JSON. Anything else raises
    ``TypeError`` naming where it sits (``$.a.b[3]``), or with ``lenient`` becomes ``str(value)``."""
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
        if obj.dtype.kind not in "biuf" and not lenient:
            raise TypeError(f"to_jsonable: array at {where} has dtype {obj.dtype}; expected bool/int/float")
        return to_jsonable(obj.tolist(), where, lenient=lenient)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not lenient and (isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer))):
                raise TypeError(f"to_jsonable: key {k!r} at {where} is a {type(k).__name__}; expected str or int")
            out[str(k)] = to_jsonable(v, f"{where}.{k}", lenient=lenient)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, f"{where}[{i}]", lenient=lenient) for i, v in enumerate(items)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where, lenient=lenient)
    if callable(getattr(obj, "to_dict", None)):
        return to_jsonable(obj.to_dict(), where, lenient=lenient)
    if lenient:
        return str(obj)
    raise TypeError(f"to_jsonable: value at {where} is a {type(obj).__name__}, which JSON cannot hold")


def json_safe(obj: Any) -> Any:
    """``to_jsonable`` that never raises: what JSON cannot hold becomes its ``str``."""
    return to_jsonable(obj, lenient=True)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", encoding: str | None = None):
    """Yield an open file; on success it is flushed, fsynced and renamed to ``path`` (folders created);
    on error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` via a temporary file in the same folder + ``os.replace``
    (readers see the old file or the new one, never a partial one). Creates the folder. Returns the path."""
    path = Path(path)
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return path


def read_json(path) -> Any:
    """Read a JSON file (errors name the file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"read_json: no such file {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"read_json: {path} is not valid JSON: {exc}") from exc
