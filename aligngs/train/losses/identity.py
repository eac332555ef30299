"""Gaussian Grouping's two identity losses as pure torch functions (no weights applied, except where noted).

- :func:`identity_ce`: the 2-D identity loss. Pixel cross-entropy of the classified rendered identities
  [K,H,W] against an object-id map [H,W] (long; ``ignore_index`` pixels skipped), mean over pixels, divided by
  ``log K`` ("normalize to (0,1)" in the reference's train.py).
- :func:`identity_knn_kl`: the 3-D regulariser (reference ``loss_cls_3d``). Optionally subsample the Gaussians
  to ``max_points``; draw ``sample_size`` of them; for each, its ``k`` nearest Gaussians by 3-D position (the
  point itself included, as ``topk`` over ``cdist`` includes it in the reference); the loss is the mean over the
  samples and their neighbours of KL(p_i || p_j) = sum_c p_i,c (log(p_i,c + 1e-10) - log(p_j,c + 1e-10)),
  divided by the number of classes K. The reference multiplies by ``lambda_val`` (2.0) inside; here the caller
  applies that weight. Positions are treated as constants (the reference passes ``_xyz.detach()``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["identity_ce", "identity_knn_kl", "knn_indices"]


def identity_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
    """CE(logits [K,H,W], target [H,W]) averaged over the non-ignored pixels, divided by log K."""
    if logits.dim() != 3:
        raise ValueError(f"identity_ce: logits must be [K,H,W], got {list(logits.shape)}")
    K = logits.shape[0]
    if target.shape != logits.shape[1:]:
        raise ValueError(f"identity_ce: target {list(target.shape)} must be [H,W]={list(logits.shape[1:])}")
    t = target.long()
    keep = t != ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    if int(t[keep].max()) >= K or int(t[keep].min()) < 0:
        raise ValueError(f"identity_ce: object ids must lie in 0..{K - 1} (or {ignore_index} = ignore)")
    ce = F.cross_entropy(logits[None], t[None], ignore_index=ignore_index, reduction="mean")
    return ce / math.log(K)


def knn_indices(positions: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices [Q, k] of the k nearest ``positions`` of each query (a query that is one of the positions finds
    itself first). scipy cKDTree; ties broken like a stable sort of distances."""
    from scipy.spatial import cKDTree

    k_eff = min(int(k), len(positions))
    _, idx = cKDTree(positions).query(queries, k=k_eff)
    return np.asarray(idx, dtype=np.int64).reshape(len(queries), k_eff)


def identity_knn_kl(
    positions: torch.Tensor,
    probs: torch.Tensor,
    k: int = 5,
    sample_size: int = 1000,
    max_points: int = 200_000,
    generator: torch.Generator | None = None,
    sample: torch.Tensor | None = None,
) -> torch.Tensor:
    """The 3-D KNN KL regulariser (unweighted). positions [N,3] (detached inside), probs [N,K] softmax outputs.

    ``sample`` (optional long [S]) fixes the sampled Gaussians (tests); otherwise ``max_points`` / ``sample_size``
    random ones are drawn with ``generator``.
    """
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError(f"identity_knn_kl: positions must be [N,3], got {list(positions.shape)}")
    if probs.dim() != 2 or probs.shape[0] != positions.shape[0]:
        raise ValueError(f"identity_knn_kl: probs must be [N,K] with N={positions.shape[0]}, got {list(probs.shape)}")
    if k < 1:
        raise ValueError(f"identity_knn_kl: k must be >= 1, got {k}")
    n = positions.shape[0]
    if n == 0:
        return probs.sum() * 0.0
    pos = positions.detach()
    pool = torch.arange(n, device=positions.device)
    if sample is None:
        if n > max_points:
            pool = torch.randperm(n, generator=generator)[:max_points].to(positions.device)
        sample = pool[torch.randperm(len(pool), generator=generator)[:sample_size].to(positions.device)]
    pool_np = pool.cpu().numpy()
    nn = knn_indices(pos[pool].cpu().numpy().astype(np.float64), pos[sample].cpu().numpy().astype(np.float64), k)
    neigh = torch.from_numpy(pool_np[nn]).to(positions.device)  # [S,k] global indices
    p_i = probs[sample][:, None, :]  # [S,1,K]
    p_j = probs[neigh]  # [S,k,K]
    kl = (p_i * (torch.log(p_i + 1e-10) - torch.log(p_j + 1e-10))).sum(dim=-1)
    return kl.mean() / probs.shape[1]
