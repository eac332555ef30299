"""Train/test splits and sparse-view subsampling."""
from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from ..config import DataConfig, SplitMode, choices
from .errors import DataError
from .types import Frame, Scene

SPLIT_CHOICES = choices(SplitMode)


def evenly_spaced(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (first and last included); all if k >= n."""
    if k <= 0:
        raise ValueError(f"need at least one view, got {k}")
    if k >= n:
        return list(range(n))
    if k == 1:
        return [(n - 1) // 2]
    return [int(i) for i in np.round(np.linspace(0, n - 1, k)).astype(int)]


def _match(names: list[str], wanted: str) -> int:
    if wanted in names:
        return names.index(wanted)
    for key in (lambda n: PurePosixPath(n).name, lambda n: PurePosixPath(n).stem):
        hits = [i for i, n in enumerate(names) if key(n) == wanted]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise DataError(None, f"test view name {wanted!r} is ambiguous ({', '.join(names[i] for i in hits)})")
    raise DataError(None, f"test view name {wanted!r} is not a frame of the scene")


def split_frames(scene: Scene, cfg: DataConfig | None = None) -> tuple[list[Frame], list[Frame]]:
    """(train, test) frames, both in scene order.

    Test views: ``cfg.test_names`` if given (matched by full name, else by file name or stem when unique);
    else the input's own split (``scene.meta["split"]``, see the loaders) when ``cfg.split`` is ``auto`` or
    ``scene``; else every ``cfg.test_every``-th frame starting with frame 0 (0 = no test views).
    Train views: the input's train list when it has one, else the rest; subsampled to ``cfg.max_train_views``
    evenly spaced views when set.
    """
    cfg = cfg or DataConfig()
    frames = scene.frames
    names = scene.names()
    if cfg.split not in SPLIT_CHOICES:
        raise ValueError(f"DataConfig.split must be one of {', '.join(SPLIT_CHOICES)}, got {cfg.split!r}")
    declared = scene.meta.get("split") if cfg.split != "every" else None
    if cfg.split == "scene" and declared is None:
        raise DataError(scene.root, "split 'scene' asked for, but the input declares no train/test split "
                        "(transforms.json test_filenames / val_filenames, or per-frame \"split\" keys); "
                        "use split 'every' with test_every instead")
    train_only: set[int] | None = None
    if cfg.test_names is not None:
        test_idx = sorted({_match(names, n) for n in cfg.test_names})
    elif declared is not None:
        test_idx = sorted({_match(names, n) for n in declared["test"]})
        if declared.get("train") is not None:
            train_only = {_match(names, n) for n in declared["train"]}
    elif cfg.test_every and cfg.test_every > 0:
        test_idx = list(range(0, len(frames), cfg.test_every))
    elif cfg.test_every < 0:
        raise ValueError(f"DataConfig.test_every must be >= 0, got {cfg.test_every}")
    else:
        test_idx = []
    test_set = set(test_idx)
    train_idx = [i for i in range(len(frames)) if i not in test_set and (train_only is None or i in train_only)]
    if not train_idx:
        raise DataError(scene.root, f"the split leaves no training views ({len(frames)} frames, {len(test_idx)} test)")
    if cfg.max_train_views is not None:
        train_idx = [train_idx[i] for i in evenly_spaced(len(train_idx), cfg.max_train_views)]
    return [frames[i] for i in train_idx], [frames[i] for i in test_idx]
