"""Normals for the AlignGS normal terms (docs/method.md §4), pure torch and differentiable.

Convention shared by both kinds of normal (PGSR's): **camera space, OpenCV axes (x right, y down,
z forward), unit length, facing the camera**, i.e. ``<n, p> <= 0`` for the surface point ``p`` in camera
coordinates (the normal points back towards the camera centre). A fronto-parallel wall therefore has
normal (0, 0, -1).

- :func:`gaussian_normals_world` + :func:`camera_space_normals`: per-Gaussian normals, rendered by the
  trainer as a 3-channel colour (alpha-blended) into the "rendered normal" map [H,W,3].
- :func:`depth_to_normals`: normals of the back-projected rendered depth, the "depth normal" map.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["quat_to_rotmat", "gaussian_normals_world", "camera_space_normals", "depth_to_normals"]


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Unit (w, x, y, z) quaternions [N,4] (normalised here) -> rotation matrices [N,3,3]."""
    if quats.dim() != 2 or quats.shape[1] != 4:
        raise ValueError(f"quat_to_rotmat: quats must be [N,4] (w,x,y,z), got {list(quats.shape)}")
    q = F.normalize(quats, dim=-1)
    w, x, y, z = q.unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(-1, 3, 3)


def gaussian_normals_world(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """World-space axis of each Gaussian's smallest scale: column ``argmin(scales)`` of R(quat). [N,3].

    quats: [N,4] (w,x,y,z), any norm; scales: [N,3] (activated or log: only the argmin is used, so no
    gradient reaches the scales). The sign is arbitrary here; :func:`camera_space_normals` orients it.
    """
    if scales.dim() != 2 or scales.shape[1] != 3 or scales.shape[0] != quats.shape[0]:
        raise ValueError(f"gaussian_normals_world: scales must be [N,3] with N={quats.shape[0]}, got {list(scales.shape)}")
    R = quat_to_rotmat(quats)
    idx = scales.detach().argmin(dim=1)  # [N]
    return R.gather(2, idx[:, None, None].expand(-1, 3, 1)).squeeze(2)


def camera_space_normals(normals_world: torch.Tensor, means: torch.Tensor, viewmat) -> torch.Tensor:
    """Rotate world normals [N,3] into the camera of ``viewmat`` (world-to-camera [4,4]) and make them face it.

    A normal is negated where ``<n, mean - camera_centre> > 0`` so that afterwards it is <= 0 (pointing
    towards the camera; PGSR's ``get_normal`` rule). ``means`` [N,3] are the Gaussian centres in world
    coordinates. The flip sign is a constant: gradients flow into ``normals_world`` only.
    """
    if normals_world.shape != means.shape or means.dim() != 2 or means.shape[1] != 3:
        raise ValueError(f"camera_space_normals: normals and means must both be [N,3], got "
                         f"{list(normals_world.shape)} and {list(means.shape)}")
    V = torch.as_tensor(np.asarray(viewmat) if not isinstance(viewmat, torch.Tensor) else viewmat,
                        dtype=normals_world.dtype, device=normals_world.device)
    if tuple(V.shape) != (4, 4):
        raise ValueError(f"camera_space_normals: viewmat must be 4x4 (world-to-camera), got {list(V.shape)}")
    R, t = V[:3, :3], V[:3, 3]
    n_cam = normals_world @ R.T
    p_cam = means.detach().to(n_cam.dtype) @ R.T + t  # camera centre is the origin in camera space
    away = (n_cam.detach() * p_cam).sum(-1) > 0
    sign = torch.where(away, -torch.ones_like(p_cam[:, 0]), torch.ones_like(p_cam[:, 0]))
    return n_cam * sign[:, None]


def depth_to_normals(
    depth: torch.Tensor,
    K,
    alpha: torch.Tensor | None = None,
    border: str = "zero",
) -> torch.Tensor:
    """Camera-space normals [H,W,3] of a depth map [H,W] (z-depth along the optical axis, e.g. gsplat "ED").

    Each pixel (u, v) (pixel centres at integer coordinates, the project's K convention) is back-projected to
    ``P = z * K^-1 [u, v, 1]``; with ``dx = P(u+1,v) - P(u-1,v)`` and ``dy = P(u,v+1) - P(u,v-1)`` the normal
    is ``normalise(dy x dx)``. Sign: for OpenCV axes that is ``-(dx x dy)``, which for a wall facing the
    camera gives (0, 0, -1), i.e. the same "faces the camera" convention as :func:`camera_space_normals`
    (and PGSR's ``cross(right - left, top - bottom)``).

    border="zero" (the reference): the one-pixel frame has no 4-neighbourhood and gets a zero normal (so it
    adds a constant, gradient-free 1 to :func:`~aligngs.train.losses.normal_consistency_loss`; pass
    a valid mask to leave it out). border="replicate": the point map is edge-padded, giving one-sided
    differences there. ``alpha`` [H,W] (optional): the result is multiplied by ``alpha.detach()`` (section 4).
    Zero-length cross products (e.g. all-zero depth) give zero normals with finite gradients.
    """
    if depth.dim() != 2:
        raise ValueError(f"depth_to_normals: depth must be [H,W], got {list(depth.shape)}")
    if border not in ("zero", "replicate"):
        raise ValueError(f"depth_to_normals: border must be 'zero' or 'replicate', got {border!r}")
    H, W = depth.shape
    Kt = torch.as_tensor(np.asarray(K) if not isinstance(K, torch.Tensor) else K, dtype=depth.dtype, device=depth.device)
    if tuple(Kt.shape) != (3, 3):
        raise ValueError(f"depth_to_normals: K must be 3x3, got {list(Kt.shape)}")
    fx, fy, cx, cy = Kt[0, 0], Kt[1, 1], Kt[0, 2], Kt[1, 2]
    u = torch.arange(W, dtype=depth.dtype, device=depth.device)[None, :]
    v = torch.arange(H, dtype=depth.dtype, device=depth.device)[:, None]
    P = torch.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], dim=-1)  # [H,W,3]
    if border == "replicate":
        P = F.pad(P.permute(2, 0, 1)[None], (1, 1, 1, 1), mode="replicate")[0].permute(1, 2, 0)
    dx = P[1:-1, 2:] - P[1:-1, :-2]
    dy = P[2:, 1:-1] - P[:-2, 1:-1]
    n = torch.linalg.cross(dy, dx, dim=-1)
    norm = ((n * n).sum(-1, keepdim=True) + 1e-30).sqrt().clamp_min(1e-12)
    n = n / norm
    if border == "zero":
        n = F.pad(n.permute(2, 0, 1), (1, 1, 1, 1))
        n = n.permute(1, 2, 0)
    if alpha is not None:
        if tuple(alpha.shape) != (H, W):
            raise ValueError(f"depth_to_normals: alpha must be [H,W]={[H, W]}, got {list(alpha.shape)}")
        n = n * alpha.detach().to(n.dtype)[..., None]
    return n
