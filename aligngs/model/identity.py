"""Gaussian Grouping identity encodings: a per-Gaussian identity vector and the linear classifier over it.

Gaussian Grouping (Ye et al., ECCV 2024; reference code lkeab/gaussian-grouping) gives every Gaussian a
16-d "identity encoding" (stored as an SH degree-0 coefficient, i.e. a view-independent feature), renders it by
alpha blending like a colour, and classifies each pixel with a 1x1 convolution + softmax into ``K`` object ids
(``num_classes`` 256 in its dataset configs). Its numbers, which our defaults follow
(:class:`aligngs.config.IdentityConfig`):

- encoding size 16, initialised like its DC colours from uniform noise: ``(U(0,1) - 0.5) / C0``;
- the encodings learn at the colour rate (``feature_lr`` 0.0025), the classifier at 5e-4 (Adam);
- the 2-D loss is the pixel cross-entropy divided by ``log K``; the 3-D regulariser is in
  :mod:`aligngs.train.losses.identity`.

Here the encodings live in ``GaussianModel.params["identities"]`` ([N, D]) so densification clones/splits/prunes
them with the rest, and they are rendered in the detached-geometry feature pass (the same one as the semantic
vector; see :func:`aligngs.train.objects.detached_channels`). Object id 0 is "no object" (background / unlabelled
pixels of the instance maps).
"""
from __future__ import annotations

import numpy as np
import torch

from .gaussians import SH_C0

__all__ = ["IdentityClassifier", "initial_identities", "add_identities"]


def initial_identities(n: int, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """[n, dim] float32 identity encodings as Gaussian Grouping initialises them: RGB2SH(U(0,1))."""
    if n < 0 or dim < 1:
        raise ValueError(f"initial_identities: need n >= 0 and dim >= 1, got {n}, {dim}")
    g = torch.Generator().manual_seed(int(seed))
    return (torch.rand(n, dim, generator=g) - 0.5) / SH_C0


def add_identities(model, dim: int = 16, seed: int = 0) -> None:
    """Give a :class:`~aligngs.model.gaussians.GaussianModel` an ``identities`` parameter [N, dim] (in place)."""
    if "identities" in model.params:
        raise ValueError("add_identities: the model already has identity encodings")
    ids = initial_identities(model.n, dim, seed).to(model.device)
    model.params["identities"] = torch.nn.Parameter(ids)


class IdentityClassifier(torch.nn.Module):
    """Gaussian Grouping's 1x1 classifier: rendered identity [D,H,W] -> object logits [K,H,W].

    ``forward`` takes [D,H,W] (or [B,D,H,W]); ``classify`` takes per-Gaussian encodings [N,D] -> [N,K]
    (what the 3-D regulariser and the per-Gaussian object ids use). ``lr`` is read by the trainer for this
    module's Adam group (Gaussian Grouping: 5e-4).
    """

    def __init__(self, dim: int = 16, num_objects: int = 256, lr: float = 5e-4):
        super().__init__()
        if dim < 1 or num_objects < 2:
            raise ValueError(f"IdentityClassifier: need dim >= 1 and num_objects >= 2, got {dim}, {num_objects}")
        self.dim, self.num_objects, self.lr = int(dim), int(num_objects), float(lr)
        self.linear = torch.nn.Linear(self.dim, self.num_objects)

    def forward(self, rendered: torch.Tensor) -> torch.Tensor:
        if rendered.dim() not in (3, 4) or rendered.shape[-3] != self.dim:
            raise ValueError(f"IdentityClassifier: expected [{self.dim},H,W] or [B,{self.dim},H,W], "
                             f"got {list(rendered.shape)}")
        return torch.einsum("kc,...chw->...khw", self.linear.weight, rendered) + self.linear.bias[:, None, None]

    def classify(self, encodings: torch.Tensor) -> torch.Tensor:
        if encodings.dim() != 2 or encodings.shape[1] != self.dim:
            raise ValueError(f"IdentityClassifier.classify: expected [N,{self.dim}], got {list(encodings.shape)}")
        return self.linear(encodings)

    @torch.no_grad()
    def object_ids(self, encodings: torch.Tensor, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """(argmax object id int32 [N], its softmax probability float32 [N]) per Gaussian."""
        ids, conf = [], []
        for s in range(0, encodings.shape[0], chunk):
            p = torch.softmax(self.classify(encodings[s:s + chunk].float()), dim=-1)
            c, i = p.max(dim=-1)
            ids.append(i.int().cpu().numpy())
            conf.append(c.float().cpu().numpy())
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        return np.concatenate(ids), np.concatenate(conf)
