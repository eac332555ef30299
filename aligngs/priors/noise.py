"""Degrade ground-truth label maps the way a real 2D segmenter errs, to judge the 3D lift against teacher quality.

Three error types, each per view and seeded:
- boundary errors: each class region grows or shrinks by a few pixels (dilation / erosion of the label map);
- segment swaps: some connected segments get another class present in the view;
- systematic confusion between look-alike classes (chair <-> armchair, table <-> desk, ...), per view.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .ade20k import class_id

CONFUSABLE = [
    ("chair", "armchair"), ("table", "desk"), ("cabinet", "chest of drawers"), ("shelf", "bookcase"),
    ("sofa", "armchair"), ("lamp", "light"), ("wall", "building"), ("bed", "sofa"),
]


def _confusions() -> dict[int, int]:
    out = {}
    for a, b in CONFUSABLE:
        out.setdefault(class_id(a), class_id(b))
    return out


def degrade_labels(labels: np.ndarray, rng: np.random.Generator, level: float = 1.0) -> np.ndarray:
    """A noisy copy of ``labels`` ([H,W] int, -1 unknown). ``level`` 0 returns the input unchanged."""
    lab = labels.astype(np.int32).copy()
    if level <= 0:
        return lab
    h, w = lab.shape
    # 1. boundary errors: grow a random subset of classes by a few pixels (others shrink accordingly)
    radius = max(1, int(round(level * max(h, w) / 80)))
    for c in rng.permutation(np.unique(lab[lab >= 0])):
        if rng.random() < 0.5:
            grown = ndimage.binary_dilation(lab == c, iterations=radius)
            lab[grown & (lab >= 0)] = c
    # 2. per-view random swaps of whole segments to another class present in the view
    present = np.unique(lab[lab >= 0])
    if len(present) > 1:
        for c in present:
            comps, n = ndimage.label(lab == c)
            for k in range(1, n + 1):
                if rng.random() < 0.15 * level:
                    lab[comps == k] = rng.choice(present[present != c])
    # 3. look-alike confusion: in this view, a confusable class is mislabelled with probability 0.5 * level
    for a, b in _confusions().items():
        if rng.random() < 0.5 * level:
            lab[labels == a] = b
    return lab
