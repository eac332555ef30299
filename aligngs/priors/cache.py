"""Per-view teacher priors, computed once per image and cached on disk.

:func:`compute_priors` runs the semantic and depth teachers over the training views and returns one
:class:`Priors` per frame. Network teachers' outputs go through :class:`PriorCache`: an entry is keyed by

    sha256( kind, teacher.cache_tag (teacher kind + checkpoint + output convention), H x W,
            sha256 of the image array as loaded at render resolution (dtype, shape, bytes) )

so a re-run with other training settings (iterations, loss weights, ...) finds every entry and never runs a
teacher, while another checkpoint, output convention, resolution or a changed image misses. Entries are ``.npy``
files written atomically (temporary file + ``os.replace``), read with ``allow_pickle=False``: semantic scores as
float16 [C,H,W], depth as float32 [H,W]. A corrupt or mismatching entry is logged and recomputed.

Cheap teachers (provided labels, sensor depth) are not cached. ``Frame.mask`` (False = invalid pixel) is applied
to both validity masks after the cache, so editing masks never invalidates it.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.types import Frame
from ..progress import CancelFn, Progress, ProgressFn, check_cancel
from ..wire.jsonio import atomic_open

log = logging.getLogger(__name__)

__all__ = ["Priors", "PriorCache", "compute_priors", "scores_to_labels", "image_digest"]


@dataclass
class Priors:
    """What the teachers say about one view (any part None when that teacher is off)."""

    sem_scores: np.ndarray | None = None  # [C,H,W] float16 (log-probabilities by default; see teachers.py)
    sem_valid: np.ndarray | None = None  # [H,W] bool
    labels: np.ndarray | None = None  # [H,W] int32 argmax of sem_scores, -1 where invalid
    depth: np.ndarray | None = None  # [H,W] float32 depth-like (increasing with distance)
    depth_valid: np.ndarray | None = None  # [H,W] bool


def scores_to_labels(scores: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Argmax over the class axis as int32 [H,W]; -1 where ``valid`` is False."""
    labels = np.argmax(scores, axis=0).astype(np.int32)
    if valid is not None:
        labels[~valid] = -1
    return labels


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image array as loaded (dtype, shape and raw bytes)."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


class PriorCache:
    """Teacher outputs on disk under ``root/<kind>/<key[:2]>/<key>.npy``; counts hits and misses."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(kind: str, teacher_tag: str, image: np.ndarray) -> str:
        h, w = image.shape[:2]
        head = f"{kind}\x00{teacher_tag}\x00{h}x{w}\x00{image_digest(image)}"
        return hashlib.sha256(head.encode()).hexdigest()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.npy"

    def load(
        self, kind: str, key: str, shape: tuple[int, ...] | None = None, dtype: np.dtype | None = None,
        mmap: bool = False,
    ) -> np.ndarray | None:
        """The cached array, or None (missing, unreadable, or not the expected shape / dtype)."""
        p = self.path(kind, key)
        if not p.is_file():
            return None
        try:
            arr = np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (OSError, ValueError, EOFError) as e:
            log.warning("prior cache: unreadable entry %s (%s): recomputing", p, e)
            return None
        if (shape is not None and tuple(arr.shape) != tuple(shape)) or (dtype is not None and arr.dtype != dtype):
            log.warning("prior cache: entry %s has shape %s dtype %s, expected %s %s: recomputing",
                        p, arr.shape, arr.dtype, shape, dtype)
            return None
        return arr

    def save(self, kind: str, key: str, array: np.ndarray) -> Path:
        """Write atomically (``aligngs.wire.atomic_open``: a temporary file in the same folder, then ``os.replace``)."""
        p = self.path(kind, key)
        with atomic_open(p, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        return p


def _batches(items: list[int], size: int):
    for s in range(0, len(items), max(1, size)):
        yield items[s : s + max(1, size)]


def _run_teacher(
    kind: str,
    teacher,
    frames: Sequence[Frame],
    cache: PriorCache | None,
    dtype: np.dtype,
    out_main: list,
    out_valid: list,
    tick,
    should_cancel: CancelFn | None,
    mmap: bool,
) -> None:
    """Fill out_main / out_valid (per frame) from the cache or the teacher."""
    n = len(frames)
    use_cache = cache is not None and teacher.cacheable
    keys: list[str | None] = [None] * n
    todo: list[int] = []
    for i, f in enumerate(frames):
        if use_cache:
            if f.image is None:
                raise ValueError(f"frame {f.name!r}: teacher {teacher.name!r} needs Frame.image, which is None")
            keys[i] = cache.key(kind, teacher.cache_tag, f.image)
            h, w = f.image.shape[:2]
            shape = (teacher.num_classes, h, w) if kind == "semantic" else (h, w)
            arr = cache.load(kind, keys[i], shape, dtype, mmap=mmap)
            if arr is not None:
                cache.hits += 1
                out_main[i] = arr
                out_valid[i] = np.ones((h, w), dtype=bool) if kind == "semantic" else np.isfinite(arr)
                tick(f"{kind} prior {f.name} (cached)")
                continue
            cache.misses += 1
        todo.append(i)
    batch_size = getattr(teacher, "batch_size", 1) or 1
    for chunk in _batches(todo, batch_size):
        check_cancel(should_cancel)
        preds = teacher.predict_frames([frames[i] for i in chunk])
        for i, pred in zip(chunk, preds):
            main = pred.scores if kind == "semantic" else pred.depth
            main = np.asarray(main).astype(dtype, copy=False)
            if not np.isfinite(main).all() and kind == "semantic":
                raise ValueError(f"frame {frames[i].name!r}: teacher {teacher.name!r} produced non-finite scores")
            if use_cache:
                cache.save(kind, keys[i], main)
            out_main[i] = main
            out_valid[i] = np.asarray(pred.valid, dtype=bool)
            tick(f"{kind} prior {frames[i].name}")


def compute_priors(
    frames: Sequence[Frame],
    semantic_teacher=None,
    depth_teacher=None,
    cache: PriorCache | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    *,
    mmap: bool = False,
) -> list[Priors]:
    """Teacher priors for every frame (same order), through ``cache`` when given.

    ``semantic_teacher`` / ``depth_teacher`` may be None (that part of every :class:`Priors` stays None).
    Frames must already be at render resolution. ``mmap=True`` returns cached arrays memory-mapped read-only
    (saves RAM for many large views). Progress is reported as stage "priors"; ``should_cancel`` is checked before
    every teacher batch (entries computed so far stay cached).
    """
    frames = list(frames)
    n = len(frames)
    teachers = [t for t in (semantic_teacher, depth_teacher) if t is not None]
    total = max(1, n * len(teachers))
    done = [0]

    def tick(message: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(Progress("priors", done[0] / total, message))

    check_cancel(should_cancel)
    sem: list = [None] * n
    sem_valid: list = [None] * n
    depth: list = [None] * n
    depth_valid: list = [None] * n
    if semantic_teacher is not None:
        _run_teacher("semantic", semantic_teacher, frames, cache, np.dtype(np.float16), sem, sem_valid, tick,
                     should_cancel, mmap)
    if depth_teacher is not None:
        _run_teacher("depth", depth_teacher, frames, cache, np.dtype(np.float32), depth, depth_valid, tick,
                     should_cancel, mmap)
    if cache is not None and teachers:
        log.info("priors: %d cache hits, %d misses (%s)", cache.hits, cache.misses, cache.root)

    out: list[Priors] = []
    for i, f in enumerate(frames):
        mask = None if f.mask is None else np.asarray(f.mask, dtype=bool)
        sv, dv = sem_valid[i], depth_valid[i]
        if mask is not None:
            for name, v in (("semantic", sv), ("depth", dv)):
                if v is not None and v.shape != mask.shape:
                    raise ValueError(f"frame {f.name!r}: Frame.mask shape {list(mask.shape)} differs from the "
                                     f"{name} prior's {list(v.shape)}")
            sv = None if sv is None else sv & mask
            dv = None if dv is None else dv & mask
        labels = None if sem[i] is None else scores_to_labels(sem[i], sv)
        out.append(Priors(sem_scores=sem[i], sem_valid=sv, labels=labels, depth=depth[i], depth_valid=dv))
    return out
