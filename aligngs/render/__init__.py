"""Gaussian rasterization with gsplat 1.5.3's interface: gsplat on CUDA, a pure-torch tile
rasterizer on CPU (see ``aligngs.render.api.rasterization``); ``render_features`` re-uses a CPU
render's compositing weights for a second, geometry-detached feature pass; ``WorkerPool`` keeps the CPU
rasterizer's threads alive across the renders of a loop (``cpu_workers=pool``)."""

from ._features import render_features
from ._threads import WorkerPool, default_workers
from .api import rasterization

__all__ = ["WorkerPool", "default_workers", "rasterization", "render_features"]
