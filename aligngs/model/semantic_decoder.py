"""The compact semantic variant's decoder: a per-pixel linear map from a few rendered channels to class logits."""
from __future__ import annotations

import torch


class CompactSemanticDecoder(torch.nn.Module):
    """1x1 linear decoder for the compact semantic variant (Feature-3DGS / Gaussian Grouping style).

    Gaussians carry ``dim`` channels (e.g. 16); the rendered [dim,H,W] map is decoded per pixel into
    [num_classes,H,W] logits before the semantic losses (:mod:`aligngs.train.losses.semantic`).
    ``decode_features`` applies the same map to per-Gaussian features [N,dim] -> [N,num_classes] (for labelling and
    editing).
    Being linear, decoding after alpha blending equals blending decoded per-Gaussian logits except for the
    bias, which is added once per pixel here (rather than weighted by the pixel's alpha).
    """

    def __init__(self, dim: int = 16, num_classes: int = 150):
        super().__init__()
        if dim < 1 or num_classes < 1:
            raise ValueError(f"CompactSemanticDecoder: dim and num_classes must be >= 1, got {dim}, {num_classes}")
        self.dim = int(dim)
        self.num_classes = int(num_classes)
        self.linear = torch.nn.Linear(self.dim, self.num_classes)

    def forward(self, rendered: torch.Tensor) -> torch.Tensor:
        """[dim,H,W] (or [B,dim,H,W]) -> [num_classes,H,W] (or [B,num_classes,H,W])."""
        if rendered.dim() not in (3, 4) or rendered.shape[-3] != self.dim:
            raise ValueError(f"CompactSemanticDecoder: expected [{self.dim},H,W] or [B,{self.dim},H,W], "
                             f"got {list(rendered.shape)}")
        out = torch.einsum("kc,...chw->...khw", self.linear.weight, rendered)
        return out + self.linear.bias[:, None, None]

    def decode_features(self, features: torch.Tensor) -> torch.Tensor:
        """Per-Gaussian features [N,dim] -> logits [N,num_classes]."""
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"CompactSemanticDecoder.decode_features: expected [N,{self.dim}], got {list(features.shape)}")
        return self.linear(features)
