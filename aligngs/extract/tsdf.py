"""TSDF fusion of depth (+ colour) maps into a triangle mesh (docs/method.md §6).

One entry point, :func:`fuse_tsdf`, on open3d's tensor ``VoxelBlockGrid`` (the legacy
``ScalableTSDFVolume`` returns empty meshes on open3d 0.20, see docs/platform.md, open3d).

Derived parameters (used when the :class:`~aligngs.config.MeshConfig` field is ``None``):

``extent``
    ``scene_extent(cameras, points)`` with ``points`` back-projected from the depth maps being fused (a pixel
    subsample); an ``extent`` given by the caller is used when it is larger (it is a floor: callers often
    pass the training extent, which for scenes without SfM points is the camera radius alone). The 3DGS
    camera radius alone (``nerf_normalization``) is not enough: for a forward-facing or short-baseline
    capture it is far smaller than the observed scene (the shelf capture: cameras within 0.22 m of their mean, surfaces up to ~1.1 m from it: extent 1.22 m instead
    of 0.24 m, and 2 x 0.24 m would cut most of its depth, median 0.40 m, 99th percentile 1.05 m).
``voxel_size = extent / 256``
    About 512 voxels across the scene's bounding sphere: 4.7 mm on the 50-view shelf capture (5 s for 50
    640x480 views on 2 CPU cores), ~1.5 cm for a room of 3.5 m radius, about the pixel footprint of the renders
    we fuse (a 320 px wide, 60 degree render sees ~7 mm per pixel at 2 m); finer voxels than the footprint
    add memory and noise, not detail. The reference uses a fixed 2 mm and says "tune per scene".
``sdf_trunc = 4 * voxel_size``
    The reference's ratio.
``depth_trunc = 2 * extent``
    Every camera centre and (99 % of the) observed points lie inside the sphere of radius ``extent`` around
    the camera mean, so no point of that sphere is farther than ``2 * extent`` from any camera: this keeps
    the whole scene and drops only far outliers (background floaters in rendered depth). A warning is
    logged when more than 10 % of the valid depth pixels lie beyond it.
``weight_threshold``
    From the config, passed to open3d as is (default 1: with sparse views open3d's default 3 drops real
    surface). Each view adds weight 1 to the voxels it sees and open3d keeps voxels with weight STRICTLY
    above the threshold: 1 keeps surface seen from at least 2 views, 0 also keeps single-view surface.

``largest_component`` (the reference's choice) drops every other piece, real ones included: on the shelf
capture a separate second piece left of the shelf holds 28 % of the triangles. :func:`resolve_tsdf_params` gives the
numbers a fusion will use (for reports) without fusing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from aligngs.config import MeshConfig
from aligngs.data.types import Camera, TriMesh
from aligngs.errors import AlignGSError
from aligngs.extract.extent import scene_extent
from aligngs.progress import CancelFn, Progress, ProgressFn, check_cancel

log = logging.getLogger(__name__)

VOXELS_PER_EXTENT = 256
TRUNC_VOXELS = 4.0
DEPTH_TRUNC_EXTENTS = 2.0
_EXTENT_SAMPLES_PER_VIEW = 20_000


class EmptyMeshError(AlignGSError, RuntimeError):
    """TSDF fusion produced no surface (nothing passed the weight threshold inside the truncation)."""


@dataclass(frozen=True)
class TSDFParams:
    """The numbers a fusion actually ran with (config values, or derived from ``extent``)."""

    voxel_size: float
    sdf_trunc: float
    depth_trunc: float
    weight_threshold: float
    extent: float | None

    def to_dict(self) -> dict:
        return {
            "voxel_size": self.voxel_size,
            "sdf_trunc": self.sdf_trunc,
            "depth_trunc": self.depth_trunc,
            "weight_threshold": self.weight_threshold,
            "extent": self.extent,
        }


def tsdf_params(cfg: MeshConfig, extent: float | None) -> TSDFParams:
    """Resolve the fusion parameters: config values where set, else derived from ``extent`` (module doc)."""
    if extent is not None and (not np.isfinite(extent) or extent <= 0):
        raise ValueError(f"tsdf_params: extent must be a positive finite number, got {extent!r}")
    need = [name for name in ("voxel_size", "depth_trunc") if getattr(cfg, name) is None]
    if need and extent is None:
        raise ValueError(f"tsdf_params: MeshConfig.{need[0]} is None and no scene extent was given to derive it")
    voxel = float(cfg.voxel_size) if cfg.voxel_size is not None else float(extent) / VOXELS_PER_EXTENT
    trunc = float(cfg.sdf_trunc) if cfg.sdf_trunc is not None else TRUNC_VOXELS * voxel
    depth_trunc = float(cfg.depth_trunc) if cfg.depth_trunc is not None else DEPTH_TRUNC_EXTENTS * float(extent)
    for name, value in (("voxel_size", voxel), ("sdf_trunc", trunc), ("depth_trunc", depth_trunc)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"MeshConfig.{name} must be a positive number, got {value!r}")
    if trunc < voxel:
        raise ValueError(f"MeshConfig.sdf_trunc ({trunc}) must be at least one voxel ({voxel})")
    if cfg.weight_threshold < 0:
        raise ValueError(f"MeshConfig.weight_threshold must be >= 0, got {cfg.weight_threshold}")
    return TSDFParams(voxel, trunc, depth_trunc, float(cfg.weight_threshold), None if extent is None else float(extent))


def resolve_tsdf_params(
    depths: Sequence[np.ndarray], cameras: Sequence[Camera], cfg: MeshConfig, extent: float | None = None
) -> TSDFParams:
    """The parameters :func:`fuse_tsdf` will use for these inputs (config values, else derived from
    ``max(extent, scene_extent(cameras, back-projected depth))``; module doc)."""
    if len(depths) != len(cameras):
        raise ValueError(f"resolve_tsdf_params: {len(depths)} depth maps but {len(cameras)} cameras")
    return _resolve([_check_depth(d, c, i) for i, (d, c) in enumerate(zip(depths, cameras))], cameras, cfg, extent)


def _resolve(depths: Sequence[np.ndarray], cameras: Sequence[Camera], cfg: MeshConfig, extent: float | None) -> TSDFParams:
    if cfg.voxel_size is None or cfg.depth_trunc is None:
        stride = max(1, int(np.sqrt(cameras[0].width * cameras[0].height / _EXTENT_SAMPLES_PER_VIEW)))
        pts = np.concatenate([depth_to_points(d, c, stride=stride) for d, c in zip(depths, cameras)])
        depth_extent = scene_extent(cameras, pts)
        if extent is not None and extent < depth_extent:
            log.info("fuse_tsdf: the depth maps span extent %.4g > the given %.4g; using theirs", depth_extent, extent)
        extent = depth_extent if extent is None else max(float(extent), depth_extent)
    return tsdf_params(cfg, extent)


def depth_to_points(
    depth: np.ndarray, camera: Camera, *, stride: int = 1, return_index: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Back-project a planar (camera-z) depth map to world points [P,3] float32.

    Pixel (u, v) (integer indices; pixel centres, OpenCV convention) with depth z > 0 maps to
    ``c2w @ [z (u - cx) / fx, z (v - cy) / fy, z, 1]``. Zero, negative and non-finite depths are skipped.
    ``stride`` keeps every stride-th row and column. With ``return_index`` also returns the flat pixel
    indices ``v * W + u`` [P] int64 of the points (to sample colours or labels).
    """
    d = np.asarray(depth)
    if d.shape != (camera.height, camera.width):
        raise ValueError(f"depth_to_points: depth shape {d.shape} != camera (height, width) {(camera.height, camera.width)}")
    if stride < 1:
        raise ValueError(f"depth_to_points: stride must be >= 1, got {stride}")
    v, u = np.mgrid[0 : camera.height : stride, 0 : camera.width : stride]
    z = d[v, u].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    u, v, z = u[ok].astype(np.float64), v[ok].astype(np.float64), z[ok]
    K = camera.K
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    cam = np.stack([x, y, z], axis=1)
    pts = (cam @ camera.c2w[:3, :3].T + camera.c2w[:3, 3]).astype(np.float32)
    if return_index:
        return pts, (v.astype(np.int64) * camera.width + u.astype(np.int64))
    return pts


def fuse_tsdf(
    depths: Sequence[np.ndarray],
    colors: Optional[Sequence[np.ndarray]],
    cameras: Sequence[Camera],
    cfg: MeshConfig,
    extent: float | None = None,
    device: str = "cpu",
    progress: Optional[ProgressFn] = None,
    should_cancel: Optional[CancelFn] = None,
) -> TriMesh:
    """Fuse depth maps (+ colours) seen from ``cameras`` into a mesh with a TSDF (marching cubes).

    Args:
        depths: per view [H,W] float32 planar depth in metres, 0 (or non-finite) = invalid.
        colors: per view [H,W,3] float32 RGB in [0,1], or None for a mesh without colours.
        cameras: per view :class:`Camera` (OpenCV c2w, K at the depth map's size).
        cfg: :class:`MeshConfig`; ``None`` fields are derived from ``extent`` (module doc).
        extent: the caller's scene radius, or None. The fusion uses
            ``max(extent, scene_extent(cameras, back-projected depth))`` (module doc).
        device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when open3d has it; "cuda" without it falls back to
            the CPU with a warning).
        progress: optional callback, called with ``Progress(stage="mesh", ...)`` after each view.
        should_cancel: optional cooperative-cancel poll (raises :class:`~aligngs.progress.Cancelled`).

    Returns:
        :class:`TriMesh` with vertices [N,3] float32, faces [M,3] int32, colors [N,3] uint8 (None without
        ``colors``); only the largest connected component when ``cfg.largest_component``.

    Raises:
        ValueError: mismatched lists or shapes, no valid depth pixel.
        EmptyMeshError: the fusion extracted no surface.
    """
    import open3d as o3d
    import open3d.core as o3c

    n = len(depths)
    if n == 0:
        raise ValueError("fuse_tsdf: no depth maps given")
    if len(cameras) != n:
        raise ValueError(f"fuse_tsdf: {n} depth maps but {len(cameras)} cameras")
    if colors is not None and len(colors) != n:
        raise ValueError(f"fuse_tsdf: {n} depth maps but {len(colors)} colour images")
    clean_depths = [_check_depth(depths[i], cameras[i], i) for i in range(n)]
    n_valid = sum(int((d > 0).sum()) for d in clean_depths)
    if n_valid == 0:
        raise ValueError(f"fuse_tsdf: all {n} depth maps are empty (no pixel with depth > 0)")
    clean_colors = None if colors is None else [_check_color(colors[i], cameras[i], i) for i in range(n)]

    params = _resolve(clean_depths, cameras, cfg, extent)
    beyond = sum(int((d > params.depth_trunc).sum()) for d in clean_depths)
    if beyond > 0.1 * n_valid:
        log.warning(
            "fuse_tsdf: %.0f%% of the valid depth pixels lie beyond depth_trunc = %.3g m and are ignored",
            100.0 * beyond / n_valid, params.depth_trunc,
        )
    dev = _o3d_device(device, o3c)
    log.info(
        "fuse_tsdf: %d views on %s, voxel %.4g, sdf_trunc %.4g, depth_trunc %.4g, weight > %g",
        n, dev, params.voxel_size, params.sdf_trunc, params.depth_trunc, params.weight_threshold,
    )

    if clean_colors is None:
        attrs = (("tsdf", "weight"), (o3c.float32, o3c.float32), ((1), (1)))
    else:
        attrs = (("tsdf", "weight", "color"), (o3c.float32, o3c.float32, o3c.float32), ((1), (1), (3)))
    vbg = o3d.t.geometry.VoxelBlockGrid(*attrs, params.voxel_size, 16, 10_000, dev)  # the hash map grows on demand
    n_fused = 0
    for i in range(n):
        check_cancel(should_cancel)
        cam = cameras[i]
        if not np.any((clean_depths[i] > 0) & (clean_depths[i] <= params.depth_trunc)):
            log.debug("fuse_tsdf: view %d has no depth inside depth_trunc; skipped", i)  # open3d would abort
        else:
            _integrate(o3d, o3c, vbg, dev, cam, clean_depths[i], None if clean_colors is None else clean_colors[i], params)
            n_fused += 1
        if progress is not None:
            progress(Progress("mesh", 0.9 * (i + 1) / n, f"TSDF: fused view {i + 1}/{n}"))

    check_cancel(should_cancel)
    n_vertices = n_faces = 0
    if n_fused:
        tmesh = _extract(vbg, params.weight_threshold, o3c)
        if tmesh is not None:
            n_vertices = tmesh.vertex.positions.shape[0] if "positions" in tmesh.vertex else 0
            n_faces = tmesh.triangle.indices.shape[0] if "indices" in tmesh.triangle else 0
    if n_vertices == 0 or n_faces == 0:
        raise EmptyMeshError(
            f"TSDF fusion of {n} views ({n_fused} with depth inside depth_trunc, {n_valid} valid depth pixels) gave an empty mesh "
            f"(voxel {params.voxel_size:.4g}, sdf_trunc {params.sdf_trunc:.4g}, depth_trunc {params.depth_trunc:.4g}, "
            f"weight threshold {params.weight_threshold:g}: kept only where more views than that saw the surface); "
            "check the poses/depth units or lower the threshold"
        )
    vertices = tmesh.vertex.positions.numpy().astype(np.float32)
    faces = tmesh.triangle.indices.numpy().astype(np.int32)
    vcolors = None
    if clean_colors is not None and "colors" in tmesh.vertex:
        vcolors = np.clip(np.rint(tmesh.vertex.colors.numpy() * 255.0), 0, 255).astype(np.uint8)
    mesh = TriMesh(vertices=vertices, faces=faces, colors=vcolors)
    if cfg.largest_component:
        mesh = largest_component(mesh)
    if progress is not None:
        progress(Progress("mesh", 1.0, f"TSDF: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces"))
    return mesh


def _integrate(o3d, o3c, vbg, dev, cam: Camera, depth: np.ndarray, color: np.ndarray | None, params: TSDFParams) -> None:
    K = o3c.Tensor(cam.K, o3c.float64)
    w2c = o3c.Tensor(cam.w2c, o3c.float64)
    trunc_mult = params.sdf_trunc / params.voxel_size
    depth_img = o3d.t.geometry.Image(o3c.Tensor(depth)).to(dev)
    blocks = vbg.compute_unique_block_coordinates(depth_img, K, w2c, 1.0, params.depth_trunc, trunc_mult)
    if color is None:
        vbg.integrate(blocks, depth_img, K, w2c, 1.0, params.depth_trunc, trunc_mult)
    else:
        color_img = o3d.t.geometry.Image(o3c.Tensor(color)).to(dev)
        vbg.integrate(blocks, depth_img, color_img, K, w2c, 1.0, params.depth_trunc, trunc_mult)


def _extract(vbg, weight_threshold: float, o3c):
    """Marching cubes; None when no surface (open3d 0.20 raises instead of returning an empty mesh)."""
    if float(vbg.attribute("weight").max().item()) < weight_threshold:
        return None
    try:
        return vbg.extract_triangle_mesh(weight_threshold).to(o3c.Device("CPU:0"))
    except RuntimeError as exc:
        if "shape {0}" in str(exc) or "should > 0" in str(exc):
            return None
        raise


def largest_component(mesh: TriMesh) -> TriMesh:
    """Keep the connected component with the most triangles (open3d ``cluster_connected_triangles``);
    unreferenced vertices are dropped and ``colors`` / ``vertex_attrs`` follow the kept vertices."""
    import open3d as o3d

    if len(mesh.faces) == 0:
        return mesh
    legacy = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(mesh.vertices, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.asarray(mesh.faces, dtype=np.int32)),
    )
    cluster, counts, _area = legacy.cluster_connected_triangles()
    cluster = np.asarray(cluster)
    keep_faces = mesh.faces[cluster == int(np.argmax(np.asarray(counts)))]
    return _compact(mesh, keep_faces)


def _compact(mesh: TriMesh, faces: np.ndarray) -> TriMesh:
    used = np.unique(faces)
    remap = np.full(len(mesh.vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return TriMesh(
        vertices=mesh.vertices[used],
        faces=remap[faces].astype(np.int32),
        colors=None if mesh.colors is None else mesh.colors[used],
        vertex_attrs={k: np.asarray(v)[used] for k, v in mesh.vertex_attrs.items()},
    )


def _check_depth(depth: np.ndarray, cam: Camera, i: int) -> np.ndarray:
    if not isinstance(cam, Camera):
        raise TypeError(f"fuse_tsdf: cameras[{i}] is a {type(cam).__name__}, expected aligngs Camera")
    d = np.asarray(depth)
    if d.shape != (cam.height, cam.width):
        raise ValueError(f"fuse_tsdf: depths[{i}] has shape {d.shape}, expected [H,W] = {(cam.height, cam.width)} of its camera")
    d = d.astype(np.float32, copy=True)
    d[~np.isfinite(d) | (d < 0)] = 0.0
    return np.ascontiguousarray(d)


def _check_color(color: np.ndarray, cam: Camera, i: int) -> np.ndarray:
    c = np.asarray(color)
    if c.shape != (cam.height, cam.width, 3):
        raise ValueError(f"fuse_tsdf: colors[{i}] has shape {c.shape}, expected [H,W,3] = {(cam.height, cam.width, 3)}")
    if c.dtype == np.uint8:
        raise ValueError(f"fuse_tsdf: colors[{i}] is uint8; expected float32 RGB in [0,1]")
    return np.ascontiguousarray(np.clip(np.nan_to_num(c.astype(np.float32)), 0.0, 1.0))


def _o3d_device(device: str, o3c):
    name = (device or "cpu").lower()
    if name == "cpu":
        return o3c.Device("CPU:0")
    if name == "auto":
        return o3c.Device("CUDA:0") if o3c.cuda.is_available() else o3c.Device("CPU:0")
    if name.startswith("cuda"):
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if o3c.cuda.is_available() and index < o3c.cuda.device_count():
            return o3c.Device(f"CUDA:{index}")
        log.warning("fuse_tsdf: open3d has no CUDA device %r here; fusing on the CPU", device)
        return o3c.Device("CPU:0")
    raise ValueError(f"fuse_tsdf: unknown device {device!r} (expected cpu, cuda, cuda:N or auto)")
