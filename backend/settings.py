"""Submit settings -> PipelineConfig, with errors that name the offending field (``config.train.iterations``).

``aligngs.config.PipelineConfig.from_dict`` checks names and scalar types; this module adds what the wire needs on
top: fields whose default is null (``int | None`` ...) and tuples are type-checked before ``from_dict`` sees them,
and a few value sets / ranges are checked after (so a bad value is refused at submit, not minutes into a job).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from aligngs.config import (PRESETS, DepthTeacherName, PipelineConfig, SemanticTeacherName, choices, deep_merge,
                            literal_fields, preset)

from .protocol import ProtocolError, get_field

DEFAULT_PRESET = "balanced"
SEMANTIC_TEACHERS = choices(SemanticTeacherName)
DEPTH_TEACHERS = choices(DepthTeacherName)
# every Literal-typed config field (aligngs.config: mode, poses, split, teachers, device, KL norm, ...) -> its choices
CHOICES: dict[str, tuple[str, ...]] = literal_fields(PipelineConfig, "config")
MINIMUM: dict[str, int] = {"config.train.iterations": 1, "config.data.resolution": 16}

_FIELD_RE = re.compile(r"^(config(?:\.[A-Za-z0-9_]+)*)\s*:")
_UNKNOWN_RE = re.compile(r"unknown field '([^']+)'")


def resolve_settings(h: dict, *, cuda_available: bool) -> PipelineConfig:
    """The PipelineConfig a submit header asks for (``config``, or ``preset`` + ``overrides``)."""
    name = get_field(h, "preset", "str")
    overrides = get_field(h, "overrides", "object")
    config = get_field(h, "config", "object")
    if config is not None and (name is not None or overrides is not None):
        raise ProtocolError("malformed", "give either 'config' or 'preset' (+ 'overrides'), not both", field="config")
    if config is None:
        name = name or DEFAULT_PRESET
        if name not in PRESETS:
            raise ProtocolError("invalid_settings", f"unknown preset {name!r} (known: {', '.join(PRESETS)})", field="preset")
        raw = deep_merge(PRESETS[name], overrides or {})
    else:
        raw = config
    _check_raw(PipelineConfig, raw, "config")
    try:
        cfg = PipelineConfig.from_dict(raw) if config is not None else preset(name, overrides)
    except (ValueError, TypeError) as e:
        raise ProtocolError("invalid_settings", str(e)[:500], field=_field_of(str(e))) from None
    _check_values(cfg, cuda_available=cuda_available)
    return cfg


def _field_of(message: str) -> str:
    m = _FIELD_RE.match(message)
    if not m:
        return "config"
    where = m.group(1)
    u = _UNKNOWN_RE.search(message)
    return f"{where}.{u.group(1)}" if u else where


def _check_raw(cls, d: Any, where: str) -> None:
    """Type checks from_dict leaves out: nullable fields and fixed-length tuples."""
    if not isinstance(d, dict):
        raise ProtocolError("invalid_settings", f"{where}: expected an object, got {type(d).__name__}", field=where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in d.items():
        f = fields.get(key)
        if f is None:
            raise ProtocolError(
                "invalid_settings", f"{where}: unknown field {key!r} (known: {', '.join(sorted(fields))})", field=f"{where}.{key}"
            )
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        path = f"{where}.{key}"
        if dataclasses.is_dataclass(default):
            _check_raw(type(default), value, path)
            continue
        _check_annotation(str(f.type), value, path)


def _check_annotation(ann: str, value: Any, path: str) -> None:
    kinds = [k.strip() for k in ann.split("|")]
    if value is None:
        if "None" in kinds:
            return
        raise ProtocolError("invalid_settings", f"{path}: must not be null", field=path)
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    }
    known = [k for k in kinds if k != "None"]
    for k in known:
        if k.startswith("tuple["):
            n = len(k[len("tuple["):-1].split(","))
            if isinstance(value, list) and len(value) == n and all(checks["float"](x) for x in value):
                return
        elif k in checks:
            if checks[k](value):
                return
        else:
            return  # an annotation this module does not know: leave it to from_dict
    raise ProtocolError("invalid_settings", f"{path}: expected {ann.replace('None', 'null')}, got {_short(value)}", field=path)


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _get(cfg: PipelineConfig, path: str) -> Any:
    obj: Any = cfg
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _check_values(cfg: PipelineConfig, *, cuda_available: bool) -> None:
    for path, allowed in CHOICES.items():
        value = _get(cfg, path)
        if value not in allowed:
            raise ProtocolError("invalid_settings", f"{path}: {value!r} is not one of {', '.join(allowed)}", field=path)
    for path, low in MINIMUM.items():
        value = _get(cfg, path)
        if value is not None and value < low:
            raise ProtocolError("invalid_settings", f"{path}: must be >= {low}, got {value}", field=path)
    if cfg.train.device == "cuda" and not cuda_available:
        raise ProtocolError("invalid_settings", "config.train.device: 'cuda' requested but this server has no CUDA workers", field="config.train.device")
