"""Simulated teachers for benchmarks: a monocular-like depth prior and a network-like semantic teacher, both built
from ground truth with errors of the kinds the real networks make, seeded and reproducible.

Why: with ground-truth depth as the "monocular" prior and ground-truth labels as the "teacher", a benchmark measures
an oracle, not AlignGS. Real teachers err in structured ways that multi-view lifting cannot average away; these
simulators reproduce those structures so a benchmark can say what AlignGS does with priors of realistic quality.

Depth prior (:func:`simulate_depth_prior`, error model :class:`DepthPriorModel`), applied to a view's true depth:

1. **whole objects misplaced in depth**: a seeded subset of object instances (``misplaced_fraction``, chosen once per
   scene, the same objects in every view) is pushed nearer or farther by ``misplace_rel`` of its depth (sign fixed per
   object, magnitude jittered +-30 % per view) -- monocular networks misjudge an object's size/distance as a whole;
2. **blur at object edges**: the depth is Gaussian-blurred (sigma ``edge_blur`` x the longer image side) over valid
   pixels, so depth discontinuities become ramps that mix foreground and background (DPT-like soft edges);
3. **low-frequency warp**: multiplied by ``1 + warp * f`` with ``f`` a smooth random field in [-1, 1]
   (a 3x3 grid of uniform values, bicubically upsampled), different per view -- the global shape errors of
   single-image depth;
4. small multiplicative pixel noise (``noise``);
5. **affine ambiguity**: the result is ``s d + b`` with a per-view random scale ``s`` (log-uniform in
   [1/``scale_range``, ``scale_range``]) and shift ``b`` (up to ``shift_rel`` of the median depth): relative depth,
   no metric scale, different per view. The Pearson loss is invariant to it; the SPARS3R dense init must solve it.

Pixels without true depth (0) stay invalid (``valid`` False). :func:`depth_prior_stats` reports the median relative
error after the best per-view affine fit and the Pearson correlation with the truth (strength 1.0 on our synthetic
rooms at 128 px: see the scene benchmark's rows; the issue's held-out case had 5.6 % / 0.98).

Semantic teacher (:func:`plan_teacher` + :func:`simulate_teacher_labels`, error model :class:`TeacherModel`); the
errors are **consistent across views** because they are decided per object instance, once per scene:

1. **whole objects confused with a plausible class**: each "thing" instance (not wall/floor/ceiling) is relabelled, in
   every view, with a look-alike class (:data:`LOOKALIKE`; chair -> armchair, table -> desk, ...) with probability
   ``confuse_prob``;
2. **small objects missed**: instances whose median image-area fraction over the views that see them is below
   ``small_area`` vanish in every view; their pixels take the nearest surviving label (what surrounds them);
3. **low-resolution blocky boundaries**: the teacher "runs" at 1/``block`` of the resolution: labels are the majority
   of each ``block`` x ``block`` cell, upsampled by nearest neighbour (``block`` scales with the image size: it is
   given in px at a 160-px longer side).

Unknown pixels (-1) are filled with the nearest label (a network always answers). Views without an instance map
get only the blocky boundaries (the plan's ``consistent`` is False then and the benchmark row says so).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .ade20k import class_id

__all__ = [
    "DepthPriorModel", "simulate_depth_prior", "depth_prior_stats",
    "TeacherModel", "TeacherPlan", "plan_teacher", "simulate_teacher_labels", "LOOKALIKE", "TEACHER_STRENGTHS",
]

# ------------------------------------------------------------------------------------------------ depth prior


@dataclass(frozen=True)
class DepthPriorModel:
    """Error model of the simulated monocular depth prior (see the module doc). ``strength`` scales every error."""

    strength: float = 1.0
    misplaced_fraction: float = 0.3  # of the object instances (things), the same in every view
    misplace_rel: float = 0.08  # relative depth offset of a misplaced object
    edge_blur: float = 0.008  # Gaussian sigma as a fraction of the longer image side
    warp: float = 0.2  # amplitude of the low-frequency multiplicative warp
    noise: float = 0.01  # per-pixel multiplicative noise (std)
    scale_range: float = 2.0  # per-view scale in [1/r, r] (affine ambiguity)
    shift_rel: float = 0.2  # per-view shift up to this fraction of the median depth


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, grid: int = 3) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a grid x grid uniform lattice, cubic-spline upsampled to ``shape``."""
    lat = rng.uniform(-1.0, 1.0, (grid, grid))
    h, w = shape
    yy = np.linspace(0, grid - 1, h)
    xx = np.linspace(0, grid - 1, w)
    Y, X = np.meshgrid(yy, xx, indexing="ij")
    return ndimage.map_coordinates(lat, [Y, X], order=3, mode="nearest")


def _blur_valid(d: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over valid pixels only (normalised convolution); invalid pixels keep 0."""
    if sigma <= 0:
        return d
    num = ndimage.gaussian_filter(np.where(valid, d, 0.0), sigma, mode="nearest")
    den = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="nearest")
    return np.where(valid, num / np.maximum(den, 1e-9), 0.0)


def simulate_depth_prior(
    depth: np.ndarray,
    rng: np.random.Generator,
    model: DepthPriorModel = DepthPriorModel(),
    instances: np.ndarray | None = None,
    misplaced: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A monocular-like prior for one view: (depth-like float32 [H,W] increasing with distance, valid bool [H,W]).

    ``depth``: true depth [H,W] in metres, 0 = invalid. ``instances``: int [H,W] instance ids (0 = none) and
    ``misplaced``: instance id -> signed relative offset (from :func:`plan_misplaced`, shared by all views);
    without them step 1 is skipped. ``rng`` draws this view's warp, noise and affine ambiguity.
    """
    d = np.asarray(depth, np.float64)
    valid = np.isfinite(d) & (d > 0)
    s = float(model.strength)
    d = np.where(valid, d, 0.0)
    if s > 0 and instances is not None and misplaced:
        for inst, rel in misplaced.items():
            m = (instances == inst) & valid
            if m.any():
                d[m] *= 1.0 + s * rel * (1.0 + 0.3 * rng.standard_normal())
    if s > 0:
        d = _blur_valid(d, valid, s * model.edge_blur * max(d.shape))
        d = d * (1.0 + s * model.warp * _smooth_field(d.shape, rng))
        d = d * (1.0 + s * model.noise * rng.standard_normal(d.shape))
    med = float(np.median(d[valid])) if valid.any() else 1.0
    scale = float(np.exp(rng.uniform(-1, 1) * np.log(max(model.scale_range, 1.0))))
    shift = float(rng.uniform(-1, 1) * model.shift_rel * med)
    shift = max(shift, -0.5 * scale * float(d[valid].min())) if valid.any() else shift  # keep it positive
    out = np.where(valid, scale * d + shift, 0.0).astype(np.float32)
    return out, valid


def plan_misplaced(instance_ids: list[int], stuff: set[int], rng: np.random.Generator,
                   model: DepthPriorModel = DepthPriorModel()) -> dict[int, float]:
    """Which object instances the depth prior misplaces (id -> signed relative offset), once per scene."""
    things = sorted(i for i in instance_ids if i > 0 and i not in stuff)
    out = {}
    for i in things:
        if rng.random() < model.misplaced_fraction:
            out[i] = float(model.misplace_rel * (1 if rng.random() < 0.5 else -1))
    return out


def depth_prior_stats(priors: list[np.ndarray], truths: list[np.ndarray], valids: list[np.ndarray]) -> dict:
    """Median relative error after each view's best affine (least-squares) fit, and the mean Pearson r."""
    rel, rs = [], []
    for p, t, v in zip(priors, truths, valids):
        m = v & (t > 0)
        if m.sum() < 3:
            continue
        x, y = p[m].astype(np.float64), t[m].astype(np.float64)
        A = np.stack([x, np.ones_like(x)], 1)
        (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
        rel.append(np.abs(a * x + b - y) / y)
        rs.append(float(np.corrcoef(x, y)[0, 1]))
    if not rel:
        return {"median_rel_error": None, "pearson": None}
    return {"median_rel_error": float(np.median(np.concatenate(rel))), "pearson": float(np.mean(rs))}


# ------------------------------------------------------------------------------------------------ semantic teacher

#: Look-alike classes a segmenter confuses an object with (ADE20K names, resolved with ``class_id``).
LOOKALIKE: dict[str, tuple[str, ...]] = {
    "chair": ("armchair", "stool"), "armchair": ("chair", "sofa"), "sofa": ("armchair", "bed"),
    "table": ("desk", "coffee table"), "coffee table": ("table", "desk"), "desk": ("table",),
    "bed": ("sofa",), "pillow": ("cushion",), "cushion": ("pillow",),
    "cabinet": ("chest of drawers", "wardrobe"), "chest of drawers": ("cabinet",), "wardrobe": ("cabinet",),
    "shelf": ("bookcase", "cabinet"), "bookcase": ("shelf",), "book": ("box",), "box": ("book",),
    "lamp": ("light",), "light": ("lamp",), "rug": ("floor",), "pot": ("vase",), "vase": ("pot",),
    "plant": ("flower",), "flower": ("plant",), "curtain": ("blind",), "blind": ("curtain",),
    "painting": ("poster", "mirror"), "poster": ("painting",), "mirror": ("painting",), "clock": ("painting",),
    "door": ("wall",), "windowpane": ("door", "curtain"), "television receiver": ("painting",),
}
STUFF_CLASSES = ("wall", "floor", "ceiling")

#: The named strengths the scene benchmark runs (``--teacher``).
TEACHER_STRENGTHS = {"mild": 0.5, "strong": 1.0}


@dataclass(frozen=True)
class TeacherModel:
    """Error model of the simulated semantic teacher (see the module doc). ``strength`` scales every error."""

    strength: float = 1.0
    confuse_prob: float = 0.3  # per thing instance, at strength 1
    small_area: float = 0.004  # median image-area fraction below which an instance is missed, at strength 1
    block: float = 8.0  # teacher cell size in px at a 160-px longer side, at strength 1


@dataclass
class TeacherPlan:
    """The scene-wide decisions of one simulated teacher: the same in every view."""

    relabel: dict[int, int] = field(default_factory=dict)  # instance id -> wrong class id
    missed: set[int] = field(default_factory=set)  # instance ids the teacher does not see
    block_frac: float = 0.0  # cell size as a fraction of the longer side (0 = full resolution)
    consistent: bool = True  # False when instance maps were missing

    def summary(self) -> dict:
        return {"confused_instances": len(self.relabel), "missed_instances": len(self.missed),
                "block_frac": self.block_frac, "consistent": self.consistent}


def _lookalike_ids() -> dict[int, list[int]]:
    return {class_id(k): [class_id(v) for v in vs] for k, vs in LOOKALIKE.items()}


def plan_teacher(labels: list[np.ndarray], instances: list[np.ndarray | None], rng: np.random.Generator,
                 model: TeacherModel = TeacherModel()) -> TeacherPlan:
    """Decide, once for a scene, which instances the teacher confuses and which it misses.

    ``labels``/``instances``: the true maps of every view the teacher will label (train and test views alike, so the
    test-view teacher mIoU measures the same teacher)."""
    s = float(model.strength)
    plan = TeacherPlan(block_frac=s * model.block / 160.0, consistent=all(i is not None for i in instances))
    if s <= 0:
        return plan
    stuff = {class_id(n) for n in STUFF_CLASSES}
    look = _lookalike_ids()
    inst_class: dict[int, int] = {}
    areas: dict[int, list[float]] = {}
    for lab, inst in zip(labels, instances):
        if inst is None:
            continue
        n = lab.size
        ids, counts = np.unique(inst[inst > 0], return_counts=True)
        for i, c in zip(ids.tolist(), counts.tolist()):
            areas.setdefault(i, []).append(c / n)
            if i not in inst_class:
                vals = lab[inst == i]
                vals = vals[vals >= 0]
                if len(vals):
                    inst_class[i] = int(np.bincount(vals).argmax())
    for i in sorted(inst_class):
        c = inst_class[i]
        if c in stuff:
            continue
        if float(np.median(areas[i])) < s * model.small_area:
            plan.missed.add(i)
            continue
        if c in look and rng.random() < min(1.0, s * model.confuse_prob):
            plan.relabel[i] = int(rng.choice(look[c]))
    return plan


def _fill_nearest(lab: np.ndarray, hole: np.ndarray) -> np.ndarray:
    if not hole.any() or hole.all():
        return lab
    _, (iy, ix) = ndimage.distance_transform_edt(hole, return_indices=True)
    return lab[iy, ix]


def _block_majority(lab: np.ndarray, block: int) -> np.ndarray:
    """Majority label per block x block cell, upsampled by nearest neighbour (edge cells may be partial)."""
    if block <= 1:
        return lab
    H, W = lab.shape
    hb, wb = -(-H // block), -(-W // block)
    pad = np.pad(lab, ((0, hb * block - H), (0, wb * block - W)), mode="edge")
    cells = pad.reshape(hb, block, wb, block).transpose(0, 2, 1, 3).reshape(hb, wb, block * block)
    classes = np.unique(cells)
    counts = np.stack([(cells == c).sum(-1) for c in classes], -1)
    small = classes[counts.argmax(-1)]
    return np.repeat(np.repeat(small, block, 0), block, 1)[:H, :W]


def simulate_teacher_labels(labels: np.ndarray, instances: np.ndarray | None, plan: TeacherPlan,
                            rng: np.random.Generator | None = None) -> np.ndarray:
    """The simulated teacher's label map [H,W] int32 (0..149, never -1) for one view under ``plan``."""
    out = np.asarray(labels, np.int32).copy()
    if instances is not None:
        for i, c in plan.relabel.items():
            out[instances == i] = c
        hole = np.isin(instances, list(plan.missed)) if plan.missed else np.zeros(out.shape, bool)
    else:
        hole = np.zeros(out.shape, bool)
    hole |= out < 0
    out = _fill_nearest(out, hole)
    block = int(round(plan.block_frac * max(out.shape)))
    return _block_majority(out, block).astype(np.int32)
