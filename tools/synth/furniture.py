"""Furniture builders for the synthetic rooms, each in its local frame.

Local frame: footprint centred on the origin, floor at z = 0, back at y = -d/2, front facing +y. Each builder
returns a :class:`~tools.synth.geometry.PartMesh` (or parts) whose per-face slots index the object's materials.
"""
from __future__ import annotations

import math

import numpy as np

from tools.synth import materials as matlib
from tools.synth.geometry import PartMesh, box, cylinder, merge, quad
from tools.synth.specs import MaterialSpec


def legs(w, d, h, t, inset, slot):
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(box((sx * (w / 2 - inset - t / 2), sy * (d / 2 - inset - t / 2), h / 2), (t, t, h),
                             slot=slot, open_faces=("-z",)))
    return parts


def bed_materials(rng):
    return [matlib.wood(rng), matlib.fabric(rng, "weave"), matlib.fabric(rng, "fabric")]


def bed(length, width, head_sign):
    parts = legs(length, width, 0.12, 0.07, 0.02, 0)
    parts.append(box((0, 0, 0.12 + 0.13), (length, width, 0.26), slot=0))
    parts.append(box((0, 0, 0.38 + 0.1), (length - 0.06, width - 0.06, 0.2), slot=1, open_faces=("-z",)))
    bl = 0.62 * length
    parts.append(box((-head_sign * (length / 2 - bl / 2 - 0.01), 0, 0.58 + 0.025), (bl, width - 0.02, 0.05),
                     slot=2, open_faces=("-z",)))
    parts.append(box((head_sign * (length / 2 + 0.03), 0, 0.5), (0.06, width + 0.04, 1.0), slot=0))
    return merge(parts)


def pillow(rng, head_sign, length):
    m = [matlib.fabric(rng, "weave")]
    return box((head_sign * (length / 2 - 0.3), 0, 0.58 + 0.07), (0.38, 0.62, 0.14), slot=0, open_faces=("-z",)), m


def cabinet(rng, w, d, h):
    body, front = matlib.wood(rng), matlib.wood(rng)
    mats = [body, MaterialSpec("wood", matlib.shade(front.color_a, 1.2), matlib.shade(front.color_a, 0.7), front.scale,
                               0.45),
            matlib.metal(rng)]
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


def table(rng, w, d, h=0.75):
    mats = [matlib.wood(rng, 10.0), matlib.wood(rng)]
    parts = [box((0, 0, h - 0.02), (w, d, 0.04), slot=0)]
    parts += legs(w, d, h - 0.04, 0.06, 0.05, 1)
    parts.append(box((0, -d / 2 + 0.06, h - 0.1), (w - 0.2, 0.02, 0.1), slot=1))
    return merge(parts), mats


def chair(rng, wood: MaterialSpec, seat: MaterialSpec):
    w, d, sh = 0.46, 0.46, 0.46
    parts = legs(w, d, sh - 0.05, 0.04, 0.01, 0)
    parts.append(box((0, 0, sh - 0.025), (w, d, 0.05), slot=1))
    for sx in (-1, 1):  # back posts
        parts.append(box((sx * (w / 2 - 0.03), -d / 2 + 0.02, sh + 0.22), (0.04, 0.04, 0.44), slot=0))
    parts.append(box((0, -d / 2 + 0.02, sh + 0.32), (w - 0.02, 0.035, 0.2), slot=0))
    return merge(parts), [wood, seat]


def sofa(rng, w, d=0.88):
    mats = [matlib.fabric(rng, "weave"), None, matlib.wood(rng)]
    mats[1] = MaterialSpec("fabric", matlib.shade(mats[0].color_a, 1.15), matlib.shade(mats[0].color_a, 0.6), 12.0, 0.9)
    arm = 0.18
    parts = legs(w, d, 0.08, 0.05, 0.04, 2)
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


def shelf(rng, w, d, h, n_boards):
    mats = [matlib.wood(rng), MaterialSpec("wood", (0.65, 0.60, 0.52), (0.45, 0.40, 0.33), 6.0, 0.7)]
    t = 0.025
    parts = [box((-w / 2 + t / 2, 0, h / 2), (t, d, h), slot=0, open_faces=("-z",)),
             box((w / 2 - t / 2, 0, h / 2), (t, d, h), slot=0, open_faces=("-z",)),
             box((0, -d / 2 + 0.005, h / 2), (w - 2 * t, 0.01, h), slot=1)]
    zs = np.linspace(0.06, h - t / 2, n_boards + 1)
    for z in zs:
        parts.append(box((0, 0.005, z), (w - 2 * t, d - 0.01, t), slot=0))
    return merge(parts), mats, [float(z) for z in zs]


def books(rng, w, d, board_zs, board_t=0.025):
    colors = [(0.55, 0.08, 0.06), (0.06, 0.2, 0.5), (0.1, 0.4, 0.15), (0.6, 0.5, 0.1), (0.35, 0.1, 0.4),
              (0.7, 0.65, 0.55)]
    mats = [MaterialSpec("canvas", matlib.jitter(rng, c), matlib.shade(c, 0.55), 40.0, 0.7) for c in colors]
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


def floor_lamp(rng, height=1.55):
    metal = matlib.metal(rng)
    shade_col = matlib.jitter(rng, (0.85, 0.75, 0.55))
    shade = MaterialSpec("shade", shade_col, matlib.shade(shade_col, 0.75), 25.0, 0.8, emission=0.6)
    parts = [cylinder((0, 0, 0), 0.16, 0.03, 24, slot=0, caps=(False, True)),
             cylinder((0, 0, 0.03), 0.015, height - 0.3, 10, slot=0, caps=(False, False)),
             cylinder((0, 0, height - 0.32), 0.23, 0.32, 24, slot=1, caps=(False, True), radius_top=0.15)]
    return merge(parts), [metal, shade]


def table_lamp(rng):
    base_col = matlib.jitter(rng, (0.5, 0.15, 0.1))
    shade_col = matlib.jitter(rng, (0.9, 0.85, 0.7))
    mats = [MaterialSpec("metal", base_col, matlib.shade(base_col, 0.6), 30.0, 0.3),
            MaterialSpec("shade", shade_col, matlib.shade(shade_col, 0.75), 25.0, 0.8, emission=0.5)]
    parts = [cylinder((0, 0, 0), 0.08, 0.22, 16, slot=0, caps=(False, True), radius_top=0.05),
             cylinder((0, 0, 0.2), 0.15, 0.2, 20, slot=1, caps=(False, True), radius_top=0.1)]
    return merge(parts), mats


def painting(rng, w, h):
    a = matlib.jitter(rng, [(0.7, 0.3, 0.1), (0.1, 0.3, 0.6), (0.2, 0.5, 0.3), (0.6, 0.2, 0.4)][rng.integers(4)])
    b = matlib.jitter(rng, (0.9, 0.85, 0.7))
    mats = [matlib.wood(rng), MaterialSpec("canvas", a, b, rng.uniform(3.0, 6.0), 0.6)]
    fr = 0.04
    parts = [box((0, 0.0125, 0), (w, 0.025, h), slot=0, open_faces=("-y",)),
             box((0, 0.027, 0), (w - 2 * fr, 0.004, h - 2 * fr), slot=1, open_faces=("-y",))]
    return merge(parts), mats


def coffee_table(rng, w, d, h=0.42):
    mats = [matlib.wood(rng, 9.0), matlib.metal(rng)]
    parts = [box((0, 0, h - 0.02), (w, d, 0.04), slot=0)]
    parts += legs(w, d, h - 0.04, 0.035, 0.04, 1)
    parts.append(box((0, 0, 0.12), (w - 0.1, d - 0.1, 0.02), slot=0))  # lower shelf
    return merge(parts), mats


def armchair(rng, w=0.82, d=0.82):
    fab = matlib.fabric(rng, "weave")
    mats = [fab, MaterialSpec("fabric", matlib.shade(fab.color_a, 1.15), matlib.shade(fab.color_a, 0.6), 12.0, 0.9),
            matlib.wood(rng)]
    arm = 0.15
    parts = legs(w, d, 0.1, 0.045, 0.04, 2)
    parts.append(box((0, 0.02, 0.1 + 0.16), (w - 2 * arm, d - 0.04, 0.32), slot=0, open_faces=("-z",)))
    parts.append(box((0, 0.08, 0.42 + 0.06), (w - 2 * arm - 0.01, d - 0.26, 0.12), slot=1, open_faces=("-z",)))
    parts.append(box((0, -d / 2 + 0.1, 0.1 + 0.38), (w, 0.2, 0.76), slot=0, open_faces=("-z",)))
    for sx in (-1, 1):
        parts.append(box((sx * (w / 2 - arm / 2), 0.0, 0.1 + 0.26), (arm, d, 0.52), slot=0, open_faces=("-z",)))
    return merge(parts), mats


def potted_plant(rng):
    """(pot mesh, pot materials), (plant mesh, plant materials): a clay pot and a stack of leafy boxes."""
    clay = matlib.jitter(rng, (0.55, 0.25, 0.12))
    pot = cylinder((0, 0, 0), 0.15, 0.32, 20, slot=0, caps=(False, True), radius_top=0.19)
    leaf = matlib.jitter(rng, (0.12, 0.35, 0.08))
    parts = [cylinder((0, 0, 0.32), 0.02, 0.35, 8, slot=0, caps=(False, False))]
    for k in range(int(rng.integers(4, 7))):
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(0.05, 0.16)
        z = rng.uniform(0.5, 0.95)
        sz = rng.uniform(0.14, 0.24)
        parts.append(box((r * math.cos(a), r * math.sin(a), z), (sz, sz * 0.8, sz * 0.7), yaw=float(a), slot=1))
    plant = merge(parts)
    return ((pot, [MaterialSpec("plaster", clay, matlib.shade(clay, 0.65), 20.0, 0.8)]),
            (plant, [MaterialSpec("wood", (0.25, 0.18, 0.1), (0.15, 0.1, 0.05), 20.0, 0.8),
                     MaterialSpec("fabric", leaf, matlib.shade(leaf, 0.5), 25.0, 0.7)]))


def clock(rng, r=0.16):
    face = MaterialSpec("canvas", (0.9, 0.9, 0.85), (0.2, 0.2, 0.2), 12.0, 0.4)
    rim = matlib.metal(rng)
    body = cylinder((0, 0, 0), r, 0.04, 24, slot=0, caps=(False, True))
    dial = cylinder((0, 0, 0.04), r - 0.02, 0.003, 24, slot=1, caps=(False, True))
    m = merge([body, dial])
    # lay the disc on its back against a wall: local +z (disc normal) -> local +y (out of the wall)
    v = m.vertices.copy()
    m = PartMesh(np.stack([v[:, 0], v[:, 2], v[:, 1]], 1), m.faces[:, ::-1].copy(), m.uvs[:, ::-1].copy(), m.slots)
    return m, [rim, face]


def curtain(rng, w, h, col):
    mat = MaterialSpec("wallpaper", col, matlib.shade(col, 0.6), 14.0, 0.9)
    n = 8
    parts = []
    for k in range(n):  # folds: alternating slanted strips
        x0 = -w / 2 + k * w / n
        depth = 0.05 if k % 2 == 0 else -0.05
        parts.append(quad((x0, 0.08 + (0 if depth > 0 else 0.05), 0.0), (0, 0, h), (w / n, depth, 0.0)))
    return merge(parts), [mat]


def rug(rng, w, d):
    a = matlib.jitter(rng, matlib.FABRICS[rng.integers(len(matlib.FABRICS))])
    b = matlib.jitter(rng, (0.8, 0.75, 0.6))
    return box((0, 0, 0.005), (w, d, 0.01), open_faces=("-z",)), [MaterialSpec("tiles", a, b, 6.0, 0.95)]
