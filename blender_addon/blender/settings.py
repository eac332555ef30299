"""The Advanced settings in Blender: one ``AlignGSSetting`` item per configuration field the server reported
(``core.settings`` builds the schema from ``welcome.defaults`` / ``welcome.presets``), kept in sync with the chosen
preset, and turned into a submit's ``overrides``."""
from __future__ import annotations

import json

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core import settings as core

_VALUE_PROP = {"bool": "bool_value", "int": "int_value", "float": "float_value", "str": "str_value",
               "json": "str_value"}


_choice_items_cache: dict = {}  # Blender needs the strings of dynamic enum items kept alive


def setting_choices(item) -> list[str]:
    """The names the server allows for this setting ([] = free text or not a name)."""
    from .runtime import current_session

    session = current_session()
    info = session.info if session is not None else None
    return list((getattr(info, "choices", None) or {}).get(item.name, []))


def _choice_items(self, context):
    names = setting_choices(self)
    if self.str_value and self.str_value not in names:
        names.append(self.str_value)
    items = [(n, n, "") for n in names] or [("", "(none)", "")]
    _choice_items_cache[self.name] = items
    return items


def _get_choice(self):
    names = [it[0] for it in _choice_items(self, None)]
    return names.index(self.str_value) if self.str_value in names else 0


def _set_choice(self, index):
    names = [it[0] for it in _choice_items(self, None)]
    if 0 <= index < len(names):
        self.str_value = names[index]


class AlignGSSetting(bpy.types.PropertyGroup):
    # ``name`` (from PropertyGroup) is the dotted path, e.g. "train.loss.depth_pearson".
    kind: StringProperty(name="Kind", default="json")
    group: StringProperty(name="Group")
    default_text: StringProperty(name="Default", default=core.UNKNOWN)  # JSON of the preset's value
    bool_value: BoolProperty(name="Value")
    int_value: IntProperty(name="Value")
    float_value: FloatProperty(name="Value", precision=4)
    str_value: StringProperty(name="Value", description="Text; for lists and null defaults: JSON ('' = null)")
    choice: EnumProperty(name="Value", items=_choice_items, get=_get_choice, set=_set_choice,
                         description="One of the names the server allows")


def value_prop(item) -> str:
    return _VALUE_PROP.get(item.kind, "str_value")


def draw_prop(item) -> str:
    """The property the panel draws: a drop-down for settings with known names, else the value itself."""
    return "choice" if item.kind == "str" and setting_choices(item) else value_prop(item)


def raw_value(item):
    return getattr(item, value_prop(item))


def default(item):
    """The preset's value in the item's own representation (json settings: their text)."""
    if item.default_text == core.UNKNOWN:
        return core.UNKNOWN
    try:
        value = json.loads(item.default_text)
    except ValueError:
        return core.UNKNOWN
    return core.to_text(value) if item.kind == "json" else value


def is_changed(item) -> bool:
    return not core.same(item.kind, raw_value(item), default(item))


def _store(item, kind: str, value) -> None:
    item.kind = kind
    if kind == "json" and not isinstance(value, str):
        value = core.to_text(value)
    setattr(item, value_prop(item), value)


def get_setting(st, path: str, fallback=None):
    """A setting's value as the server would get it (json parsed), or ``fallback`` when there is none."""
    item = st.settings.get(path)
    if item is None:
        return fallback
    try:
        return core.wire_value(item.kind, raw_value(item), path)
    except ValueError:
        return fallback


def set_setting(st, path: str, value) -> None:
    """Set a setting by path (made, with an unknown default, when the server has not been heard yet)."""
    item = st.settings.get(path)
    if item is None:
        item = st.settings.add()
        item.name, item.group = path, path.rpartition(".")[0] or "general"
        item.kind = core.kind_of(value) if value is not None else "json"
    kind = item.kind
    if kind == "int" and isinstance(value, float) and not value.is_integer():
        kind = "float"
    if value is None and kind != "json":
        kind = "json"
    _store(item, kind, value)


def sync_settings(st, info) -> None:
    """Make ``st.settings`` list the server's configuration with the chosen preset's values as defaults; settings
    the user left at their default follow the new default, changed ones keep their value."""
    if not getattr(info, "defaults", None):
        return
    for s in core.schema(info.defaults, info.presets, st.preset or info.default_preset):
        item = st.settings.get(s.path)
        new_default = s.default if s.kind != "json" else core.from_text(s.default, s.path)
        if item is None:
            item = st.settings.add()
            item.name, item.group = s.path, s.group
            _store(item, s.kind, s.default)
        else:
            untouched = not is_changed(item)
            if item.kind != s.kind and not untouched:  # made before the server said what it is
                try:
                    current = core.wire_value(item.kind, raw_value(item), s.path)
                except ValueError:
                    current = None
                if current is None:
                    _store(item, "json", None)  # null stays null (a field like data.resolution may be null)
                else:
                    _store(item, s.kind, core.to_text(current) if s.kind == "json" else _cast(s.kind, current, s.default))
            if untouched:
                _store(item, s.kind, s.default)
            item.group = s.group
        item.default_text = json.dumps(new_default)


def _cast(kind: str, value, fallback):
    try:
        return {"bool": bool, "int": int, "float": float, "str": str}[kind](value)
    except (TypeError, ValueError, KeyError):
        return fallback


def overrides_from_settings(st) -> dict:
    """The ``overrides`` object a submit carries: every setting that differs from the preset ({} when Advanced is
    off). ValueError names a setting whose text is not valid JSON."""
    if not st.use_advanced:
        return {}
    flat = {item.name: core.wire_value(item.kind, raw_value(item), item.name)
            for item in st.settings if is_changed(item)}
    return core.nest(flat)


def reset_settings(st, info=None) -> None:
    """Every setting back to the preset's value."""
    for item in st.settings:
        d = default(item)
        if d is not core.UNKNOWN:
            _store(item, item.kind, d)


def groups(st) -> list[tuple[str, list]]:
    """[(group, [items])] in the order the groups first appear."""
    out: dict[str, list] = {}
    for item in st.settings:
        out.setdefault(item.group or "general", []).append(item)
    return list(out.items())
