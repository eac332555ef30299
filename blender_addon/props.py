"""Properties: add-on preferences (server, CURVE keys) and per-scene settings/results (saved in the .blend)."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

from . import classes

PRESETS = [
    ("fast", "Fast", "Quick preview: low resolution, few iterations (minutes on a CPU)"),
    ("balanced", "Balanced", "A few thousand iterations at moderate resolution"),
    ("paper", "Paper", "The reference schedule at full resolution (slow; meant for a GPU server)"),
]
POSE_METHODS = [
    ("auto", "Auto", "Use poses found next to the images, else structure from motion"),
    ("known", "Known", "Poses from transforms.json / COLMAP / *.pose.txt next to the images"),
    ("sfm", "Structure from Motion", "Estimate poses with COLMAP"),
    ("vggt", "VGGT", "Estimate poses with a feed-forward model (needs it on the server)"),
]


def addon_package() -> str:
    return __package__


class AlignGSPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

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


class AlignGSSceneSettings(bpy.types.PropertyGroup):
    image_dir: StringProperty(name="Images", subtype="DIR_PATH",
                              description="Folder of photos (may also hold transforms.json / COLMAP / pose files)")
    preset: EnumProperty(name="Quality", items=PRESETS, default="balanced")
    use_advanced: BoolProperty(name="Advanced", default=False,
                               description="Send the settings below on top of the quality preset")
    iterations: IntProperty(name="Iterations", default=3000, min=1, soft_max=30000)
    resolution: IntProperty(name="Resolution", default=320, min=0, soft_max=4096, subtype="PIXEL",
                            description="Longest image side used for training (0 = native)")
    use_semantics: BoolProperty(name="Semantics", default=True, description="Learn the 150 ADE20K classes")
    use_mesh: BoolProperty(name="Mesh", default=True, description="Extract a mesh (TSDF fusion)")
    pose_method: EnumProperty(name="Poses", items=POSE_METHODS, default="auto")
    # persistent job link (re-attach after a restart)
    job_id: StringProperty(name="Job", description="Server job whose result belongs to this scene")
    job_address: StringProperty(name="Job Server")
    job_name: StringProperty(name="Job Name")
    job_state: StringProperty(name="Job State")
    # results
    root: PointerProperty(type=bpy.types.Collection, name="Result Collection")
    classes: CollectionProperty(type=AlignGSClass)
    active_class: IntProperty(name="Active Class", default=0)
    result_dir: StringProperty(name="Result Folder", subtype="DIR_PATH",
                               description="A result folder (manifest.json + .npy) to import without a server")


CLASSES = (AlignGSPreferences, AlignGSClass, AlignGSSceneSettings)


def register():
    for c in CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Scene.aligngs = PointerProperty(type=AlignGSSceneSettings)


def unregister():
    del bpy.types.Scene.aligngs
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)


def preferences(context=None):
    """This add-on's preferences, or None when it is not enabled (e.g. when imported as a plain package)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def overrides_from_settings(s) -> dict:
    """The ``overrides`` object a submit carries for the advanced settings ({} when they are off)."""
    if not s.use_advanced:
        return {}
    return {
        "data": {"resolution": None if s.resolution == 0 else int(s.resolution), "poses": s.pose_method},
        "train": {"iterations": int(s.iterations), "semantics": {"enabled": bool(s.use_semantics)}},
        "mesh": {"enabled": bool(s.use_mesh)},
    }
