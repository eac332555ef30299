"""SSR-2D virtual views: extra cameras where there are no photos, labelled by the teacher on the rendered image.

SSR-2D (Huang et al.) renders views the capture does not have, runs its 2-D segmenter on the rendered colour
image and trains the rendered semantics to agree with that prediction; with sparse views this is what keeps labels
right away from the training cameras. Here:

**Sampler** (:func:`sample_virtual_cameras`). Each virtual camera is one of

- *between*: a pair of neighbouring training cameras (each camera with its 2 nearest by centre distance, the pair's
  viewing directions at most 60 degrees apart) is blended at ``t ~ U(0.2, 0.8)``: centre linearly, rotation by
  spherical interpolation (slerp);
- *around*: a single training camera;

then perturbed: the centre moves by a random direction times ``U(0, max_shift) x`` the median distance between
neighbouring training cameras, the rotation by a random axis and an angle ``U(0, max_rotation_deg)``. Intrinsics and
size are the (first) source camera's. ``interpolate_share`` of the draws are *between*.

A draw is kept only when :class:`FreeSpace` says its centre and 6 points around it (+-``clearance`` along each world
axis) are empty space: every training view that sees such a point (in front of it, inside its image, with a depth)
must see it IN FRONT of its depth by more than ``tol`` -- a point behind a view's surface is inside an object,
behind a wall, or outside the room -- and at least one view must see it. That is space carving against the training
depth maps (sensor depth where the input has it, else the depth rendered from the current Gaussians, which is why the
pool is drawn only once geometry has settled). Draws that fail are retried (``max_tries`` per camera).

**Teacher on the render** (:class:`RenderTeacher`): the run's semantic network teacher applied to the rendered RGB.
Inputs with provided labels have no network to run; for the synthetic rooms :class:`MeshLabelTeacher` renders the
ground-truth-labelled scene (``gt_mesh.ply``: per-vertex class and instance) at the virtual camera by ray casting and
passes the labels through the same simulated-teacher function the training views went through
(:func:`aligngs.priors.simulate.simulate_teacher_labels` with the run's plan), so the term is testable offline. It is
handed to the run as ``Scene.meta["virtual_teacher"]`` (the objects benchmark does); a run with provided labels and
no such hook has no virtual views (it cannot know whether its labels were degraded).
Each pose is labelled once per run (the first time it is used) and cached in memory; the pool is used in a
shuffled order per pass that depends only on the seed and the pass.

**Term** (:class:`VirtualViewConsistency`): from ``from_step`` on, every ``every`` steps, one pose of the pool (in a
seeded shuffled order): KL(teacher || rendered) x ``kl_weight`` + CE(rendered, teacher argmax) x ``ce_weight`` on
the pixels the render covers (alpha > 0.5), through the detached-geometry semantic pass (only the semantic vectors
and the compact decoder learn from it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from ..data.types import Camera
from ..render.view import ViewTensors, render

log = logging.getLogger(__name__)

__all__ = ["FreeSpace", "sample_virtual_cameras", "RenderTeacher", "MeshLabelTeacher", "VirtualViewConsistency",
           "camera_neighbour_pairs"]


class FreeSpace:
    """Space carving against depth maps: is a world point empty space seen from the training views?"""

    def __init__(self, cameras: Sequence[Camera], depths: Sequence[np.ndarray], tol: float | None = None):
        if len(cameras) != len(depths) or not cameras:
            raise ValueError(f"FreeSpace: need one depth map per camera, got {len(cameras)} cameras / {len(depths)} maps")
        self.cameras = list(cameras)
        self.depths = []
        for i, (c, d) in enumerate(zip(cameras, depths)):
            d = np.asarray(d, np.float64)
            if d.shape != (c.height, c.width):
                raise ValueError(f"FreeSpace: depth map {i} is {d.shape}, camera {i} is {(c.height, c.width)}")
            self.depths.append(d)
        valid = np.concatenate([d[d > 0] for d in self.depths])
        self.median_depth = float(np.median(valid)) if valid.size else 1.0
        self.tol = 0.02 * self.median_depth if tol is None else float(tol)

    def free(self, points: np.ndarray) -> np.ndarray:
        """bool [P]: True where at least one view sees the point in front of its surface and none sees it behind."""
        X = np.asarray(points, np.float64).reshape(-1, 3)
        seen = np.zeros(len(X), bool)
        behind = np.zeros(len(X), bool)
        for cam, dep in zip(self.cameras, self.depths):
            w2c = cam.w2c
            pc = X @ w2c[:3, :3].T + w2c[:3, 3]
            z = pc[:, 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.floor(cam.K[0, 0] * pc[:, 0] / z + cam.K[0, 2] + 0.5)
                v = np.floor(cam.K[1, 1] * pc[:, 1] / z + cam.K[1, 2] + 0.5)
            ok = (z > 1e-6) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
            idx = np.nonzero(ok)[0]
            d = dep[v[idx].astype(np.int64), u[idx].astype(np.int64)]
            has = d > 0
            idx, d = idx[has], d[has]
            seen[idx[z[idx] < d - self.tol]] = True
            behind[idx[z[idx] > d - self.tol]] = True
        return seen & ~behind


def camera_neighbour_pairs(cameras: Sequence[Camera], k: int = 2, max_angle_deg: float = 60.0) -> list[tuple[int, int]]:
    """(i, j) with j among i's k nearest cameras by centre distance and viewing directions <= max_angle apart."""
    C = np.stack([c.center for c in cameras])
    F = np.stack([c.c2w[:3, 2] for c in cameras])
    pairs = set()
    for i in range(len(cameras)):
        d = np.linalg.norm(C - C[i], axis=1)
        d[i] = np.inf
        for j in np.argsort(d)[:k]:
            if np.isfinite(d[j]) and float(F[i] @ F[j]) >= np.cos(np.radians(max_angle_deg)):
                pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis) + 1e-12
    return Rotation.from_rotvec(axis * np.radians(rng.uniform(0, max_deg))).as_matrix()


def sample_virtual_cameras(
    cameras: Sequence[Camera],
    n: int,
    rng: np.random.Generator,
    *,
    free_space: FreeSpace | None = None,
    interpolate_share: float = 0.5,
    max_shift: float = 0.1,
    max_rotation_deg: float = 10.0,
    clearance: float | None = None,
    max_tries: int = 50,
) -> list[Camera]:
    """``n`` virtual cameras between / around ``cameras`` (module docstring); fewer when draws keep failing."""
    cams = list(cameras)
    if not cams:
        raise ValueError("sample_virtual_cameras: no training cameras")
    C = np.stack([c.center for c in cams])
    if len(cams) > 1:
        dd = np.linalg.norm(C[:, None] - C[None], axis=-1)
        np.fill_diagonal(dd, np.inf)
        spacing = float(np.median(dd.min(axis=1)))
    else:
        spacing = 0.0
    if spacing <= 0 and free_space is not None:
        spacing = 0.1 * free_space.median_depth
    pairs = camera_neighbour_pairs(cams) if len(cams) > 1 else []
    if clearance is None:
        clearance = 0.03 * (free_space.median_depth if free_space is not None else max(spacing, 1e-3))
    offsets = np.concatenate([np.zeros((1, 3)), np.eye(3) * clearance, -np.eye(3) * clearance])
    out: list[Camera] = []
    for _ in range(n):
        for _try in range(max_tries):
            if pairs and rng.random() < interpolate_share:
                i, j = pairs[int(rng.integers(len(pairs)))]
                t = float(rng.uniform(0.2, 0.8))
                R = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([cams[i].c2w[:3, :3], cams[j].c2w[:3, :3]])))(t)
                R = R.as_matrix()
                center = (1 - t) * C[i] + t * C[j]
                src = cams[i]
            else:
                src = cams[int(rng.integers(len(cams)))]
                R, center = src.c2w[:3, :3].copy(), src.center
            d = rng.normal(size=3)
            d /= np.linalg.norm(d) + 1e-12
            center = center + d * rng.uniform(0, max_shift) * spacing
            R = _random_rotation(rng, max_rotation_deg) @ R
            if free_space is not None and not free_space.free(center[None] + offsets).all():
                continue
            c2w = np.eye(4)
            c2w[:3, :3], c2w[:3, 3] = R, center
            out.append(Camera(c2w, src.K.copy(), src.width, src.height))
            break
    if len(out) < n:
        log.warning("virtual views: kept %d of %d poses (the rest failed the free-space test %d times)",
                    len(out), n, max_tries)
    return out


# ---------------------------------------------------------------------------------------------------- teachers
class RenderTeacher:
    """The run's semantic network teacher on a rendered RGB image -> (log-prob scores [C,H,W], valid [H,W])."""

    def __init__(self, teacher):
        self.teacher = teacher

    def __call__(self, camera: Camera, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.teacher.predict(np.clip(rgb, 0, 1).astype(np.float32))
        return scores.astype(np.float32), np.ones(scores.shape[1:], bool)


def raycast_mesh(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(face index int64 [H,W], -1 = miss; planar depth float32 [H,W], 0 = miss) of a triangle mesh seen by
    ``camera`` (one ray through each pixel centre, integer-centre intrinsics)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, np.float32)), o3d.core.Tensor(np.asarray(faces, np.uint32)))
    H, W = camera.height, camera.width
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    K = camera.K
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d_world = d_cam @ camera.c2w[:3, :3].T
    o = np.broadcast_to(camera.center, d_world.shape)
    rays = np.concatenate([o, d_world], -1).reshape(-1, 6).astype(np.float32)
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    t = ans["t_hit"].numpy().reshape(H, W)
    prim = ans["primitive_ids"].numpy().astype(np.int64).reshape(H, W)
    hit = np.isfinite(t)
    prim = np.where(hit, prim, -1)
    depth = np.where(hit, t, 0.0).astype(np.float32)  # |d_cam.z| = 1, so t is the planar depth
    return prim, depth


class MeshLabelTeacher:
    """Ground-truth labels of a labelled mesh at a camera, passed through a simulated teacher (synthetic inputs).

    ``vertex_class`` / ``vertex_instance``: per-vertex ADE20K class and instance id (the synthetic rooms'
    ``gt_mesh.ply``); ``degrade``: ``(labels [H,W], instances [H,W]) -> labels`` (e.g. a closure over
    :func:`aligngs.priors.simulate.simulate_teacher_labels` with the run's plan), identity when None.
    """

    def __init__(self, vertices, faces, vertex_class, vertex_instance=None,
                 degrade: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None,
                 num_classes: int = 150, smoothing: float = 0.1):
        self.vertices = np.asarray(vertices, np.float32)
        self.faces = np.asarray(faces, np.int64)
        self.face_class = np.asarray(vertex_class, np.int64)[self.faces[:, 0]]
        self.face_instance = None if vertex_instance is None else np.asarray(vertex_instance, np.int64)[self.faces[:, 0]]
        self.degrade, self.num_classes, self.smoothing = degrade, num_classes, smoothing
        self.description = "ground-truth mesh labels" + (" through a simulated teacher" if degrade else "")

    @classmethod
    def from_ply(cls, path: str | Path, **kw) -> "MeshLabelTeacher":
        from plyfile import PlyData

        ply = PlyData.read(str(path))
        v = ply["vertex"]
        names = v.data.dtype.names
        if "class_id" not in names:
            raise ValueError(f"{path}: the mesh has no per-vertex class_id (a labelled ground-truth mesh is needed)")
        verts = np.stack([v["x"], v["y"], v["z"]], 1)
        faces = np.stack(ply["face"]["vertex_indices"]).astype(np.int64)
        inst = np.asarray(v["instance_id"]) if "instance_id" in names else None
        return cls(verts, faces, np.asarray(v["class_id"]), inst, **kw)

    def labels(self, camera: Camera) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(true labels int32 [H,W] -1 = miss, instances int32 [H,W] 0 = none or None, depth float32 [H,W])."""
        prim, depth = raycast_mesh(self.vertices, self.faces, camera)
        hit = prim >= 0
        lab = np.where(hit, self.face_class[np.where(hit, prim, 0)], -1).astype(np.int32)
        inst = None
        if self.face_instance is not None:
            inst = np.where(hit, self.face_instance[np.where(hit, prim, 0)], 0).astype(np.int32)
        return lab, inst, depth

    def __call__(self, camera: Camera, rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from ..priors.teachers import labels_to_scores

        lab, inst, _ = self.labels(camera)
        if self.degrade is not None:
            lab = np.asarray(self.degrade(lab, inst), np.int32)
        return labels_to_scores(lab, self.num_classes, self.smoothing)


# -------------------------------------------------------------------------------------------------------- term
@dataclass
class VirtualViewConsistency:
    """The SSR-2D consistency term over a pool of virtual cameras (module docstring)."""

    cameras: Sequence[Camera]  # training cameras (the sampler's anchors)
    teacher: Callable[[Camera, np.ndarray], tuple[np.ndarray, np.ndarray]]
    from_step: int
    kl_weight: float = 1.0
    ce_weight: float = 0.1
    every: int = 1
    pool_size: int = 0
    decoder: torch.nn.Module | None = None
    sensor_depths: Sequence[np.ndarray] | None = None  # else the depth rendered from the model when the pool is drawn
    seed: int = 0
    sampler: dict = field(default_factory=dict)  # keyword arguments of sample_virtual_cameras
    kl_norm: str = "per_pixel"
    name: str = "virtual"
    needs: frozenset = frozenset()
    pool: list = field(default_factory=list, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    _rng: Any = field(default=None, repr=False)

    def active(self, step: int) -> bool:
        return (self.kl_weight > 0 or self.ce_weight > 0) and step >= self.from_step and \
            (step - self.from_step) % max(self.every, 1) == 0

    @torch.no_grad()
    def _draw_pool(self, model) -> None:
        self._rng = np.random.default_rng(self.seed)
        if self.sensor_depths is not None and all(d is not None for d in self.sensor_depths):
            depths = list(self.sensor_depths)
        else:
            depths = []
            bg = torch.zeros(3, device=model.device)
            for cam in self.cameras:
                out, _ = render(model, ViewTensors.of(cam, model.device), 0, bg)
                d = out["depth"].cpu().numpy()
                depths.append(np.where(out["alpha"].cpu().numpy() > 0.5, d, 0.0))
        fs = FreeSpace(self.cameras, depths)
        n = self.pool_size or 2 * len(self.cameras)
        self.pool = sample_virtual_cameras(self.cameras, n, self._rng, free_space=fs, **self.sampler)
        log.info("virtual views: %d poses drawn", len(self.pool))

    def _index_at(self, step: int) -> int:
        """The pose used at ``step``: the pool in a shuffled order per pass, decided by (seed, pass) only, so a
        resumed run uses the poses an uninterrupted one would (given the same pool)."""
        n = len(self.pool)
        k = (step - self.from_step) // max(self.every, 1)
        order = np.random.default_rng([int(self.seed), k // n]).permutation(n)
        return int(order[k % n])

    def __call__(self, ctx) -> torch.Tensor:
        from .losses import semantic_ce, semantic_kl
        from .objects import render_channels

        model = ctx.model
        if not self.pool and self._rng is None:
            self._draw_pool(model)
        if not self.pool:
            return ctx.gt.new_zeros(())
        k = self._index_at(ctx.step)
        cam = self.pool[k]
        view = ViewTensors.of(cam, model.device)
        with torch.no_grad():
            bg = torch.zeros(3, device=model.device)
            out, _ = render(model, view, model.sh_degree, bg)
            covered = out["alpha"] > 0.5
            if k not in self._cache:
                scores, valid = self.teacher(cam, out["rgb"].clamp(0, 1).cpu().numpy())
                self._cache[k] = (torch.from_numpy(np.asarray(scores, np.float16)),
                                  torch.from_numpy(np.asarray(valid, bool)))
        scores16, valid = self._cache[k]
        teacher = scores16.to(model.device).float()
        valid = valid.to(model.device) & covered
        if int(valid.sum()) < 16:
            return ctx.gt.new_zeros(())
        rendered = render_channels(model, view, ["semantics"])["semantics"]
        if self.decoder is not None:
            rendered = self.decoder(rendered)
        loss = rendered.new_zeros(())
        if self.kl_weight > 0:
            loss = loss + self.kl_weight * semantic_kl(rendered, teacher, valid, norm=self.kl_norm)
        if self.ce_weight > 0:
            labels = torch.where(valid, teacher.argmax(dim=0), torch.full_like(valid, -1, dtype=torch.long))
            loss = loss + self.ce_weight * semantic_ce(rendered, labels)
        return loss
