"""Build a :class:`~tools.synth.specs.RoomLayout` in Blender (bpy) and render views with Cycles (CPU).

Only this module imports bpy. Render set-up, chosen so the label passes are exact:

* Pixel filter: BOX, width 0.01 px (Cycles' minimum). Cycles writes the Z / Object Index / Material Index
  passes by overwriting (last sample wins, never averaged), but with a wide filter each sample's ray is
  jittered across neighbouring pixels, so labels/depth would come from one random sub-pixel ray. With the
  0.01 px box every sample of a pixel goes through its centre: RGB, depth and labels are the same ray,
  the pinhole model at (i + 0.5, j + 0.5). RGB is therefore not anti-aliased (like a pinhole renderer).
* Object index (``Object.pass_index``) = instance id; material index (``Material.pass_index``) =
  ADE20K class id + 1 (every object has its own materials); 0 = no hit. The objects also carry the custom
  properties ``aligngs_instance_id`` and ``aligngs_ade20k_class_id``.
* Z pass = planar depth along the camera axis (not ray length); 1e10 where no surface is hit.
* ``scene.cycles.seed`` = the scene seed, adaptive sampling off, fixed bounce limits: same seed, same noise.
* RGB: the linear Combined pass through the sRGB OETF (Blender's "Standard" view transform), written
  by OpenImageIO without render metadata (no dates or host names in the files).

The window pane is opaque to camera rays (it shows an emissive sky texture and is labelled windowpane) and
transparent to every other ray, so the world light enters the room through the window.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

import bpy
import mathutils

from tools.synth.camera import Intrinsics
from tools.synth.specs import MaterialSpec, RoomLayout

log = logging.getLogger(__name__)

__all__ = ["build_scene", "render_view", "read_passes", "linear_to_srgb8", "write_png", "oiio"]


def _import_oiio():
    try:
        import OpenImageIO  # noqa: F401
    except ImportError:
        pyver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        site = Path(bpy.utils.resource_path("LOCAL")) / "python" / "lib" / pyver / "site-packages"
        if not site.is_dir():
            raise ImportError(f"OpenImageIO not importable and the bpy wheel has no bundled copy at {site}")
        sys.path.append(str(site))
    import OpenImageIO

    return OpenImageIO


oiio = _import_oiio()


# ------------------------------------------------------------------------------------------------ materials

def _out(node, *names):
    for n in names:
        if n in node.outputs:
            return node.outputs[n]
    raise KeyError(f"{node.bl_idname}: none of the outputs {names}")


def _ramp(nt, fac_socket, a, b, lo=0.3, hi=0.7):
    r = nt.nodes.new("ShaderNodeValToRGB")
    el = r.color_ramp.elements
    el[0].position, el[1].position = lo, hi
    el[0].color = (*a, 1.0)
    el[1].color = (*b, 1.0)
    nt.links.new(fac_socket, r.inputs[0])
    return r.outputs["Color"]


def _math(nt, op, x, y, z=None):
    m = nt.nodes.new("ShaderNodeMath")
    m.operation = op
    for k, v in enumerate((x, y, z)):
        if v is None:
            continue
        if isinstance(v, (int, float)):
            m.inputs[k].default_value = float(v)
        else:
            nt.links.new(v, m.inputs[k])
    return m.outputs[0]


def _mul_rgb(nt, c1, c2):
    m = nt.nodes.new("ShaderNodeMix")
    m.data_type = "RGBA"
    m.blend_type = "MULTIPLY"
    m.inputs[0].default_value = 1.0
    nt.links.new(c1, m.inputs[6])
    nt.links.new(c2, m.inputs[7])
    return m.outputs[2]


def _noise(nt, vec, scale, detail=3.0, rough=0.6):
    n = nt.nodes.new("ShaderNodeTexNoise")
    n.noise_dimensions = "2D"  # UVs are planar metric coordinates; 2-D noise is cheaper
    n.inputs["Scale"].default_value = scale
    n.inputs["Detail"].default_value = detail
    n.inputs["Roughness"].default_value = rough
    nt.links.new(vec, n.inputs["Vector"])
    return _out(n, "Factor", "Fac")


def _wave(nt, vec, scale, distortion, detail=2.0, rings=False, direction="X"):
    w = nt.nodes.new("ShaderNodeTexWave")
    w.wave_type = "RINGS" if rings else "BANDS"
    if rings:
        w.rings_direction = "SPHERICAL"
    else:
        w.bands_direction = direction
    w.inputs["Scale"].default_value = scale
    w.inputs["Distortion"].default_value = distortion
    w.inputs["Detail"].default_value = detail
    nt.links.new(vec, w.inputs["Vector"])
    return _out(w, "Factor", "Fac")


def _grey(x):
    return (x, x, x)


def _base_color(nt, spec: MaterialSpec, uv):
    a, b, s, p = spec.color_a, spec.color_b, spec.scale, spec.pattern
    if p in ("plaster", "fabric", "metal", "shade", "sky"):
        fine = _noise(nt, uv, s, 4.0, 0.6)
        coarse = _noise(nt, uv, s * 0.25, 2.0, 0.5)
        fac = _math(nt, "MULTIPLY_ADD", fine, 0.65, _math(nt, "MULTIPLY", coarse, 0.35))
        return _ramp(nt, fac, b, a, 0.32, 0.68)
    if p == "wallpaper":
        wave = _wave(nt, uv, s, 3.0, 2.0)
        noise = _noise(nt, uv, 12.0, 3.0)
        fac = _math(nt, "MULTIPLY_ADD", wave, 0.6, _math(nt, "MULTIPLY", noise, 0.4))
        return _ramp(nt, fac, b, a, 0.25, 0.75)
    if p == "wood":
        wave = _wave(nt, uv, s, 6.0, 2.0)
        noise = _noise(nt, uv, s * 3.0, 3.0)
        fac = _math(nt, "MULTIPLY_ADD", wave, 0.7, _math(nt, "MULTIPLY", noise, 0.3))
        return _ramp(nt, fac, b, a, 0.2, 0.8)
    if p == "planks":
        br = nt.nodes.new("ShaderNodeTexBrick")
        br.offset, br.offset_frequency = 0.5, 2
        br.squash, br.squash_frequency = 1.0, 1
        br.inputs["Color1"].default_value = (*a, 1.0)
        br.inputs["Color2"].default_value = (*b, 1.0)
        br.inputs["Mortar"].default_value = (*[0.4 * x for x in b], 1.0)
        br.inputs["Scale"].default_value = 1.0
        br.inputs["Mortar Size"].default_value = 0.004
        br.inputs["Bias"].default_value = 0.0
        br.inputs["Brick Width"].default_value = 1.1
        br.inputs["Row Height"].default_value = 0.16
        nt.links.new(uv, br.inputs["Vector"])
        grain = _ramp(nt, _wave(nt, uv, 9.0, 7.0, 2.0), _grey(0.6), _grey(1.0), 0.2, 0.8)
        return _mul_rgb(nt, br.outputs["Color"], grain)
    if p == "tiles":
        ch = nt.nodes.new("ShaderNodeTexChecker")
        ch.inputs["Color1"].default_value = (*a, 1.0)
        ch.inputs["Color2"].default_value = (*b, 1.0)
        ch.inputs["Scale"].default_value = s
        nt.links.new(uv, ch.inputs["Vector"])
        mott = _ramp(nt, _noise(nt, uv, 14.0, 3.0), _grey(0.65), _grey(1.0), 0.3, 0.7)
        return _mul_rgb(nt, ch.outputs["Color"], mott)
    if p == "weave":
        ch = nt.nodes.new("ShaderNodeTexChecker")
        ch.inputs["Color1"].default_value = (*a, 1.0)
        ch.inputs["Color2"].default_value = (*[0.8 * x for x in a], 1.0)
        ch.inputs["Scale"].default_value = s
        nt.links.new(uv, ch.inputs["Vector"])
        mott = _ramp(nt, _noise(nt, uv, 6.0, 3.0), _grey(0.55), _grey(1.0), 0.3, 0.7)
        return _mul_rgb(nt, ch.outputs["Color"], mott)
    if p == "canvas":
        wave = _wave(nt, uv, s, 8.0, 2.0, rings=True)
        noise = _noise(nt, uv, s * 4.0, 3.0)
        fac = _math(nt, "MULTIPLY_ADD", wave, 0.6, _math(nt, "MULTIPLY", noise, 0.4))
        return _ramp(nt, fac, a, b, 0.2, 0.8)
    raise ValueError(f"unknown material pattern {p!r}")


def _material(name: str, spec: MaterialSpec, pass_index: int):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            mat.use_nodes = True
    mat.pass_index = int(pass_index)
    nt = mat.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    tc = nt.nodes.new("ShaderNodeTexCoord")
    uv = tc.outputs["UV"]
    color = _base_color(nt, spec, uv)
    if spec.pattern == "sky":
        em = nt.nodes.new("ShaderNodeEmission")
        em.inputs["Strength"].default_value = spec.emission
        nt.links.new(color, em.inputs["Color"])
        shader = em.outputs[0]
        if spec.camera_only:
            tr = nt.nodes.new("ShaderNodeBsdfTransparent")
            lp = nt.nodes.new("ShaderNodeLightPath")
            mix = nt.nodes.new("ShaderNodeMixShader")
            nt.links.new(lp.outputs["Is Camera Ray"], mix.inputs[0])
            nt.links.new(tr.outputs[0], mix.inputs[1])
            nt.links.new(shader, mix.inputs[2])
            shader = mix.outputs[0]
        nt.links.new(shader, out.inputs["Surface"])
        return mat
    bsdf = nt.nodes.new("ShaderNodeBsdfPrincipled")
    nt.links.new(color, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = spec.roughness
    bsdf.inputs["Specular IOR Level"].default_value = 0.3
    if spec.pattern == "metal":
        bsdf.inputs["Metallic"].default_value = 0.5
    if spec.emission > 0:
        nt.links.new(color, bsdf.inputs["Emission Color"])
        bsdf.inputs["Emission Strength"].default_value = spec.emission
    nt.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


# ---------------------------------------------------------------------------------------------------- scene

def _mesh_object(name: str, mesh, materials, pass_index: int, class_index: int):
    me = bpy.data.meshes.new(name)
    me.from_pydata(mesh.vertices.tolist(), [], mesh.faces.tolist())
    uv = me.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", mesh.uvs.reshape(-1).astype(np.float32))
    for k, spec in enumerate(materials):
        me.materials.append(_material(f"{name}_{k}", spec, class_index))
    me.polygons.foreach_set("material_index", mesh.slots.astype(np.int32))
    me.update()
    ob = bpy.data.objects.new(name, me)
    ob.pass_index = int(pass_index)
    ob["aligngs_instance_id"] = int(pass_index)
    ob["aligngs_ade20k_class_id"] = int(class_index) - 1
    bpy.context.scene.collection.objects.link(ob)
    return ob


def build_scene(layout: RoomLayout, intr: Intrinsics, samples: int, seed: int, denoise: bool = True,
                threads: int = 0):
    """Reset Blender and build the room, lights, camera and Cycles settings. Returns the scene."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    for o in layout.objects:
        _mesh_object(o.name, o.mesh, o.materials, o.instance_id, o.class_id + 1)
    for li in layout.lights:
        ld = bpy.data.lights.new(li.name, type=li.kind)
        ld.energy = li.power
        ld.color = li.color
        if li.kind == "AREA":
            ld.shape = "SQUARE"
            ld.size = li.size
        else:
            ld.shadow_soft_size = li.size
        lo = bpy.data.objects.new(li.name, ld)
        lo.location = li.location
        lo.visible_camera = False
        sc.collection.objects.link(lo)
    world = bpy.data.worlds.new("sky")
    if world.node_tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            world.use_nodes = True
    bg = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
    bg.inputs["Color"].default_value = (*layout.world_color, 1.0)
    bg.inputs["Strength"].default_value = layout.world_strength
    wout = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
    if not bg.outputs[0].links:
        world.node_tree.links.new(bg.outputs[0], wout.inputs["Surface"])
    sc.world = world

    cam = bpy.data.cameras.new("camera")
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = intr.sensor_width_mm
    cam.lens = intr.lens_mm
    cam.shift_x = (intr.w / 2.0 - intr.cx) / intr.w
    cam.shift_y = (intr.cy - intr.h / 2.0) / intr.w
    cam.clip_start, cam.clip_end = 0.05, 100.0
    co = bpy.data.objects.new("camera", cam)
    sc.collection.objects.link(co)
    sc.camera = co

    r = sc.render
    r.engine = "CYCLES"
    r.resolution_x, r.resolution_y, r.resolution_percentage = intr.w, intr.h, 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.film_transparent = False
    r.dither_intensity = 0.0
    r.use_persistent_data = True
    if threads > 0:
        r.threads_mode, r.threads = "FIXED", int(threads)
    else:
        r.threads_mode = "AUTO"
    cy = sc.cycles
    cy.device = "CPU"
    cy.samples = int(samples)
    cy.use_adaptive_sampling = False
    cy.seed = int(seed) % (2**31)
    cy.use_animated_seed = False
    cy.pixel_filter_type = "BOX"
    cy.filter_width = 0.01
    cy.max_bounces, cy.diffuse_bounces, cy.glossy_bounces = 4, 3, 2
    cy.transmission_bounces, cy.transparent_max_bounces, cy.volume_bounces = 2, 4, 0
    cy.caustics_reflective = cy.caustics_refractive = False
    cy.sample_clamp_indirect = 10.0
    cy.use_guiding = False
    cy.use_denoising = bool(denoise)
    if denoise:
        cy.denoiser = "OPENIMAGEDENOISE"
        cy.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        cy.denoising_prefilter = "ACCURATE"
        cy.denoising_use_gpu = False
    vs = sc.view_settings
    vs.view_transform, vs.look, vs.exposure, vs.gamma = "Standard", "None", 0.0, 1.0
    vl = sc.view_layers[0]
    vl.use_pass_z = True
    vl.use_pass_object_index = True
    vl.use_pass_material_index = True
    return sc


def render_view(scene, c2w_gl: np.ndarray, exr_path: Path) -> None:
    """Render one view to a float32 multilayer EXR (Combined, Depth, Object Index, Material Index)."""
    cam = scene.camera
    m = mathutils.Matrix([list(map(float, row)) for row in np.asarray(c2w_gl, dtype=np.float64)])  # rows
    cam.matrix_world = m
    bpy.context.view_layer.update()
    got = np.array(cam.matrix_world)
    if not np.allclose(got, c2w_gl, atol=1e-5):
        raise RuntimeError(f"camera matrix_world did not take the pose (max error {np.abs(got - c2w_gl).max():.2e})")
    bpy.ops.render.render()
    ims = scene.render.image_settings
    ims.media_type = "MULTI_LAYER_IMAGE"
    ims.file_format = "OPEN_EXR_MULTILAYER"
    ims.color_depth = "32"
    ims.exr_codec = "ZIP"
    bpy.data.images["Render Result"].save_render(str(exr_path), scene=scene)


def linear_to_srgb8(rgb: np.ndarray) -> np.ndarray:
    """Blender's "Standard" view transform for an sRGB display: clip to [0, 1], sRGB OETF, round to 8 bits."""
    x = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.rint(y * 255.0).astype(np.uint8)


def read_passes(exr_path: Path) -> dict[str, np.ndarray]:
    """{'rgb' [H,W,3] linear, 'depth', 'object_index', 'material_index' [H,W]} float32 from render_view's EXR."""
    want = {"Combined.R": "r", "Combined.G": "g", "Combined.B": "b", "Depth.Z": "depth",
            "Object Index.X": "object_index", "Material Index.X": "material_index"}
    out: dict[str, np.ndarray] = {}
    inp = oiio.ImageInput.open(str(exr_path))
    if inp is None:
        raise OSError(f"cannot open {exr_path}: {oiio.geterror()}")
    try:
        sub = 0
        while inp.seek_subimage(sub, 0):
            names = inp.spec().channelnames
            for ci, cname in enumerate(names):
                for suffix, key in want.items():
                    if cname.endswith("." + suffix):
                        px = inp.read_image(sub, 0, ci, ci + 1, oiio.FLOAT)
                        out[key] = np.asarray(px, dtype=np.float32).reshape(px.shape[0], px.shape[1])
            sub += 1
    finally:
        inp.close()
    missing = set(want.values()) - set(out)
    if missing:
        raise ValueError(f"{exr_path}: missing passes {sorted(missing)}")
    out["rgb"] = np.stack([out.pop("r"), out.pop("g"), out.pop("b")], -1)
    return out


def write_png(path: Path, arr: np.ndarray) -> None:
    """Single-channel uint8/uint16 or 3-channel uint8 PNG via the bundled OpenImageIO (max compression)."""
    arr = np.ascontiguousarray(arr)
    fmt = {np.dtype(np.uint8): oiio.UINT8, np.dtype(np.uint16): oiio.UINT16}.get(arr.dtype)
    if fmt is None:
        raise TypeError(f"write_png({path}): dtype must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]  # OIIO's python binding reads a 2-D array as [W, H]; give it [H, W, C]
    h, w, ch = arr.shape
    spec = oiio.ImageSpec(w, h, ch, fmt)
    spec.attribute("png:compressionLevel", 9)
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec):
        raise OSError(f"cannot write {path}: {oiio.geterror()}")
    try:
        if not out.write_image(arr):
            raise OSError(f"cannot write {path}: {out.geterror()}")
    finally:
        out.close()


def quiet_blender() -> None:
    """Silence Cycles' per-tile console chatter (it prints via C stdout)."""
    os.environ.setdefault("CYCLES_LOG_LEVEL", "0")
