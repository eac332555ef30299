"""The Advanced settings, built from what the server says (pure Python).

The server's ``welcome`` carries ``defaults`` (its full pipeline configuration, nested objects) and ``presets``
(name -> overrides on top of the defaults). Every leaf of the configuration becomes one setting: a dotted ``path``
(``train.loss.depth_pearson``), its ``group`` (the path without the last key, so the panel groups settings as the
configuration nests them), a ``kind`` (``bool``, ``int``, ``float``, ``str``, or ``json`` for lists and values whose
default is null) and the preset's value as default. A submit's ``overrides`` are the settings whose value differs
from that default. Nothing here is a copy of the server's configuration.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError

KINDS = ("bool", "int", "float", "str", "json")
UNKNOWN = "?unknown"  # default of a setting made before the server said anything (never valid JSON: always sent)


@dataclass
class Setting:
    path: str
    kind: str
    default: Any  # the preset's value (json text for kind 'json')

    @property
    def group(self) -> str:
        return self.path.rpartition(".")[0] or "general"

    @property
    def key(self) -> str:
        return self.path.rpartition(".")[2]


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged onto ``base`` key by key (nested objects merge, other values replace), as the server does."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def leaves(config: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every non-object value, in the configuration's order."""
    out = []
    for k, v in config.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(leaves(v, path + "."))
        else:
            out.append((path, v))
    return out


def kind_of(value: Any, other_values=()) -> str:
    """The setting kind for a default value (a float in any preset makes an int-looking field a float)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "float" if any(isinstance(o, float) for o in other_values) else "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def schema(defaults: dict, presets: dict, preset: str | None) -> list[Setting]:
    """Every setting of the server's configuration, with ``preset``'s values as defaults."""
    chosen = deep_merge(defaults, (presets or {}).get(preset or "", {}) or {})
    others: dict[str, list] = {}
    for over in (presets or {}).values():
        for path, v in leaves(deep_merge(defaults, over or {})):
            others.setdefault(path, []).append(v)
    out = []
    for path, v in leaves(chosen):
        kind = kind_of(v, others.get(path, ()))
        out.append(Setting(path, kind, to_text(v) if kind == "json" else v))
    return out


def to_text(value: Any) -> str:
    """A json setting's text: '' for null, else compact JSON."""
    return "" if value is None else json.dumps(value, separators=(",", ":"))


def from_text(text: str, path: str) -> Any:
    """The value of a json setting's text; ValueError naming the setting when it is not JSON."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if text[:1] in "[{\"" or text.lstrip("-").replace(".", "", 1).isdigit():
            raise SettingsError(f"setting {path}: {text!r} is not a JSON value") from None
        return text  # a bare word: a string value


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def same(kind: str, value: Any, default: Any) -> bool:
    """Whether a stored value equals the default (floats compared at Blender's single precision)."""
    if default is UNKNOWN or isinstance(default, str) and default == UNKNOWN:
        return False
    if kind == "float":
        try:
            return _f32(value) == _f32(default)
        except (TypeError, ValueError):
            return False
    if kind == "json":
        try:
            return from_text(value, "") == from_text(default, "")
        except ValueError:
            return False
    return value == default


def wire_value(kind: str, value: Any, path: str) -> Any:
    """The value a setting sends: floats at the precision Blender stores them (7 digits), json parsed."""
    if kind == "float":
        return float(f"{float(value):.7g}")
    if kind == "json":
        return from_text(value, path)
    return value


def nest(flat: dict[str, Any]) -> dict:
    """{'a.b.c': 1} -> {'a': {'b': {'c': 1}}}."""
    out: dict = {}
    for path, v in flat.items():
        node = out
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = v
    return out


def choices_from_welcome(choices: dict | None, teachers: dict | None) -> dict[str, list[str]]:
    """Dotted path -> allowed names, from ``welcome.choices`` (keys with or without a leading ``config.``) and
    ``welcome.teachers`` (``semantic`` / ``depth``: the two teacher settings)."""
    out: dict[str, list[str]] = {}
    for key, names in (choices or {}).items():
        if isinstance(key, str) and isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
            path = key[len("config."):] if key.startswith("config.") else key.lstrip(".")
            out[path] = list(names)
    for kind, path in (("semantic", "train.semantics.teacher"), ("depth", "train.semantics.depth_teacher")):
        names = (teachers or {}).get(kind)
        if path not in out and isinstance(names, list) and names:
            out[path] = [str(n) for n in names]
    return out
