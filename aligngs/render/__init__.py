"""Gaussian rasterization with gsplat 1.5.3's interface: gsplat on CUDA, a pure-torch tile
rasterizer on CPU (see ``aligngs.render.api.rasterization``)."""

from .api import rasterization

__all__ = ["rasterization"]
