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

from aligngs.priors.ade20k import class_id
from tools.synth import furniture as fur
from tools.synth import materials as matlib
from tools.synth import placement as place
from tools.synth.geometry import PartMesh, box, merge, quad, rect_xy, wall_with_hole
from tools.synth.specs import LayoutError, LightSpec, MaterialSpec, ObjectSpec, RoomLayout, Wall

__all__ = ["MaterialSpec", "ObjectSpec", "LightSpec", "Wall", "RoomLayout", "make_room", "LayoutError"]


# ---------------------------------------------------------------------------------------------- the room

def _shell(rng, sx, sy, sz, walls, win_wall, win, door_wall):
    wall_mats = []
    base = matlib.WALL_COLORS[rng.integers(len(matlib.WALL_COLORS))]
    for k in range(4):
        a = matlib.jitter(rng, base, 0.05)
        if k == door_wall and rng.random() < 0.6:
            wall_mats.append(MaterialSpec("wallpaper", a, matlib.shade(a, 0.72), rng.uniform(5.0, 8.0), 0.8))
        else:
            wall_mats.append(MaterialSpec("plaster", a, matlib.shade(a, 0.7), rng.uniform(5.0, 9.0), 0.85))
    objs = []
    for k, w in enumerate(walls):
        hole = win if k == win_wall else None
        mesh = wall_with_hole(w.origin, w.along, w.inward, w.length, sz, hole=hole, depth=0.16 if hole else 0.0)
        objs.append((w.name, "wall", mesh, [wall_mats[k]]))
    fa = matlib.jitter(rng, matlib.WOODS[rng.integers(len(matlib.WOODS))])
    if rng.random() < 0.7:
        floor_mat = MaterialSpec("planks", fa, matlib.shade(fa, 0.6), 1.0, 0.45)
    else:
        fa = matlib.jitter(rng, (0.6, 0.58, 0.55))
        floor_mat = MaterialSpec("tiles", fa, matlib.shade(fa, 0.55), rng.uniform(2.5, 3.5), 0.3)
    objs.append(("floor", "floor", rect_xy(-sx / 2, -sy / 2, sx / 2, sy / 2, 0.0, up=True), [floor_mat]))
    ca = matlib.jitter(rng, (0.78, 0.78, 0.76), 0.04)
    objs.append(("ceiling", "ceiling", rect_xy(-sx / 2, -sy / 2, sx / 2, sy / 2, sz, up=False),
                 [MaterialSpec("plaster", ca, matlib.shade(ca, 0.72), 4.0, 0.9)]))
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
    parts.append(place.transform(box((0, 0, 0), (0.05, 0.06, v1 - v0), slot=1), wall.yaw, c))
    c = wall.point(mid_u, -depth + 0.03, mid_v)
    parts.append(place.transform(box((0, 0, 0), (u1 - u0, 0.06, 0.05), slot=1), wall.yaw, c))
    for uu in (u0 + 0.025, u1 - 0.025):
        c = wall.point(uu, -depth + 0.03, 0.5 * (v0 + v1))
        parts.append(place.transform(box((0, 0, 0), (0.05, 0.06, v1 - v0), slot=1), wall.yaw, c))
    for vv in (v0 + 0.025, v1 - 0.025):
        c = wall.point(mid_u, -depth + 0.03, vv)
        parts.append(place.transform(box((0, 0, 0), (u1 - u0, 0.06, 0.05), slot=1), wall.yaw, c))
    m = merge(parts)
    # a sill board in the room, part of the window
    c = wall.point(0.5 * (u0 + u1), 0.02, v0 - 0.01)  # top 1 cm above the reveal's sill: no coplanar faces
    sill = place.transform(box((0, 0, 0), (u1 - u0 + 0.12, 0.1, 0.04), slot=1), wall.yaw, c)
    return merge([m, sill]), [sky, frame]


def _door_object(rng, wall: Wall, u0, u1, height):
    col = matlib.jitter(rng, [(0.85, 0.83, 0.78), (0.40, 0.24, 0.12), (0.55, 0.55, 0.6)][rng.integers(3)])
    panel = MaterialSpec("wood", col, matlib.shade(col, 0.7), 6.0, 0.5)
    frame = MaterialSpec("wood", matlib.shade(col, 0.9), matlib.shade(col, 0.6), 12.0, 0.5)
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
    mesh = place.transform(merge(parts), wall.yaw, wall.point(0.5 * (u0 + u1), 0.0))
    return mesh, [panel, frame, matlib.metal(rng)]


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


@dataclass
class _Room:
    """One attempt's state: the room box, its walls, the free-space bookkeeping and the objects placed so far."""

    rng: np.random.Generator
    sx: float
    sy: float
    sz: float
    walls: list[Wall]
    placer: place.Placer
    specs: list[tuple[str, str, PartMesh, list[MaterialSpec]]] = field(default_factory=list)

    def add(self, name: str, cls: str, mesh: PartMesh, mats) -> None:
        """An object that takes floor space (later objects keep clear of it)."""
        r, ztop = place.footprint(mesh)
        self.placer.rects.append(r + (ztop,))
        self.specs.append((name, cls, mesh, mats))

    def put(self, name: str, cls: str, mesh: PartMesh, mats) -> None:
        """An object that blocks nothing (on or in another object, flat on the floor, on a wall)."""
        self.specs.append((name, cls, mesh, mats))

    def against_wall(self, mesh_fn, depth: float, width: float, gap: float, **kw):
        return place.try_against_wall(self.rng, self.placer, self.walls, mesh_fn, depth, width, gap=gap, **kw)


@dataclass(frozen=True)
class _Openings:
    win_wall: int
    win_hole: tuple[float, float, float, float]  # u0, u1, z0, z1 on the window's wall
    door_wall: int
    door_u: tuple[float, float]
    door_h: float


def _attempt(rng: np.random.Generator, seed: int) -> RoomLayout | None:
    """One try at a room: None when a required object finds no place (make_room then tries the next stream)."""
    sx, sy, sz = float(rng.uniform(5.4, 6.6)), float(rng.uniform(4.6, 5.6)), float(rng.uniform(2.6, 2.9))
    room = _Room(rng, sx, sy, sz, place.room_walls(sx, sy), place.Placer(sx, sy))
    op = _openings(room)
    if not _place_bed(room):
        return None
    sofa = _place_sofa(room)
    if sofa is None or not _place_dining(room) or not _place_shelf(room):
        return None
    lamp2_pos = _place_cabinet(room)
    if lamp2_pos is None:
        return None
    floor_lamp_pos = _place_floor_lamp(room)
    if floor_lamp_pos is None:
        return None
    _place_rug_and_coffee_table(room, *sofa)
    _place_armchair_and_plant(room)
    _place_curtains(room, op)
    if not _place_painting(room):
        return None
    _place_clock(room)
    return _assemble(room, seed, op, floor_lamp_pos, lamp2_pos)


def _openings(room: _Room) -> _Openings:
    """Window and door positions (their swing / reveal volumes reserved), then the shell, window and door objects."""
    rng, walls, placer, sz = room.rng, room.walls, room.placer, room.sz
    win_wall = int(rng.integers(4))
    door_wall = int((win_wall + rng.integers(1, 4)) % 4)
    ww = walls[win_wall]
    win_w = float(rng.uniform(1.1, 1.6))
    wu = float(rng.uniform(0.6 + win_w / 2, ww.length - 0.6 - win_w / 2))
    sill = float(rng.uniform(0.85, 0.95))
    win_hole = (wu - win_w / 2, wu + win_w / 2, sill, min(sz - 0.35, sill + rng.uniform(1.15, 1.35)))
    placer.zones.append(place.zone_rect(ww, win_hole[0] - 0.05, win_hole[1] + 0.05, 0.6) + (sill - 0.05,))
    dw = walls[door_wall]
    door_w, door_h = 0.9, 2.05
    du = float(rng.uniform(0.25 + door_w / 2, dw.length - 0.25 - door_w / 2))
    door_u = (du - door_w / 2, du + door_w / 2)
    placer.zones.append(place.zone_rect(dw, door_u[0] - 0.15, door_u[1] + 0.15, 1.0) + (0.0,))

    room.specs += _shell(rng, room.sx, room.sy, sz, walls, win_wall, win_hole, door_wall)
    wmesh, wmats = _window_objects(rng, ww, win_hole)
    room.put("window", "windowpane", wmesh, wmats)
    dmesh, dmats = _door_object(rng, dw, door_u[0], door_u[1], door_h)
    room.put("door", "door", dmesh, dmats)
    return _Openings(win_wall, win_hole, door_wall, door_u, door_h)


def _place_bed(room: _Room) -> bool:
    """Bed: long side along a wall, in a corner, headboard towards the corner. Local +x is world -along for every
    wall (yaw turns local +y to ``inward`` and along x up = inward), so a bed at the wall's start (small u) has its
    head at local +x."""
    rng = room.rng
    bl, bw = float(rng.uniform(1.95, 2.1)), float(rng.uniform(1.0, 1.45))
    bed_mats = fur.bed_materials(rng)
    beds = {sgn: fur.bed(bl, bw, sgn) for sgn in (-1.0, 1.0)}

    def head_sign(wall, u):
        return 1.0 if u < wall.length / 2 else -1.0

    got = room.against_wall(lambda w, u: beds[head_sign(w, u)], bw, bl + 0.14, gap=0.04, corner=True)
    if got is None:
        return False
    bed_mesh, bed_wall, bed_u = got
    room.add("bed", "bed", bed_mesh, bed_mats)
    pmesh, pmats = fur.pillow(rng, head_sign(bed_wall, bed_u), bl)
    room.put("pillow", "pillow", place.transform(pmesh, bed_wall.yaw, bed_wall.point(bed_u, 0.04 + bw / 2)), pmats)
    return True


def _place_sofa(room: _Room) -> tuple[Wall, float, float] | None:
    """Sofa against a wall: (its wall, its position along the wall, its width) or None."""
    sw = float(room.rng.uniform(1.8, 2.2))
    sofa_mesh, sofa_mats = fur.sofa(room.rng, sw)
    got = room.against_wall(lambda w, u: sofa_mesh, 0.88, sw, gap=0.04)
    if got is None:
        return None
    room.add("sofa", "sofa", got[0], sofa_mats)
    return got[1], got[2], sw


def _place_dining(room: _Room) -> bool:
    """Table with chairs on its room side (and maybe one at an end), placed as one group against a wall."""
    rng = room.rng
    tw, td = float(rng.uniform(1.1, 1.4)), float(rng.uniform(0.7, 0.85))
    n_front = 2
    end_chair = bool(rng.random() < 0.5)
    wood = matlib.wood(rng, 10.0)
    seat = matlib.fabric(rng)
    chair_mesh, chair_mats = fur.chair(rng, wood, seat)
    tmesh, tmats = fur.table(rng, tw, td)

    # the group in its local frame: table back at -group_depth/2, chairs on the +y side
    group_depth = td + 0.45
    local_t = (0.0, -group_depth / 2 + td / 2, 0.0)
    pieces = [place.transform(tmesh, 0.0, local_t)]
    pieces += [place.transform(cm, 0.0, local_t) for cm in _chair_layout(chair_mesh, tw, td, n_front, end_chair)]
    group = merge(pieces)
    got = room.against_wall(lambda w, u: group, group_depth, tw + (0.9 if end_chair else 0.0), gap=0.08)
    if got is None:
        return False
    _, g_wall, g_u = got
    centre = g_wall.point(g_u, 0.08 + group_depth / 2)
    room.add("table", "table", place.transform(pieces[0], g_wall.yaw, centre), tmats)
    for k, cm in enumerate(pieces[1:]):
        room.add(f"chair_{k + 1}", "chair", place.transform(cm, g_wall.yaw, centre), chair_mats)
    return True


def _place_shelf(room: _Room) -> bool:
    """A tall shelf with books on its boards."""
    rng = room.rng
    shw, shd, shh = float(rng.uniform(0.8, 1.15)), 0.32, float(rng.uniform(1.6, 1.9))
    shelf_mesh, shelf_mats, shelf_zs = fur.shelf(rng, shw, shd, shh, int(rng.integers(4, 6)))
    got = room.against_wall(lambda w, u: shelf_mesh, shd, shw, gap=0.01)
    if got is None:
        return False
    room.add("shelf", "shelf", got[0], shelf_mats)
    books, bmats = fur.books(rng, shw, shd, shelf_zs)
    if books is not None:
        room.put("books", "book", place.transform(books, got[1].yaw, got[1].point(got[2], 0.01 + shd / 2)), bmats)
    return True


def _place_cabinet(room: _Room):
    """A low cabinet with a table lamp on top: the lamp's position (for its light) or None."""
    rng = room.rng
    cw, cd, ch = float(rng.uniform(0.8, 1.2)), 0.45, float(rng.uniform(0.75, 0.95))
    cab_mesh, cab_mats = fur.cabinet(rng, cw, cd, ch)
    got = room.against_wall(lambda w, u: cab_mesh, cd, cw, gap=0.01)
    if got is None:
        return None
    room.add("cabinet", "cabinet", got[0], cab_mats)
    lamp2_mesh, lamp2_mats = fur.table_lamp(rng)
    lamp2_pos = got[1].point(got[2] + cw * 0.25 * (1 if rng.random() < 0.5 else -1), 0.01 + cd / 2, ch)
    room.put("table_lamp", "lamp", place.transform(lamp2_mesh, 0.0, lamp2_pos), lamp2_mats)
    return lamp2_pos


def _place_floor_lamp(room: _Room):
    """A floor lamp near a corner: its bulb position (for its light) or None."""
    lamp_h = float(room.rng.uniform(1.45, 1.65))
    lmesh, lmats = fur.floor_lamp(room.rng, lamp_h)
    got = room.against_wall(lambda w, u: lmesh, 0.46, 0.46, gap=0.05, corner=True, tries=80)
    if got is None:
        return None
    room.add("floor_lamp", "lamp", got[0], lmats)
    return got[1].point(got[2], 0.05 + 0.23, lamp_h - 0.2)


def _place_rug_and_coffee_table(room: _Room, sofa_wall: Wall, sofa_u: float, sw: float) -> None:
    """A rug in front of the sofa (flat: blocks nothing) and, when it fits, a coffee table on it."""
    rw, rd = sw * 0.8, float(room.rng.uniform(0.9, 1.3))
    rmesh, rmats = fur.rug(room.rng, rw, rd)
    room.put("rug", "rug", place.transform(rmesh, sofa_wall.yaw, sofa_wall.point(sofa_u, 0.04 + 0.88 + 0.1 + rd / 2)),
             rmats)
    ct_w, ct_d = min(1.1, rw * 0.6), 0.55
    ctm, ctmats = fur.coffee_table(room.rng, ct_w, ct_d)
    ct = place.transform(ctm, sofa_wall.yaw, sofa_wall.point(sofa_u, 0.04 + 0.88 + 0.1 + rd / 2))
    r, ztop = place.footprint(ct)
    if room.placer.free(r, ztop, gap=0.02):
        room.add("coffee_table", "coffee table", ct, ctmats)


def _place_armchair_and_plant(room: _Room) -> None:
    """An armchair against a wall and a potted plant near a corner (else anywhere along a wall), when they fit."""
    am, amats = fur.armchair(room.rng)
    got = room.against_wall(lambda w, u: am, 0.82, 0.82, gap=0.05)
    if got is not None:
        room.add("armchair", "armchair", got[0], amats)
    (potm, potmats), (plm, plmats) = fur.potted_plant(room.rng)
    got = room.against_wall(lambda w, u: merge([potm, plm]), 0.45, 0.45, gap=0.05, corner=True)
    if got is None:
        got = room.against_wall(lambda w, u: merge([potm, plm]), 0.45, 0.45, gap=0.05)
    if got is not None:
        c = got[1].point(got[2], 0.05 + 0.225)
        room.add("pot", "pot", place.transform(potm, 0.0, c), potmats)
        room.add("plant", "plant", place.transform(plm, 0.0, c), plmats)


def _place_curtains(room: _Room, op: _Openings) -> None:
    """Curtains either side of the window: thin folded panels hanging from just below the ceiling."""
    rng, ww, win_hole = room.rng, room.walls[op.win_wall], op.win_hole
    ccol = matlib.jitter(rng, matlib.FABRICS[rng.integers(len(matlib.FABRICS))])
    cw_, chh = 0.45, min(room.sz - 0.12, win_hole[3] + 0.25) - 0.03
    for side, uu in (("left", win_hole[0] - cw_ / 2 + 0.1), ("right", win_hole[1] + cw_ / 2 - 0.1)):
        cm, cmats = fur.curtain(rng, cw_, chh, ccol)
        cmesh = place.transform(cm, ww.yaw, ww.point(uu, 0.0, 0.03))
        r, ztop = place.footprint(cmesh)
        # furniture only (no reserved zones): curtains may flank the window
        if place.Placer(room.sx, room.sy, room.placer.rects).free(r, ztop, gap=0.02):
            room.add(f"curtain_{side}", "curtain", cmesh, cmats)


def _wall_item_clashes(placer: place.Placer, mesh: PartMesh) -> bool:
    """A wall-hung item (with a 0.3 m margin) overlaps tall furniture below it, an opening or another wall item."""
    lo, hi = mesh.bbox
    r = (lo[0] - 0.3, lo[1] - 0.3, hi[0] + 0.3, hi[1] + 0.3)
    clash = any(r[0] < a[2] and a[0] < r[2] and r[1] < a[3] and a[1] < r[3] and a[4] > lo[2] - 0.05
                for a in placer.rects)
    clash |= any(r[0] < z[2] and z[0] < r[2] and r[1] < z[3] and z[1] < r[3] for z in placer.zones)
    return clash


def _place_painting(room: _Room) -> bool:
    """A painting on a wall stretch free of tall things, windows and doors (reserved against later wall items)."""
    rng, walls = room.rng, room.walls
    pw, ph = float(rng.uniform(0.7, 1.1)), float(rng.uniform(0.5, 0.8))
    pmesh, pmats = fur.painting(rng, pw, ph)
    for _ in range(60):
        wi = int(rng.integers(4))
        wall = walls[wi]
        if wall.length < pw + 0.6:
            continue
        u = float(rng.uniform(0.3 + pw / 2, wall.length - 0.3 - pw / 2))
        zc = float(rng.uniform(1.45, 1.75))
        m = place.transform(pmesh, wall.yaw, wall.point(u, 0.0, zc))
        if not _wall_item_clashes(room.placer, m):
            lo, hi = m.bbox
            room.put("painting", "painting", m, pmats)
            room.placer.zones.append((float(lo[0]) - 0.1, float(lo[1]) - 0.1, float(hi[0]) + 0.1, float(hi[1]) + 0.1,
                                      9.0))
            return True
    return False


def _place_clock(room: _Room) -> None:
    """A wall clock high on a wall, clear of the painting, the openings and tall furniture (skipped if none fits)."""
    km, kmats = fur.clock(room.rng)
    for _ in range(60):
        wall = room.walls[int(room.rng.integers(4))]
        u = float(room.rng.uniform(0.5, wall.length - 0.5))
        m = place.transform(km, wall.yaw, wall.point(u, 0.0, room.sz - 0.55))
        if not _wall_item_clashes(room.placer, m):
            room.put("clock", "clock", m, kmats)
            return


def _assemble(room: _Room, seed: int, op: _Openings, floor_lamp_pos, lamp2_pos) -> RoomLayout:
    """Number the objects (instance ids 1, 2, ...), add the lights, and record the openings."""
    objects = []
    for k, (name, cls, mesh, mats) in enumerate(room.specs):
        if mesh.slots.max() >= len(mats):
            raise AssertionError(f"{name}: slot {mesh.slots.max()} without material")
        objects.append(ObjectSpec(name, class_id(cls), k + 1, mesh, list(mats)))
    sx, sy, sz = room.sx, room.sy, room.sz
    ww, dw = room.walls[op.win_wall], room.walls[op.door_wall]
    lights = _lights(room.rng, sx, sy, sz, floor_lamp_pos, lamp2_pos)
    return RoomLayout(seed=seed, size=(sx, sy, sz), walls=room.walls, objects=objects, lights=lights,
                      world_color=(0.75, 0.85, 1.0), world_strength=1.5,
                      keepout=list(room.placer.rects),
                      openings={"window": {"wall": ww.name, "u0": op.win_hole[0], "u1": op.win_hole[1],
                                           "z0": op.win_hole[2], "z1": op.win_hole[3]},
                                "door": {"wall": dw.name, "u0": op.door_u[0], "u1": op.door_u[1], "z1": op.door_h}})


def _chair_layout(chair: PartMesh, tw: float, td: float, n_front: int, end_chair: bool) -> list[PartMesh]:
    """Chairs around a table centred at the origin (table back towards -y): front chairs face -y."""
    out = []
    xs = np.linspace(-tw / 2, tw / 2, n_front + 2)[1:-1]
    for x in xs:
        out.append(place.transform(chair, math.pi, (float(x), td / 2 + 0.12, 0.0)))
    if end_chair:
        out.append(place.transform(chair, math.pi / 2, (tw / 2 + 0.12, 0.0, 0.0)))
    return out


def _lights(rng, sx, sy, sz, floor_lamp_pos, lamp2_pos) -> list[LightSpec]:
    lights = []
    n = 2 if sx > 5.8 else 1
    for k in range(n):
        x = 0.0 if n == 1 else (-sx / 4 if k == 0 else sx / 4)
        lights.append(LightSpec(f"ceiling_light_{k + 1}", "AREA", (x, float(rng.uniform(-0.3, 0.3)), sz - 0.02),
                                power=float(rng.uniform(110, 140)) / n, size=0.9,
                                color=matlib.jitter(rng, (1.0, 0.95, 0.88), 0.03)))
    lights.append(LightSpec("floor_lamp_bulb", "POINT", tuple(float(v) for v in floor_lamp_pos), 25.0, 0.04,
                            (1.0, 0.8, 0.55)))
    p = np.asarray(lamp2_pos) + np.array([0.0, 0.0, 0.3])
    lights.append(LightSpec("table_lamp_bulb", "POINT", tuple(float(v) for v in p), 10.0, 0.03, (1.0, 0.8, 0.55)))
    return lights
