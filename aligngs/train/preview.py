"""The live point preview: a decimated, wire-sized snapshot of the Gaussians taken while they train.

The backend streams it to Blender every few seconds (``TrainConfig.preview_every``), where one point object is
updated in place. The snapshot keeps the most opaque Gaussians (what a render would show most), caps them at
``max_points``, and stores positions as float16, colours (SH DC) as uint8 and the current class argmax as uint8.
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.gaussians import GaussianModel, sh_to_rgb
from ..progress import PointPreview

NO_CLASS = 255


@torch.no_grad()
def point_preview(model: GaussianModel, *, max_points: int = 50_000, decoder: torch.nn.Module | None = None,
                  min_opacity: float = 0.05) -> PointPreview:
    """Up to ``max_points`` of the model's Gaussians with opacity >= ``min_opacity``, the most opaque first.

    ``decoder``: the compact semantic variant's decoder (``decode_features``) when the Gaussians carry compact
    features; without one a 150-d semantic vector is argmax-ed directly. Class ids are None when the model has no
    semantics.
    """
    if max_points < 1:
        raise ValueError(f"point_preview: max_points must be >= 1, got {max_points}")
    p = model.params
    opacity = torch.sigmoid(p["opacities"].detach()).flatten()
    visible = opacity >= min_opacity
    if int(visible.sum()) > max_points:  # raise the bar to the max_points-th largest opacity (a threshold, no sort)
        bar = torch.topk(opacity[visible], max_points, sorted=False).values.min()
        visible &= opacity >= bar
    keep = torch.nonzero(visible).flatten()[:max_points]  # index order: stable between previews (ties cut at the end)
    means = p["means"].detach()[keep].float().cpu().numpy()
    rgb = sh_to_rgb(p["sh0"].detach()[keep, 0, :]).clamp(0.0, 1.0)
    colors = (rgb * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    class_ids = None
    if "semantics" in p and p["semantics"].shape[1] > 0:
        feats = p["semantics"].detach()[keep]
        logits = decoder.decode_features(feats) if decoder is not None else feats
        ids = logits.argmax(dim=1)
        if decoder is None:
            ids[(feats == 0).all(dim=1)] = NO_CLASS  # untrained zeros: no class yet, not class 0 ("wall")
        class_ids = ids.clamp(max=NO_CLASS).to(torch.uint8).cpu().numpy()
    return PointPreview(positions=np.clip(means, -65000, 65000).astype(np.float16), colors=colors,
                        class_ids=class_ids, total=model.n)
