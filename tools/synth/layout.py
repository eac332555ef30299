"""Seeded indoor-room layout in numpy (no bpy): room shell, openings, furniture, materials and lights.

The world frame is Blender's: +z up, metres, the room's floor centre at the origin, the floor at z = 0,
walls at x = +-sx/2 and y = +-sy/2. :func:`make_room` is a pure function of its seed.

Objects carry an ADE20K-150 class id (see :mod:`aligngs.priors.ade20k`) and an instance id (1, 2, ...;
0 is reserved for "no object"). Every object's geometry is one :class:`~tools.synth.geometry.PartMesh`
whose per-face slots index its own material list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aligngs.priors.ade20k import CLASS_NAMES, class_id
from tools.synth.geometry import PartMesh, box, cylinder, merge, quad, rect_xy, wall_with_hole

__all__ = ["MaterialSpec", "ObjectSpec", "LightSpec", "Wall", "RoomLayout", "make_room", "LayoutError"]

STUFF_CLASSES = ("wall", "floor", "ceiling")


class LayoutError(RuntimeError):
    """No valid layout was found for a seed within the attempt budget."""


@dataclass(frozen=True)
class MaterialSpec:
    """A procedural material: ``pattern`` mixes ``color_a``/``color_b`` (linear RGB) at a metric ``scale``."""

    pattern: str  # plaster | wallpaper | planks | tiles | wood | fabric | weave | metal | sky | shade | canvas
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    scale: float = 1.0  # texture features per metre (pattern specific)
    roughness: float = 0.6
    emission: float = 0.0  # emission strength (linear) for sky / lamp shade
    camera_only: bool = False  # opaque to camera rays, transparent to light (the window pane)


@dataclass
class ObjectSpec:
    name: str
    class_id: int
    instance_id: int
    mesh: PartMesh
    materials: list[MaterialSpec]

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    @property
    def stuff(self) -> bool:
        return self.class_name in STUFF_CLASSES


@dataclass(frozen=True)
class LightSpec:
    name: str
    kind: str  # "AREA" | "POINT"
    location: tuple[float, float, float]
    power: float  # watts
    size: float  # area light edge / point light radius (m)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Wall:
    """A wall seen from inside: bottom-left ``origin``, unit ``along`` to the right, unit ``inward``."""

    name: str
    origin: tuple[float, float, float]
    along: tuple[float, float, float]
    inward: tuple[float, float, float]
    length: float

    def point(self, u: float, s: float, z: float = 0.0) -> np.ndarray:
        return np.asarray(self.origin) + np.asarray(self.along) * u + np.asarray(self.inward) * s + np.array([0, 0, z])

    @property
    def yaw(self) -> float:
        """Yaw that turns an object's local +y (its front) to face into the room."""
        ix, iy = self.inward[0], self.inward[1]
        return math.atan2(-ix, iy)


@dataclass
class RoomLayout:
    seed: int
    size: tuple[float, float, float]  # sx, sy, height
    walls: list[Wall]
    objects: list[ObjectSpec]
    lights: list[LightSpec]
    world_color: tuple[float, float, float]
    world_strength: float
    keepout: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0,y0,x1,y1,ztop
    openings: dict = field(default_factory=dict)

    def object_by_instance(self) -> dict[int, ObjectSpec]:
        return {o.instance_id: o for o in self.objects}


# ----------------------------------------------------------------------------------------------- helpers

def _transform(mesh: PartMesh, yaw: float, t) -> PartMesh:
    c, s = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    v = mesh.vertices @ R.T + np.asarray(t, dtype=np.float64)
    return PartMesh(v, mesh.faces.copy(), mesh.uvs.copy(), mesh.slots.copy())


def _jitter(rng: np.random.Generator, rgb, amount: float = 0.08) -> tuple[float, float, float]:
    c = np.clip(np.asarray(rgb, dtype=np.float64) * (1.0 + rng.uniform(-amount, amount, 3)), 0.0, 1.0)
    return tuple(float(x) for x in c)


def _shade(rgb, f: float) -> tuple[float, float, float]:
    return tuple(float(min(1.0, max(0.0, x * f))) for x in rgb)


_WOODS = [(0.30, 0.16, 0.07), (0.45, 0.27, 0.12), (0.20, 0.10, 0.05), (0.55, 0.38, 0.20), (0.36, 0.22, 0.13)]
_FABRICS = [(0.12, 0.22, 0.45), (0.45, 0.10, 0.10), (0.18, 0.35, 0.18), (0.50, 0.42, 0.20), (0.30, 0.30, 0.34),
            (0.55, 0.25, 0.35), (0.10, 0.35, 0.38)]
_WALLS = [(0.70, 0.66, 0.58), (0.62, 0.68, 0.70), (0.72, 0.62, 0.55), (0.60, 0.66, 0.56), (0.74, 0.72, 0.68)]
_METAL = (0.55, 0.55, 0.57)


def _wood(rng, scale=8.0) -> MaterialSpec:
    a = _jitter(rng, _WOODS[rng.integers(len(_WOODS))])
    return MaterialSpec("wood", a, _shade(a, 0.55), scale=scale * rng.uniform(0.8, 1.25), roughness=0.5)


def _fabric(rng, pattern: str | None = None) -> MaterialSpec:
    a = _jitter(rng, _FABRICS[rng.integers(len(_FABRICS))])
    pat = pattern or ("fabric", "weave")[rng.integers(2)]
    return MaterialSpec(pat, a, _shade(a, 0.5), scale=rng.uniform(10.0, 16.0), roughness=0.85)


def _metal(rng) -> MaterialSpec:
    a = _jitter(rng, _METAL)
    return MaterialSpec("metal", a, _shade(a, 0.6), scale=30.0, roughness=0.35)


# ---------------------------------------------------------------------------------------- furniture (local)
# Local frame: footprint centred on the origin, floor at z = 0, back at y = -d/2, front facing +y.

def _legs(w, d, h, t, inset, slot):
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(box((sx * (w / 2 - inset - t / 2), sy * (d / 2 - inset - t / 2), h / 2), (t, t, h),
                             slot=slot, open_faces=("-z",)))
    return parts


def _bed_materials(rng):
    return [_wood(rng), _fabric(rng, "weave"), _fabric(rng, "fabric")]


def _bed(length, width, head_sign):
    parts = _legs(length, width, 0.12, 0.07, 0.02, 0)
    parts.append(box((0, 0, 0.12 + 0.13), (length, width, 0.26), slot=0))
    parts.append(box((0, 0, 0.38 + 0.1), (length - 0.06, width - 0.06, 0.2), slot=1, open_faces=("-z",)))
    bl = 0.62 * length
    parts.append(box((-head_sign * (length / 2 - bl / 2 - 0.01), 0, 0.58 + 0.025), (bl, width - 0.02, 0.05),
                     slot=2, open_faces=("-z",)))
    parts.append(box((head_sign * (length / 2 + 0.03), 0, 0.5), (0.06, width + 0.04, 1.0), slot=0))
    return merge(parts)


def _pillow(rng, head_sign, length):
    m = [_fabric(rng, "weave")]
    return box((head_sign * (length / 2 - 0.3), 0, 0.58 + 0.07), (0.38, 0.62, 0.14), slot=0, open_faces=("-z",)), m


def _cabinet(rng, w, d, h):
    body, front = _wood(rng), _wood(rng)
    mats = [body, MaterialSpec("wood", _shade(front.color_a, 1.2), _shade(front.color_a, 0.7), front.scale, 0.45),
            _metal(rng)]
    parts = [box((0, 0, 0.04), (w - 0.04, d - 0.04, 0.08), slot=0, open_faces=("-z",)),
             box((0, 0, 0.08 + (h - 0.11) / 2), (w, d, h - 0.11), slot=0, open_faces=("-z",)),
             box((0, 0.01, h - 0.015), (w + 0.02, d + 0.02, 0.03), slot=0)]
    gap = 0.006
    dw = (w - 3 * gap) / 2
    for k, sx in enumerate((-1, 1)):
        cx = sx * (gap / 2 + dw / 2)
        parts.append(box((cx, d / 2 + 0.009, 0.08 + (h - 0.11) / 2), (dw, 0.018, h - 0.15), slot=1,
                         open_faces=("-y",)))
        parts.append(box((sx * (gap / 2 + 0.05), d / 2 + 0.03, 0.08 + (h - 0.11) * 0.6), (0.02, 0.025, 0.14),
                         slot=2, open_faces=("-y",)))
    return merge(parts), mats


def _table(rng, w, d, h=0.75):
    mats = [_wood(rng, 10.0), _wood(rng)]
    parts = [box((0, 0, h - 0.02), (w, d, 0.04), slot=0)]
    parts += _legs(w, d, h - 0.04, 0.06, 0.05, 1)
    parts.append(box((0, -d / 2 + 0.06, h - 0.1), (w - 0.2, 0.02, 0.1), slot=1))
    return merge(parts), mats


def _chair(rng, wood: MaterialSpec, seat: MaterialSpec):
    w, d, sh = 0.46, 0.46, 0.46
    parts = _legs(w, d, sh - 0.05, 0.04, 0.01, 0)
    parts.append(box((0, 0, sh - 0.025), (w, d, 0.05), slot=1))
    for sx in (-1, 1):  # back posts
        parts.append(box((sx * (w / 2 - 0.03), -d / 2 + 0.02, sh + 0.22), (0.04, 0.04, 0.44), slot=0))
    parts.append(box((0, -d / 2 + 0.02, sh + 0.32), (w - 0.02, 0.035, 0.2), slot=0))
    return merge(parts), [wood, seat]


def _sofa(rng, w, d=0.88):
    mats = [_fabric(rng, "weave"), None, _wood(rng)]
    mats[1] = MaterialSpec("fabric", _shade(mats[0].color_a, 1.15), _shade(mats[0].color_a, 0.6), 12.0, 0.9)
    arm = 0.18
    parts = _legs(w, d, 0.08, 0.05, 0.04, 2)
    parts.append(box((0, 0.02, 0.08 + 0.17), (w - 2 * arm, d - 0.04, 0.34), slot=0, open_faces=("-z",)))
    n = 3 if w > 1.95 else 2
    cw = (w - 2 * arm) / n
    for k in range(n):
        cx = -w / 2 + arm + cw * (k + 0.5)
        parts.append(box((cx, 0.06, 0.42 + 0.06), (cw - 0.01, d - 0.26, 0.12), slot=1, open_faces=("-z",)))
    parts.append(box((0, -d / 2 + 0.11, 0.08 + 0.37), (w, 0.22, 0.74), slot=0, open_faces=("-z",)))
    for sx in (-1, 1):
        parts.append(box((sx * (w / 2 - arm / 2), 0.0, 0.08 + 0.27), (arm, d, 0.54), slot=0, open_faces=("-z",)))
    return merge(parts), mats


def _shelf(rng, w, d, h, n_boards):
    mats = [_wood(rng), MaterialSpec("wood", (0.65, 0.60, 0.52), (0.45, 0.40, 0.33), 6.0, 0.7)]
    t = 0.025
    parts = [box((-w / 2 + t / 2, 0, h / 2), (t, d, h), slot=0, open_faces=("-z",)),
             box((w / 2 - t / 2, 0, h / 2), (t, d, h), slot=0, open_faces=("-z",)),
             box((0, -d / 2 + 0.005, h / 2), (w - 2 * t, 0.01, h), slot=1)]
    zs = np.linspace(0.06, h - t / 2, n_boards + 1)
    for z in zs:
        parts.append(box((0, 0.005, z), (w - 2 * t, d - 0.01, t), slot=0))
    return merge(parts), mats, [float(z) for z in zs]


def _books(rng, w, d, board_zs, board_t=0.025):
    colors = [(0.55, 0.08, 0.06), (0.06, 0.2, 0.5), (0.1, 0.4, 0.15), (0.6, 0.5, 0.1), (0.35, 0.1, 0.4),
              (0.7, 0.65, 0.55)]
    mats = [MaterialSpec("canvas", _jitter(rng, c), _shade(c, 0.55), 40.0, 0.7) for c in colors]
    parts = []
    for zb, zt in zip(board_zs[:-1], board_zs[1:]):
        if rng.random() < 0.2:
            continue
        x = -w / 2 + 0.04
        x_end = w / 2 - 0.04 - rng.uniform(0.0, 0.35 * w)
        clear = zt - zb - board_t - 0.02
        while True:
            bw = rng.uniform(0.025, 0.06)
            if x + bw > x_end:
                break
            bh = min(clear, rng.uniform(0.17, 0.28))
            bd = min(d - 0.05, rng.uniform(0.15, 0.22))
            parts.append(box((x + bw / 2, -d / 2 + 0.015 + bd / 2, zb + board_t / 2 + bh / 2), (bw, bd, bh),
                             slot=int(rng.integers(len(mats))), open_faces=("-z",)))
            x += bw + rng.uniform(0.0, 0.008)
    return (merge(parts) if parts else None), mats


def _floor_lamp(rng, height=1.55):
    metal = _metal(rng)
    shade_col = _jitter(rng, (0.85, 0.75, 0.55))
    shade = MaterialSpec("shade", shade_col, _shade(shade_col, 0.75), 25.0, 0.8, emission=0.6)
    parts = [cylinder((0, 0, 0), 0.16, 0.03, 24, slot=0, caps=(False, True)),
             cylinder((0, 0, 0.03), 0.015, height - 0.3, 10, slot=0, caps=(False, False)),
             cylinder((0, 0, height - 0.32), 0.23, 0.32, 24, slot=1, caps=(False, True), radius_top=0.15)]
    return merge(parts), [metal, shade]


def _table_lamp(rng):
    base_col = _jitter(rng, (0.5, 0.15, 0.1))
    shade_col = _jitter(rng, (0.9, 0.85, 0.7))
    mats = [MaterialSpec("metal", base_col, _shade(base_col, 0.6), 30.0, 0.3),
            MaterialSpec("shade", shade_col, _shade(shade_col, 0.75), 25.0, 0.8, emission=0.5)]
    parts = [cylinder((0, 0, 0), 0.08, 0.22, 16, slot=0, caps=(False, True), radius_top=0.05),
             cylinder((0, 0, 0.2), 0.15, 0.2, 20, slot=1, caps=(False, True), radius_top=0.1)]
    return merge(parts), mats


def _painting(rng, w, h):
    a = _jitter(rng, [(0.7, 0.3, 0.1), (0.1, 0.3, 0.6), (0.2, 0.5, 0.3), (0.6, 0.2, 0.4)][rng.integers(4)])
    b = _jitter(rng, (0.9, 0.85, 0.7))
    mats = [_wood(rng), MaterialSpec("canvas", a, b, rng.uniform(3.0, 6.0), 0.6)]
    fr = 0.04
    parts = [box((0, 0.0125, 0), (w, 0.025, h), slot=0, open_faces=("-y",)),
             box((0, 0.027, 0), (w - 2 * fr, 0.004, h - 2 * fr), slot=1, open_faces=("-y",))]
    return merge(parts), mats


def _coffee_table(rng, w, d, h=0.42):
    mats = [_wood(rng, 9.0), _metal(rng)]
    parts = [box((0, 0, h - 0.02), (w, d, 0.04), slot=0)]
    parts += _legs(w, d, h - 0.04, 0.035, 0.04, 1)
    parts.append(box((0, 0, 0.12), (w - 0.1, d - 0.1, 0.02), slot=0))  # lower shelf
    return merge(parts), mats


def _armchair(rng, w=0.82, d=0.82):
    fab = _fabric(rng, "weave")
    mats = [fab, MaterialSpec("fabric", _shade(fab.color_a, 1.15), _shade(fab.color_a, 0.6), 12.0, 0.9), _wood(rng)]
    arm = 0.15
    parts = _legs(w, d, 0.1, 0.045, 0.04, 2)
    parts.append(box((0, 0.02, 0.1 + 0.16), (w - 2 * arm, d - 0.04, 0.32), slot=0, open_faces=("-z",)))
    parts.append(box((0, 0.08, 0.42 + 0.06), (w - 2 * arm - 0.01, d - 0.26, 0.12), slot=1, open_faces=("-z",)))
    parts.append(box((0, -d / 2 + 0.1, 0.1 + 0.38), (w, 0.2, 0.76), slot=0, open_faces=("-z",)))
    for sx in (-1, 1):
        parts.append(box((sx * (w / 2 - arm / 2), 0.0, 0.1 + 0.26), (arm, d, 0.52), slot=0, open_faces=("-z",)))
    return merge(parts), mats


def _potted_plant(rng):
    """(pot mesh, pot materials), (plant mesh, plant materials): a clay pot and a stack of leafy boxes."""
    clay = _jitter(rng, (0.55, 0.25, 0.12))
    pot = cylinder((0, 0, 0), 0.15, 0.32, 20, slot=0, caps=(False, True), radius_top=0.19)
    leaf = _jitter(rng, (0.12, 0.35, 0.08))
    parts = [cylinder((0, 0, 0.32), 0.02, 0.35, 8, slot=0, caps=(False, False))]
    for k in range(int(rng.integers(4, 7))):
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(0.05, 0.16)
        z = rng.uniform(0.5, 0.95)
        sz = rng.uniform(0.14, 0.24)
        parts.append(box((r * math.cos(a), r * math.sin(a), z), (sz, sz * 0.8, sz * 0.7), yaw=float(a), slot=1))
    plant = merge(parts)
    return ((pot, [MaterialSpec("plaster", clay, _shade(clay, 0.65), 20.0, 0.8)]),
            (plant, [MaterialSpec("wood", (0.25, 0.18, 0.1), (0.15, 0.1, 0.05), 20.0, 0.8),
                     MaterialSpec("fabric", leaf, _shade(leaf, 0.5), 25.0, 0.7)]))


def _clock(rng, r=0.16):
    face = MaterialSpec("canvas", (0.9, 0.9, 0.85), (0.2, 0.2, 0.2), 12.0, 0.4)
    rim = _metal(rng)
    body = cylinder((0, 0, 0), r, 0.04, 24, slot=0, caps=(False, True))
    dial = cylinder((0, 0, 0.04), r - 0.02, 0.003, 24, slot=1, caps=(False, True))
    m = merge([body, dial])
    # lay the disc on its back against a wall: local +z (disc normal) -> local +y (out of the wall)
    v = m.vertices.copy()
    m = PartMesh(np.stack([v[:, 0], v[:, 2], v[:, 1]], 1), m.faces[:, ::-1].copy(), m.uvs[:, ::-1].copy(), m.slots)
    return m, [rim, face]


def _curtain(rng, w, h, col):
    mat = MaterialSpec("wallpaper", col, _shade(col, 0.6), 14.0, 0.9)
    n = 8
    parts = []
    for k in range(n):  # folds: alternating slanted strips
        x0 = -w / 2 + k * w / n
        depth = 0.05 if k % 2 == 0 else -0.05
        parts.append(quad((x0, 0.08 + (0 if depth > 0 else 0.05), 0.0), (0, 0, h), (w / n, depth, 0.0)))
    return merge(parts), [mat]


def _rug(rng, w, d):
    a = _jitter(rng, _FABRICS[rng.integers(len(_FABRICS))])
    b = _jitter(rng, (0.8, 0.75, 0.6))
    return box((0, 0, 0.005), (w, d, 0.01), open_faces=("-z",)), [MaterialSpec("tiles", a, b, 6.0, 0.95)]


# ---------------------------------------------------------------------------------------------- placement

@dataclass
class _Placer:
    sx: float
    sy: float
    rects: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0,y0,x1,y1,ztop
    zones: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0,y0,x1,y1,zmin

    def free(self, r, ztop: float, gap: float = 0.06) -> bool:
        x0, y0, x1, y1 = r
        if x0 < -self.sx / 2 - 1e-6 or x1 > self.sx / 2 + 1e-6 or y0 < -self.sy / 2 - 1e-6 or y1 > self.sy / 2 + 1e-6:
            return False
        for a in self.rects:
            if x0 < a[2] + gap and a[0] - gap < x1 and y0 < a[3] + gap and a[1] - gap < y1:
                return False
        for z in self.zones:  # reserved volumes (door swing, window) that block objects taller than z[4]
            if ztop > z[4] and x0 < z[2] and z[0] < x1 and y0 < z[3] and z[1] < y1:
                return False
        return True


def _footprint(mesh: PartMesh) -> tuple[tuple[float, float, float, float], float]:
    lo, hi = mesh.bbox
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), float(hi[2])


def _room_walls(sx: float, sy: float) -> list[Wall]:
    return [
        Wall("wall_south", (sx / 2, -sy / 2, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), sx),
        Wall("wall_east", (sx / 2, sy / 2, 0.0), (0.0, -1.0, 0.0), (-1.0, 0.0, 0.0), sy),
        Wall("wall_north", (-sx / 2, sy / 2, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), sx),
        Wall("wall_west", (-sx / 2, -sy / 2, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), sy),
    ]


def _zone_rect(wall: Wall, u0: float, u1: float, s: float) -> tuple[float, float, float, float]:
    pts = np.stack([wall.point(u0, 0), wall.point(u1, 0), wall.point(u0, s), wall.point(u1, s)])
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _try_against_wall(rng, placer: _Placer, walls, mesh_fn, depth: float, width: float, gap: float,
                      tries: int = 60, wall_ids=None, corner: bool = False, u_fixed=None):
    """Place a local-frame mesh with its back ``gap`` from a wall. Returns (mesh, wall, u) or None."""
    for _ in range(tries):
        wi = int(rng.choice(wall_ids if wall_ids is not None else np.arange(4)))
        wall = walls[wi]
        lo, hi = width / 2 + 0.02, wall.length - width / 2 - 0.02
        if hi <= lo:
            continue
        if u_fixed is not None:
            u = u_fixed
        elif corner:
            u = lo if rng.random() < 0.5 else hi
        else:
            u = float(rng.uniform(lo, hi))
        centre = wall.point(u, gap + depth / 2)
        mesh = _transform(mesh_fn(wall, u), wall.yaw, centre)
        r, ztop = _footprint(mesh)
        if placer.free(r, ztop):
            return mesh, wall, u
    return None


# ---------------------------------------------------------------------------------------------- the room

def _shell(rng, sx, sy, sz, walls, win_wall, win, door_wall):
    wall_mats = []
    base = _WALLS[rng.integers(len(_WALLS))]
    for k in range(4):
        a = _jitter(rng, base, 0.05)
        if k == door_wall and rng.random() < 0.6:
            wall_mats.append(MaterialSpec("wallpaper", a, _shade(a, 0.72), rng.uniform(5.0, 8.0), 0.8))
        else:
            wall_mats.append(MaterialSpec("plaster", a, _shade(a, 0.7), rng.uniform(5.0, 9.0), 0.85))
    objs = []
    for k, w in enumerate(walls):
        hole = win if k == win_wall else None
        mesh = wall_with_hole(w.origin, w.along, w.inward, w.length, sz, hole=hole, depth=0.16 if hole else 0.0)
        objs.append((w.name, "wall", mesh, [wall_mats[k]]))
    fa = _jitter(rng, _WOODS[rng.integers(len(_WOODS))])
    if rng.random() < 0.7:
        floor_mat = MaterialSpec("planks", fa, _shade(fa, 0.6), 1.0, 0.45)
    else:
        fa = _jitter(rng, (0.6, 0.58, 0.55))
        floor_mat = MaterialSpec("tiles", fa, _shade(fa, 0.55), rng.uniform(2.5, 3.5), 0.3)
    objs.append(("floor", "floor", rect_xy(-sx / 2, -sy / 2, sx / 2, sy / 2, 0.0, up=True), [floor_mat]))
    ca = _jitter(rng, (0.78, 0.78, 0.76), 0.04)
    objs.append(("ceiling", "ceiling", rect_xy(-sx / 2, -sy / 2, sx / 2, sy / 2, sz, up=False),
                 [MaterialSpec("plaster", ca, _shade(ca, 0.72), 4.0, 0.9)]))
    return objs


def _window_objects(rng, wall: Wall, hole, depth=0.16):
    u0, u1, v0, v1 = hole
    out = -np.asarray(wall.inward) * depth
    a = np.asarray(wall.along)
    up = np.array([0.0, 0.0, 1.0])
    sky = MaterialSpec("sky", (0.55, 0.68, 0.85), (0.92, 0.94, 0.97), 1.5, 1.0, emission=1.0, camera_only=True)
    frame = MaterialSpec("wood", (0.8, 0.8, 0.78), (0.6, 0.6, 0.58), 20.0, 0.4)
    p00 = wall.point(u0, 0, v0) + out
    pane = quad(p00, a * (u1 - u0), up * (v1 - v0), slot=0)
    parts = [pane]
    mid_u = 0.5 * (u0 + u1)
    mid_v = v0 + 0.55 * (v1 - v0)
    c = wall.point(mid_u, -depth + 0.03, 0.5 * (v0 + v1))
    parts.append(_transform(box((0, 0, 0), (0.05, 0.06, v1 - v0), slot=1), wall.yaw, c))
    c = wall.point(mid_u, -depth + 0.03, mid_v)
    parts.append(_transform(box((0, 0, 0), (u1 - u0, 0.06, 0.05), slot=1), wall.yaw, c))
    for uu in (u0 + 0.025, u1 - 0.025):
        c = wall.point(uu, -depth + 0.03, 0.5 * (v0 + v1))
        parts.append(_transform(box((0, 0, 0), (0.05, 0.06, v1 - v0), slot=1), wall.yaw, c))
    for vv in (v0 + 0.025, v1 - 0.025):
        c = wall.point(mid_u, -depth + 0.03, vv)
        parts.append(_transform(box((0, 0, 0), (u1 - u0, 0.06, 0.05), slot=1), wall.yaw, c))
    m = merge(parts)
    # a sill board in the room, part of the window
    c = wall.point(0.5 * (u0 + u1), 0.02, v0 - 0.01)  # top 1 cm above the reveal's sill: no coplanar faces
    sill = _transform(box((0, 0, 0), (u1 - u0 + 0.12, 0.1, 0.04), slot=1), wall.yaw, c)
    return merge([m, sill]), [sky, frame]


def _door_object(rng, wall: Wall, u0, u1, height):
    col = _jitter(rng, [(0.85, 0.83, 0.78), (0.40, 0.24, 0.12), (0.55, 0.55, 0.6)][rng.integers(3)])
    panel = MaterialSpec("wood", col, _shade(col, 0.7), 6.0, 0.5)
    frame = MaterialSpec("wood", _shade(col, 0.9), _shade(col, 0.6), 12.0, 0.5)
    w = u1 - u0
    parts = [box((0, 0.01, height / 2), (w, 0.02, height), slot=0, open_faces=("-y",))]
    for k in range(2):  # recessed-looking panels (raised slightly)
        parts.append(box((0, 0.022, 0.25 + k * 0.95 + 0.4), (w - 0.24, 0.006, 0.8), slot=1, open_faces=("-y",)))
    fw = 0.07
    parts.append(box((-(w / 2 + fw / 2), 0.0125, (height + fw) / 2), (fw, 0.025, height + fw), slot=1,
                     open_faces=("-y",)))
    parts.append(box(((w / 2 + fw / 2), 0.0125, (height + fw) / 2), (fw, 0.025, height + fw), slot=1,
                     open_faces=("-y",)))
    parts.append(box((0, 0.0125, height + fw / 2), (w, 0.025, fw), slot=1, open_faces=("-y",)))
    hx = w / 2 - 0.08
    parts.append(box((hx, 0.045, 1.0), (0.12, 0.02, 0.025), slot=2))
    parts.append(box((hx + 0.05, 0.03, 1.0), (0.025, 0.03, 0.025), slot=2, open_faces=("-y",)))
    mesh = _transform(merge(parts), wall.yaw, wall.point(0.5 * (u0 + u1), 0.0))
    return mesh, [panel, frame, _metal(rng)]


def make_room(seed: int, max_attempts: int = 50) -> RoomLayout:
    """A seeded room layout. Raises LayoutError if no attempt places every required object."""
    root = np.random.SeedSequence(int(seed))
    for attempt, child in enumerate(root.spawn(max_attempts)):
        rng = np.random.Generator(np.random.PCG64(child))
        layout = _attempt(rng, int(seed))
        if layout is not None:
            layout.openings["attempt"] = attempt
            return layout
    raise LayoutError(f"make_room: no valid layout for seed {seed} in {max_attempts} attempts")


def _attempt(rng: np.random.Generator, seed: int) -> RoomLayout | None:
    sx, sy, sz = float(rng.uniform(5.4, 6.6)), float(rng.uniform(4.6, 5.6)), float(rng.uniform(2.6, 2.9))
    walls = _room_walls(sx, sy)
    placer = _Placer(sx, sy)

    win_wall = int(rng.integers(4))
    door_wall = int((win_wall + rng.integers(1, 4)) % 4)
    ww = walls[win_wall]
    win_w = float(rng.uniform(1.1, 1.6))
    wu = float(rng.uniform(0.6 + win_w / 2, ww.length - 0.6 - win_w / 2))
    sill = float(rng.uniform(0.85, 0.95))
    win_hole = (wu - win_w / 2, wu + win_w / 2, sill, min(sz - 0.35, sill + rng.uniform(1.15, 1.35)))
    placer.zones.append(_zone_rect(ww, win_hole[0] - 0.05, win_hole[1] + 0.05, 0.6) + (sill - 0.05,))
    dw = walls[door_wall]
    door_w, door_h = 0.9, 2.05
    du = float(rng.uniform(0.25 + door_w / 2, dw.length - 0.25 - door_w / 2))
    door_u = (du - door_w / 2, du + door_w / 2)
    placer.zones.append(_zone_rect(dw, door_u[0] - 0.15, door_u[1] + 0.15, 1.0) + (0.0,))

    specs: list[tuple[str, str, PartMesh, list[MaterialSpec]]] = []
    specs += _shell(rng, sx, sy, sz, walls, win_wall, win_hole, door_wall)
    wmesh, wmats = _window_objects(rng, ww, win_hole)
    specs.append(("window", "windowpane", wmesh, wmats))
    dmesh, dmats = _door_object(rng, dw, door_u[0], door_u[1], door_h)
    specs.append(("door", "door", dmesh, dmats))

    def add(name, cls, mesh, mats):
        r, ztop = _footprint(mesh)
        placer.rects.append(r + (ztop,))
        specs.append((name, cls, mesh, mats))

    # bed: long side along a wall, in a corner, headboard towards the corner. Local +x is world -along for
    # every wall (yaw turns local +y to ``inward`` and along x up = inward), so a bed at the wall's start
    # (small u) has its head at local +x.
    bl, bw = float(rng.uniform(1.95, 2.1)), float(rng.uniform(1.0, 1.45))
    bed_mats = _bed_materials(rng)
    beds = {sgn: _bed(bl, bw, sgn) for sgn in (-1.0, 1.0)}

    def head_sign(wall, u):
        return 1.0 if u < wall.length / 2 else -1.0

    got = _try_against_wall(rng, placer, walls, lambda w, u: beds[head_sign(w, u)], bw, bl + 0.14, gap=0.04,
                            corner=True)
    if got is None:
        return None
    bed_mesh, bed_wall, bed_u = got
    add("bed", "bed", bed_mesh, bed_mats)
    pmesh, pmats = _pillow(rng, head_sign(bed_wall, bed_u), bl)
    specs.append(("pillow", "pillow", _transform(pmesh, bed_wall.yaw, bed_wall.point(bed_u, 0.04 + bw / 2)), pmats))

    # sofa
    sw = float(rng.uniform(1.8, 2.2))
    sofa_mesh, sofa_mats = _sofa(rng, sw)
    got = _try_against_wall(rng, placer, walls, lambda w, u: sofa_mesh, 0.88, sw, gap=0.04)
    if got is None:
        return None
    add("sofa", "sofa", got[0], sofa_mats)
    sofa_wall, sofa_u = got[1], got[2]

    # table with chairs on its room side (and maybe one at an end)
    tw, td = float(rng.uniform(1.1, 1.4)), float(rng.uniform(0.7, 0.85))
    n_front = 2
    end_chair = bool(rng.random() < 0.5)
    wood = _wood(rng, 10.0)
    seat = _fabric(rng)
    chair_mesh, chair_mats = _chair(rng, wood, seat)
    tmesh, tmats = _table(rng, tw, td)

    # the group in its local frame: table back at -group_depth/2, chairs on the +y side
    group_depth = td + 0.45
    local_t = (0.0, -group_depth / 2 + td / 2, 0.0)
    pieces = [_transform(tmesh, 0.0, local_t)]
    pieces += [_transform(cm, 0.0, local_t) for cm in _chair_layout(chair_mesh, tw, td, n_front, end_chair)]
    group = merge(pieces)
    got = _try_against_wall(rng, placer, walls, lambda w, u: group, group_depth, tw + (0.9 if end_chair else 0.0),
                            gap=0.08)
    if got is None:
        return None
    _, g_wall, g_u = got
    centre = g_wall.point(g_u, 0.08 + group_depth / 2)
    add("table", "table", _transform(pieces[0], g_wall.yaw, centre), tmats)
    for k, cm in enumerate(pieces[1:]):
        add(f"chair_{k + 1}", "chair", _transform(cm, g_wall.yaw, centre), chair_mats)

    # shelf (tall, with books)
    shw, shd, shh = float(rng.uniform(0.8, 1.15)), 0.32, float(rng.uniform(1.6, 1.9))
    shelf_mesh, shelf_mats, shelf_zs = _shelf(rng, shw, shd, shh, int(rng.integers(4, 6)))
    got = _try_against_wall(rng, placer, walls, lambda w, u: shelf_mesh, shd, shw, gap=0.01)
    if got is None:
        return None
    add("shelf", "shelf", got[0], shelf_mats)
    books, bmats = _books(rng, shw, shd, shelf_zs)
    if books is not None:
        specs.append(("books", "book", _transform(books, got[1].yaw, got[1].point(got[2], 0.01 + shd / 2)), bmats))

    # cabinet (low) with a table lamp on top
    cw, cd, ch = float(rng.uniform(0.8, 1.2)), 0.45, float(rng.uniform(0.75, 0.95))
    cab_mesh, cab_mats = _cabinet(rng, cw, cd, ch)
    got = _try_against_wall(rng, placer, walls, lambda w, u: cab_mesh, cd, cw, gap=0.01)
    if got is None:
        return None
    add("cabinet", "cabinet", got[0], cab_mats)
    lamp2_mesh, lamp2_mats = _table_lamp(rng)
    lamp2_pos = got[1].point(got[2] + cw * 0.25 * (1 if rng.random() < 0.5 else -1), 0.01 + cd / 2, ch)
    specs.append(("table_lamp", "lamp", _transform(lamp2_mesh, 0.0, lamp2_pos), lamp2_mats))

    # floor lamp, near a corner
    lamp_h = float(rng.uniform(1.45, 1.65))
    lmesh, lmats = _floor_lamp(rng, lamp_h)
    got = _try_against_wall(rng, placer, walls, lambda w, u: lmesh, 0.46, 0.46, gap=0.05, corner=True, tries=80)
    if got is None:
        return None
    add("floor_lamp", "lamp", got[0], lmats)
    floor_lamp_pos = got[1].point(got[2], 0.05 + 0.23, lamp_h - 0.2)

    # rug in front of the sofa (flat: does not block placement)
    rw, rd = sw * 0.8, float(rng.uniform(0.9, 1.3))
    rmesh, rmats = _rug(rng, rw, rd)
    specs.append(("rug", "rug", _transform(rmesh, sofa_wall.yaw, sofa_wall.point(sofa_u, 0.04 + 0.88 + 0.1 + rd / 2)),
                  rmats))

    # coffee table on the rug
    ct_w, ct_d = min(1.1, rw * 0.6), 0.55
    ctm, ctmats = _coffee_table(rng, ct_w, ct_d)
    ct = _transform(ctm, sofa_wall.yaw, sofa_wall.point(sofa_u, 0.04 + 0.88 + 0.1 + rd / 2))
    r, ztop = _footprint(ct)
    if placer.free(r, ztop, gap=0.02):
        add("coffee_table", "coffee table", ct, ctmats)

    # armchair against a wall
    am, amats = _armchair(rng)
    got = _try_against_wall(rng, placer, walls, lambda w, u: am, 0.82, 0.82, gap=0.05)
    if got is not None:
        add("armchair", "armchair", got[0], amats)

    # potted plant near a corner
    (potm, potmats), (plm, plmats) = _potted_plant(rng)
    got = _try_against_wall(rng, placer, walls, lambda w, u: merge([potm, plm]), 0.45, 0.45, gap=0.05, corner=True)
    if got is None:
        got = _try_against_wall(rng, placer, walls, lambda w, u: merge([potm, plm]), 0.45, 0.45, gap=0.05)
    if got is not None:
        c = got[1].point(got[2], 0.05 + 0.225)
        add("pot", "pot", _transform(potm, 0.0, c), potmats)
        add("plant", "plant", _transform(plm, 0.0, c), plmats)

    # curtains either side of the window (thin folded panels hanging from just below the ceiling)
    ccol = _jitter(rng, _FABRICS[rng.integers(len(_FABRICS))])
    cw_, chh = 0.45, min(sz - 0.12, win_hole[3] + 0.25) - 0.03
    for side, uu in (("left", win_hole[0] - cw_ / 2 + 0.1), ("right", win_hole[1] + cw_ / 2 - 0.1)):
        cm, cmats = _curtain(rng, cw_, chh, ccol)
        cmesh = _transform(cm, ww.yaw, ww.point(uu, 0.0, 0.03))
        r, ztop = _footprint(cmesh)
        if _Placer(sx, sy, placer.rects).free(r, ztop, gap=0.02):  # furniture only: curtains may flank the window
            add(f"curtain_{side}", "curtain", cmesh, cmats)

    # painting on a wall stretch free of tall things, windows and doors
    pw, ph = float(rng.uniform(0.7, 1.1)), float(rng.uniform(0.5, 0.8))
    pmesh, pmats = _painting(rng, pw, ph)
    placed = False
    for _ in range(60):
        wi = int(rng.integers(4))
        wall = walls[wi]
        if wall.length < pw + 0.6:
            continue
        u = float(rng.uniform(0.3 + pw / 2, wall.length - 0.3 - pw / 2))
        zc = float(rng.uniform(1.45, 1.75))
        m = _transform(pmesh, wall.yaw, wall.point(u, 0.0, zc))
        lo, hi = m.bbox
        r = (lo[0] - 0.3, lo[1] - 0.3, hi[0] + 0.3, hi[1] + 0.3)
        clash = any(r[0] < a[2] and a[0] < r[2] and r[1] < a[3] and a[1] < r[3] and a[4] > lo[2] - 0.05
                    for a in placer.rects)
        clash |= any(r[0] < z[2] and z[0] < r[2] and r[1] < z[3] and z[1] < r[3] for z in placer.zones)
        if not clash:
            specs.append(("painting", "painting", m, pmats))
            placer.zones.append((float(lo[0]) - 0.1, float(lo[1]) - 0.1, float(hi[0]) + 0.1, float(hi[1]) + 0.1, 9.0))
            placed = True
            break
    if not placed:
        return None

    # wall clock high on a wall, clear of the painting, openings and tall furniture
    km, kmats = _clock(rng)
    for _ in range(60):
        wall = walls[int(rng.integers(4))]
        u = float(rng.uniform(0.5, wall.length - 0.5))
        m = _transform(km, wall.yaw, wall.point(u, 0.0, sz - 0.55))
        lo, hi = m.bbox
        r = (lo[0] - 0.3, lo[1] - 0.3, hi[0] + 0.3, hi[1] + 0.3)
        clash = any(r[0] < a[2] and a[0] < r[2] and r[1] < a[3] and a[1] < r[3] and a[4] > lo[2] - 0.05
                    for a in placer.rects)
        clash |= any(r[0] < z[2] and z[0] < r[2] and r[1] < z[3] and z[1] < r[3] for z in placer.zones)
        if not clash:
            specs.append(("clock", "clock", m, kmats))
            break

    objects = []
    for k, (name, cls, mesh, mats) in enumerate(specs):
        if mesh.slots.max() >= len(mats):
            raise AssertionError(f"{name}: slot {mesh.slots.max()} without material")
        objects.append(ObjectSpec(name, class_id(cls), k + 1, mesh, list(mats)))

    lights = _lights(rng, sx, sy, sz, floor_lamp_pos, lamp2_pos)
    layout = RoomLayout(seed=seed, size=(sx, sy, sz), walls=walls, objects=objects, lights=lights,
                        world_color=(0.75, 0.85, 1.0), world_strength=1.5,
                        keepout=list(placer.rects),
                        openings={"window": {"wall": ww.name, "u0": win_hole[0], "u1": win_hole[1],
                                             "z0": win_hole[2], "z1": win_hole[3]},
                                  "door": {"wall": dw.name, "u0": door_u[0], "u1": door_u[1], "z1": door_h}})
    return layout


def _chair_layout(chair: PartMesh, tw: float, td: float, n_front: int, end_chair: bool) -> list[PartMesh]:
    """Chairs around a table centred at the origin (table back towards -y): front chairs face -y."""
    out = []
    xs = np.linspace(-tw / 2, tw / 2, n_front + 2)[1:-1]
    for x in xs:
        out.append(_transform(chair, math.pi, (float(x), td / 2 + 0.12, 0.0)))
    if end_chair:
        out.append(_transform(chair, math.pi / 2, (tw / 2 + 0.12, 0.0, 0.0)))
    return out


def _lights(rng, sx, sy, sz, floor_lamp_pos, lamp2_pos) -> list[LightSpec]:
    lights = []
    n = 2 if sx > 5.8 else 1
    for k in range(n):
        x = 0.0 if n == 1 else (-sx / 4 if k == 0 else sx / 4)
        lights.append(LightSpec(f"ceiling_light_{k + 1}", "AREA", (x, float(rng.uniform(-0.3, 0.3)), sz - 0.02),
                                power=float(rng.uniform(110, 140)) / n, size=0.9,
                                color=_jitter(rng, (1.0, 0.95, 0.88), 0.03)))
    lights.append(LightSpec("floor_lamp_bulb", "POINT", tuple(float(v) for v in floor_lamp_pos), 25.0, 0.04,
                            (1.0, 0.8, 0.55)))
    p = np.asarray(lamp2_pos) + np.array([0.0, 0.0, 0.3])
    lights.append(LightSpec("table_lamp_bulb", "POINT", tuple(float(v) for v in p), 10.0, 0.03, (1.0, 0.8, 0.55)))
    return lights
