"""Procedural material choices for the synthetic rooms: seeded colour jitter and the wood / fabric / metal specs."""
from __future__ import annotations

import numpy as np

from tools.synth.specs import MaterialSpec


def jitter(rng: np.random.Generator, rgb, amount: float = 0.08) -> tuple[float, float, float]:
    c = np.clip(np.asarray(rgb, dtype=np.float64) * (1.0 + rng.uniform(-amount, amount, 3)), 0.0, 1.0)
    return tuple(float(x) for x in c)


def shade(rgb, f: float) -> tuple[float, float, float]:
    return tuple(float(min(1.0, max(0.0, x * f))) for x in rgb)


WOODS = [(0.30, 0.16, 0.07), (0.45, 0.27, 0.12), (0.20, 0.10, 0.05), (0.55, 0.38, 0.20), (0.36, 0.22, 0.13)]
FABRICS = [(0.12, 0.22, 0.45), (0.45, 0.10, 0.10), (0.18, 0.35, 0.18), (0.50, 0.42, 0.20), (0.30, 0.30, 0.34),
            (0.55, 0.25, 0.35), (0.10, 0.35, 0.38)]
WALL_COLORS = [(0.70, 0.66, 0.58), (0.62, 0.68, 0.70), (0.72, 0.62, 0.55), (0.60, 0.66, 0.56), (0.74, 0.72, 0.68)]
METAL_COLOR = (0.55, 0.55, 0.57)


def wood(rng, scale=8.0) -> MaterialSpec:
    a = jitter(rng, WOODS[rng.integers(len(WOODS))])
    return MaterialSpec("wood", a, shade(a, 0.55), scale=scale * rng.uniform(0.8, 1.25), roughness=0.5)


def fabric(rng, pattern: str | None = None) -> MaterialSpec:
    a = jitter(rng, FABRICS[rng.integers(len(FABRICS))])
    pat = pattern or ("fabric", "weave")[rng.integers(2)]
    return MaterialSpec(pat, a, shade(a, 0.5), scale=rng.uniform(10.0, 16.0), roughness=0.85)


def metal(rng) -> MaterialSpec:
    a = jitter(rng, METAL_COLOR)
    return MaterialSpec("metal", a, shade(a, 0.6), scale=30.0, roughness=0.35)
