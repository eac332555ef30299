"""Properties: add-on preferences (server, CURVE keys) and per-scene settings/results (saved in the .blend)."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

from . import classes
from .settings import AlignGSSetting, get_setting, set_setting, sync_settings

_preset_items_cache: list = []  # Blender needs the strings of dynamic enum items kept alive


def _server_info():
    from .runtime import current_session

    session = current_session()
    return session.info if session is not None else None


def preset_items(self, context):
    """The server's presets (welcome.presets); before the server has answered, just the chosen one."""
    info = _server_info()
    names = list(info.presets) if info is not None and info.presets else []
    current = self.preset or (info.default_preset if info is not None else "")
    if current and current not in names:
        names.append(current)
    items = []
    for n in names:
        over = info.presets.get(n, {}) if info is not None else {}
        it = (over.get("train") or {}).get("iterations")
        res = (over.get("data") or {}).get("resolution")
        what = ", ".join(x for x in (f"{it} iterations" if it else "", f"{res} px" if res else "") if x)
        items.append((n, n.capitalize(), f"The server's {n!r} preset" + (f" ({what})" if what else "")))
    if not items:
        items = [("", "Server default", "The server's default preset (connect to list its presets)")]
    _preset_items_cache[:] = items
    return items


def _get_preset_choice(self):
    items = preset_items(self, None)
    info = _server_info()
    current = self.preset or (info.default_preset if info is not None else "")
    return next((i for i, it in enumerate(items) if it[0] == current), 0)


def _set_preset_choice(self, index):
    items = preset_items(self, None)
    if 0 <= index < len(items):
        self.preset = items[index][0]


def _on_preset(self, context):
    info = _server_info()
    if info is not None:
        sync_settings(self, info)


def _get_iterations(self):
    return int(get_setting(self, "train.iterations", 0) or 0)


def _set_iterations(self, value):
    set_setting(self, "train.iterations", int(value))


def _get_resolution(self):
    return int(get_setting(self, "data.resolution", 0) or 0)


def _set_resolution(self, value):
    set_setting(self, "data.resolution", None if int(value) == 0 else int(value))


ADDON_PACKAGE = __package__.rpartition(".")[0]  # the add-on's package (this module lives in its blender/)


def addon_package() -> str:
    return ADDON_PACKAGE


class AlignGSPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    address: StringProperty(
        name="Server", default="localhost:5555",
        description="AlignGS server as host:port (tcp:// and http:// prefixes and spaces are ignored)")
    timeout_s: FloatProperty(name="Timeout", default=5.0, min=0.5, max=120.0, subtype="TIME_ABSOLUTE", unit="TIME",
                             description="Seconds without an answer before the server counts as unreachable")
    use_curve: BoolProperty(name="Encrypt (CURVE)", default=False,
                            description="Use ZeroMQ CURVE encryption and authentication (needed for remote servers)")
    server_key_file: StringProperty(name="Server Public Key File", subtype="FILE_PATH",
                                    description="The server's server.key (public key certificate)")
    client_key_file: StringProperty(name="Client Key File", subtype="FILE_PATH",
                                    description="This client's *.key_secret certificate (its key pair)")
    server_public_key: StringProperty(name="Server Public Key", description="40 Z85 characters (instead of a file)")
    client_public_key: StringProperty(name="Client Public Key", description="40 Z85 characters (instead of a file)")
    client_secret_key: StringProperty(name="Client Secret Key", subtype="PASSWORD",
                                      description="40 Z85 characters (instead of a file)")
    splat_dir: StringProperty(
        name="Also Save the Gaussian Splat PLY to", subtype="DIR_PATH",
        description="When set, the server also sends the 3DGS PLY of each job and it is saved in this folder "
                    "(Blender has no Gaussian-splat type; empty = the server leaves it out of the result)")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "address")
        layout.prop(self, "timeout_s")
        layout.prop(self, "use_curve")
        col = layout.column()
        col.active = self.use_curve
        col.prop(self, "server_key_file")
        col.prop(self, "client_key_file")
        col.separator()
        col.label(text="Or paste the keys:")
        col.prop(self, "server_public_key")
        col.prop(self, "client_public_key")
        col.prop(self, "client_secret_key")
        layout.prop(self, "splat_dir")


class AlignGSInstance(bpy.types.PropertyGroup):
    # ``name`` (from PropertyGroup) is the instance name ("chair_0").
    instance: IntProperty(name="Instance")
    collection: PointerProperty(type=bpy.types.Collection)
    visible: BoolProperty(name="Visible", default=True, update=classes.on_visible_changed,
                          description="Show or hide this object (its collection)")


class AlignGSClass(bpy.types.PropertyGroup):
    # ``name`` (from PropertyGroup) is the class name.
    class_id: IntProperty(name="Class ID")
    color: FloatVectorProperty(name="Color", subtype="COLOR_GAMMA", size=3, min=0.0, max=1.0,
                               update=classes.on_color_changed,
                               description="Class colour (also the objects' viewport colour)")
    n_points: IntProperty(name="Points")
    n_faces: IntProperty(name="Faces")
    instances: IntProperty(name="Instances")
    collection: PointerProperty(type=bpy.types.Collection)
    visible: BoolProperty(name="Visible", default=True, update=classes.on_visible_changed,
                          description="Show or hide this class's collection")
    # one entry per named instance (objects from the identity encodings), each with its own toggle
    instance_items: CollectionProperty(type=AlignGSInstance)
    active_instance: IntProperty(name="Active Instance", default=0)


def _on_show_preview(self, context):
    from . import preview

    if not self.show_preview:
        preview.remove(self.id_data)


def _on_preview_color(self, context):
    from . import preview

    obj = preview.find(self.id_data)
    if obj is not None:
        preview.set_color_mode(obj, self.preview_color)


class AlignGSSceneSettings(bpy.types.PropertyGroup):
    image_dir: StringProperty(name="Images", subtype="DIR_PATH",
                              description="Folder of photos (may also hold transforms.json / COLMAP / pose files)")
    preset: StringProperty(name="Preset", default="", update=_on_preset,
                           description="The server's preset the job starts from ('' = the server's default)")
    preset_choice: EnumProperty(name="Quality", items=preset_items, get=_get_preset_choice, set=_set_preset_choice,
                                description="Start from one of the server's presets")
    use_advanced: BoolProperty(name="Advanced", default=False,
                               description="Send the settings below on top of the quality preset")
    settings: CollectionProperty(type=AlignGSSetting,
                                 description="Every pipeline setting the server reported, with the preset's values")
    iterations: IntProperty(name="Iterations", min=1, soft_max=30000, get=_get_iterations, set=_set_iterations,
                            description="Training iterations (the train.iterations setting)")
    resolution: IntProperty(name="Resolution", min=0, soft_max=4096, subtype="PIXEL", get=_get_resolution,
                            set=_set_resolution,
                            description="Longest image side used for training, 0 = native (the data.resolution setting)")
    # persistent job link (re-attach after a restart)
    job_id: StringProperty(name="Job", description="Server job whose result belongs to this scene")
    job_address: StringProperty(name="Job Server")
    job_name: StringProperty(name="Job Name")
    job_state: StringProperty(name="Job State")
    # live preview while the job trains (one point object, removed when the result lands)
    show_preview: BoolProperty(name="Live Preview", default=True, update=_on_show_preview,
                               description="Show the Gaussians as points while the scene trains")
    preview_color: EnumProperty(name="Preview Colours", default="RGB", update=_on_preview_color,
                                items=(("RGB", "RGB", "The Gaussians' own colours"),
                                       ("CLASS", "Classes", "The colour of each point's current ADE20K class")),
                                description="Colour the live preview by RGB or by class")
    # results
    root: PointerProperty(type=bpy.types.Collection, name="Result Collection")
    classes: CollectionProperty(type=AlignGSClass)
    active_class: IntProperty(name="Active Class", default=0)
    result_dir: StringProperty(name="Result Folder", subtype="DIR_PATH",
                               description="A result folder (manifest.json + .npy) to import without a server")


CLASSES = (AlignGSPreferences, AlignGSInstance, AlignGSClass, AlignGSSetting, AlignGSSceneSettings)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register():
    _register_classes()
    bpy.types.Scene.aligngs = PointerProperty(type=AlignGSSceneSettings)


def unregister():
    del bpy.types.Scene.aligngs
    _unregister_classes()


def preferences(context=None):
    """This add-on's preferences, or None when it is not enabled (e.g. when imported as a plain package)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None
