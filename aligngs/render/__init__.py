"""Gaussian rasterization with gsplat 1.5.3's interface: gsplat on CUDA, a pure-torch tile
rasterizer on CPU (see ``aligngs.render.api.rasterization``); ``render_features`` re-uses a CPU
render's compositing weights for a second, geometry-detached feature pass."""

from ._features import render_features
from .api import rasterization

__all__ = ["rasterization", "render_features"]
