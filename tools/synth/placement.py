"""Placing objects in a synthetic room: local-to-world transforms, footprints, the free-space check, the walls."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tools.synth.geometry import PartMesh
from tools.synth.specs import Wall


def transform(mesh: PartMesh, yaw: float, t) -> PartMesh:
    c, s = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    v = mesh.vertices @ R.T + np.asarray(t, dtype=np.float64)
    return PartMesh(v, mesh.faces.copy(), mesh.uvs.copy(), mesh.slots.copy())


@dataclass
class Placer:
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


def footprint(mesh: PartMesh) -> tuple[tuple[float, float, float, float], float]:
    lo, hi = mesh.bbox
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), float(hi[2])


def room_walls(sx: float, sy: float) -> list[Wall]:
    return [
        Wall("wall_south", (sx / 2, -sy / 2, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), sx),
        Wall("wall_east", (sx / 2, sy / 2, 0.0), (0.0, -1.0, 0.0), (-1.0, 0.0, 0.0), sy),
        Wall("wall_north", (-sx / 2, sy / 2, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), sx),
        Wall("wall_west", (-sx / 2, -sy / 2, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), sy),
    ]


def zone_rect(wall: Wall, u0: float, u1: float, s: float) -> tuple[float, float, float, float]:
    pts = np.stack([wall.point(u0, 0), wall.point(u1, 0), wall.point(u0, s), wall.point(u1, s)])
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def try_against_wall(rng, placer: Placer, walls, mesh_fn, depth: float, width: float, gap: float,
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
        mesh = transform(mesh_fn(wall, u), wall.yaw, centre)
        r, ztop = footprint(mesh)
        if placer.free(r, ztop):
            return mesh, wall, u
    return None
