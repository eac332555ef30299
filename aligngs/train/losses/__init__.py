"""AlignGS training-loss terms (docs/method.md §2-4) as pure, differentiable torch functions.

Every function takes plain tensors (shapes in the docstrings), returns a 0-d tensor and applies NO weight:
the trainer multiplies by the :class:`aligngs.config.LossConfig` weights and decides when each term is on.
Targets (teacher scores, labels, depth priors) are treated as constants (detached).

Shapes: images are channel-first ``[C, H, W]`` for class scores (as rendered by gsplat after a permute)
and channel-last ``[H, W, 3]`` for normal maps; label maps are ``[H, W]`` int64/int32 with -1 = unknown.

Every term returns an exact 0 that is still attached to the graph (finite, zero gradients) when it has
nothing to average over (no valid pixel, no boundary pair, no visible Gaussian) instead of dividing by 0.
"""
from .depth import pearson_depth_loss
from .normal import normal_consistency_loss, semantic_boundary_normal_loss
from .scale import min_scale_loss
from .semantic import semantic_ce, semantic_edge_mask, semantic_kl

__all__ = [
    "semantic_kl",
    "semantic_ce",
    "semantic_edge_mask",
    "pearson_depth_loss",
    "normal_consistency_loss",
    "semantic_boundary_normal_loss",
    "min_scale_loss",
]
