"""The Gaussian scene: raw parameters in a ParameterDict, in gsplat's naming and storage conventions.

``means`` [N,3]; ``quats`` [N,4] wxyz (unnormalised); ``scales`` [N,3] log-scales; ``opacities`` [N] logits;
``sh0`` [N,1,3] and ``shN`` [N,K-1,3] spherical-harmonic coefficients; optionally ``semantics`` [N,S] (the
per-Gaussian semantic vector of AlignGS, zeros at init). These are exactly the keys and activations that
``gsplat.strategy.DefaultStrategy`` expects, so densification works on them unchanged.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

SH_C0 = 0.28209479177387814


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh: torch.Tensor) -> torch.Tensor:
    return sh * SH_C0 + 0.5


def knn_init_scales(points: np.ndarray, k: int = 3) -> np.ndarray:
    """sqrt(mean squared distance to the k nearest neighbours) per point (the 3DGS isotropic init)."""
    n = len(points)
    if n < 2:
        return np.full(n, 0.01, dtype=np.float32)
    k_eff = min(k, n - 1)
    dist, _ = cKDTree(points).query(points, k=k_eff + 1)
    d2 = np.asarray(dist, dtype=np.float64)[:, 1:] ** 2
    scale = np.sqrt(np.maximum(d2.mean(axis=1), 1e-14))
    return scale.astype(np.float32)


def knn_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit surface normals [P,3] of a point cloud: the least-variance axis of each point's k nearest neighbours
    (itself included), signed so that the x component is >= 0 (a Gaussian's normal has no sign)."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3:
        return np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (n, 1))
    _, idx = cKDTree(pts).query(pts, k=min(k, n))
    nb = pts[idx] - pts[idx].mean(axis=1, keepdims=True)  # [P,k,3]
    _, vecs = np.linalg.eigh(np.einsum("pki,pkj->pij", nb, nb))  # ascending eigenvalues
    normals = vecs[:, :, 0]
    normals *= np.where(normals[:, :1] < 0, -1.0, 1.0)
    return normals.astype(np.float32)


def quats_x_to(normals: np.ndarray) -> np.ndarray:
    """wxyz unit quaternions [P,4] of the shortest rotations taking the x axis to ``normals`` [P,3] (unit, x >= 0,
    so the rotation is never the degenerate half turn): (1 + n_x, 0, -n_z, n_y), normalised."""
    q = np.stack([1.0 + normals[:, 0], np.zeros(len(normals)), -normals[:, 2], normals[:, 1]], axis=1)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class GaussianModel:
    params: torch.nn.ParameterDict
    sh_degree: int

    @property
    def n(self) -> int:
        return int(self.params["means"].shape[0])

    @property
    def device(self) -> torch.device:
        return self.params["means"].device

    @property
    def semantic_dim(self) -> int:
        return int(self.params["semantics"].shape[1]) if "semantics" in self.params else 0

    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        colors: np.ndarray,
        *,
        sh_degree: int = 3,
        init_opacity: float = 0.1,
        semantic_dim: int = 0,
        device: str | torch.device = "cpu",
        orientation: str = "identity",
    ) -> "GaussianModel":
        """Initialise from a coloured point cloud: KNN isotropic scales, opacity 0.1, DC from colour, and rotations
        by ``orientation``: "identity" (3DGS and the reference) or "normals" (each Gaussian's first axis along the
        points' local surface normal, :func:`knn_normals`). The scales are equal, so the rendered Gaussians are the
        same either way; what differs is which axis the AlignGS terms treat as the normal while the three scales
        tie (the first: the min-scale term flattens it and the normal terms read it)."""
        points = np.asarray(points, dtype=np.float32)
        colors = np.asarray(colors, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise ValueError(f"initial points must be a non-empty [P,3] array, got shape {points.shape}")
        if colors.shape != points.shape:
            raise ValueError(f"initial colours must match points {points.shape}, got {colors.shape}")
        if not np.isfinite(points).all():
            raise ValueError("initial points contain NaN or inf")
        n = len(points)
        scales = knn_init_scales(points)
        K = (sh_degree + 1) ** 2
        means = torch.tensor(points)  # a copy: training updates the means in place, never the caller's array
        if orientation == "normals":
            quats = torch.from_numpy(quats_x_to(knn_normals(points)))
        elif orientation == "identity":
            quats = torch.zeros(n, 4)
            quats[:, 0] = 1.0
        else:
            raise ValueError(f"orientation must be 'identity' or 'normals', got {orientation!r}")
        log_scales = torch.log(torch.from_numpy(scales))[:, None].repeat(1, 3)
        opac = torch.full((n,), float(math.log(init_opacity / (1 - init_opacity))))
        sh0 = rgb_to_sh(torch.from_numpy(np.clip(colors, 0, 1)))[:, None, :]
        shN = torch.zeros(n, K - 1, 3)
        tensors = {"means": means, "scales": log_scales, "quats": quats, "opacities": opac, "sh0": sh0, "shN": shN}
        if semantic_dim > 0:
            tensors["semantics"] = torch.zeros(n, semantic_dim)
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in tensors.items()})
        return cls(params=params, sh_degree=sh_degree)

    # --- activated views -------------------------------------------------------------------------
    def activated(self) -> dict[str, torch.Tensor]:
        p = self.params
        return {
            "means": p["means"],
            "quats": p["quats"],
            "scales": torch.exp(p["scales"]),
            "opacities": torch.sigmoid(p["opacities"]),
            "sh": torch.cat([p["sh0"], p["shN"]], dim=1),
        }

    # --- persistence -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"sh_degree": self.sh_degree, "params": {k: v.detach().cpu() for k, v in self.params.items()}}

    @classmethod
    def from_state_dict(cls, state: dict, device: str | torch.device = "cpu") -> "GaussianModel":
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in state["params"].items()})
        return cls(params=params, sh_degree=int(state["sh_degree"]))

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.params.items()}
