"""2D semantic teachers: per-pixel ADE20K-150 class scores for the semantic distillation (method section 2).

One interface, :class:`SemanticTeacher`:

* ``predict(image, size=None) -> float32 [150,H,W]`` for an RGB image float32 [H,W,3] in 0..1, at ``size``
  (H, W) or the image's own resolution (callers pass images already at render resolution);
* ``predict_batch(images, size=None)`` batches images of equal shape through the network;
* ``predict_frame(frame) -> SemanticPrediction(scores, valid)`` is what :func:`aligngs.priors.cache.compute_priors`
  calls: model teachers segment ``frame.image``, the provided-labels teacher reads ``frame.labels``.

Score convention (``output="log_prob"``, the default): **log-probabilities** over the 150 classes, floored at
:data:`LOG_PROB_FLOOR`. ``softmax(scores)`` gives the teacher distribution back and ``argmax`` its label, so the
losses may treat them as logits. For the mask-classification models (EoMT, Mask2Former) the distribution is the
one ``post_process_semantic_segmentation`` of transformers builds: per query, class probabilities
``softmax(class_logits)`` without the trailing null ("no object") class, times the sigmoid of the mask logits,
summed over queries (``einsum("qc,qhw->chw")``), bilinearly resized like the library does; we then normalise over
classes and take the log. ``output="mixture"`` returns that query mixture unnormalised, exactly the library's
``segmentation_scores`` (non-negative, not log-space: the reference stored *some* such map as
``segmentation_logits/*.pt`` and applied ``softmax`` to it; which one is not published).

Implementations: :class:`EomtTeacher` (``EomtForUniversalSegmentation``, DINOv2-based, sliding 512 px windows),
:class:`Mask2FormerTeacher` (``Mask2FormerForUniversalSegmentation``), :class:`ProvidedLabelsTeacher`
(user or ground-truth label maps through :func:`labels_to_scores`). :func:`make_semantic_teacher` builds one from
``SemanticConfig.teacher`` names; :func:`make_depth_teacher` (re-exported from :mod:`aligngs.priors.depth`)
the depth teachers.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import SemanticTeacherName, choices
from ..data.types import Frame
from . import models as M
from ._runtime import autocast, check_image, default_batch_size, resolve_device, shape_batches, to_uint8
from .depth import DepthTeacher, make_depth_teacher  # noqa: F401  (re-export: one import site for the pipeline)

log = logging.getLogger(__name__)

__all__ = [
    "NUM_CLASSES",
    "LOG_PROB_FLOOR",
    "DEFAULT_LABEL_SMOOTHING",
    "SemanticPrediction",
    "SemanticTeacher",
    "EomtTeacher",
    "Mask2FormerTeacher",
    "ProvidedLabelsTeacher",
    "labels_to_scores",
    "mixture_to_log_probs",
    "make_semantic_teacher",
    "make_depth_teacher",
    "SEMANTIC_TEACHERS",
]

NUM_CLASSES = 150
#: Log-probabilities are clamped from below at this value (probability ~9e-14): finite, float16-safe.
LOG_PROB_FLOOR = -30.0
#: Label smoothing of provided / ground-truth labels: p(label) = 1 - s + s/C, p(other) = s/C.
DEFAULT_LABEL_SMOOTHING = 0.1


@dataclass
class SemanticPrediction:
    """A teacher's answer for one view."""

    scores: np.ndarray  # [C,H,W] float32 (log-probabilities unless the teacher says otherwise)
    valid: np.ndarray  # [H,W] bool, False = no teacher information (unknown label)


class SemanticTeacher(ABC):
    """Per-pixel class scores for an RGB image."""

    name: ClassVar[str] = ""
    num_classes: int = NUM_CLASSES
    #: True for network teachers: their outputs go through the on-disk prior cache.
    cacheable: ClassVar[bool] = True

    @property
    @abstractmethod
    def cache_tag(self) -> str:
        """Identifies the teacher (kind, checkpoint, output convention) in prior-cache keys."""

    @abstractmethod
    def predict_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """Scores float32 [C,H,W] per image (at ``size`` or each image's resolution)."""

    def predict(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        return self.predict_batch([image], size)[0]

    def predict_frame(self, frame: Frame) -> SemanticPrediction:
        if frame.image is None:
            raise ValueError(f"frame {frame.name!r}: teacher {self.name!r} needs Frame.image, which is None")
        scores = self.predict(frame.image)
        return SemanticPrediction(scores, np.ones(scores.shape[1:], dtype=bool))

    def predict_frames(self, frames: Sequence[Frame]) -> list[SemanticPrediction]:
        """Batched :meth:`predict_frame` (network teachers batch equal-shape images)."""
        for f in frames:
            if f.image is None:
                raise ValueError(f"frame {f.name!r}: teacher {self.name!r} needs Frame.image, which is None")
        scores = self.predict_batch([f.image for f in frames])
        return [SemanticPrediction(s, np.ones(s.shape[1:], dtype=bool)) for s in scores]


# --------------------------------------------------------------------------------------------------------------
# provided labels


def labels_to_scores(
    labels: np.ndarray, num_classes: int = NUM_CLASSES, smoothing: float = DEFAULT_LABEL_SMOOTHING
) -> tuple[np.ndarray, np.ndarray]:
    """Label map -> (log-probabilities float32 [C,H,W], valid bool [H,W]).

    ``labels`` int [H,W] holds class ids 0..C-1 and -1 for unknown. With label smoothing ``s`` (0 <= s < 1) a
    labelled pixel gets p(label) = 1 - s + s/C and p(other) = s/C; the scores are their logs, each floored at
    :data:`LOG_PROB_FLOOR` (so s = 0 gives 0 / -30, finite). Unknown pixels get the uniform log(1/C) and
    ``valid = False``.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels: expected a [H,W] array, got shape {list(lab.shape)}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels: expected integer class ids, got dtype {lab.dtype}")
    if not (isinstance(num_classes, (int, np.integer)) and num_classes >= 2):
        raise ValueError(f"labels_to_scores: num_classes must be an integer >= 2, got {num_classes!r}")
    if not (0.0 <= float(smoothing) < 1.0):
        raise ValueError(f"labels_to_scores: smoothing must be in [0, 1), got {smoothing!r}")
    if lab.size:
        lo, hi = int(lab.min()), int(lab.max())
        if lo < -1 or hi >= num_classes:
            raise ValueError(
                f"labels: values must be -1 (unknown) or class ids 0..{num_classes - 1}, got range [{lo}, {hi}]"
            )
    s = float(smoothing)
    p_other = s / num_classes
    p_true = 1.0 - s + p_other
    log_other = max(np.log(p_other), LOG_PROB_FLOOR) if p_other > 0 else LOG_PROB_FLOOR
    log_true = max(np.log(p_true), LOG_PROB_FLOOR)
    valid = lab >= 0
    scores = np.full((num_classes, *lab.shape), log_other, dtype=np.float32)
    idx = np.where(valid, lab, 0).astype(np.int64)[None]
    np.put_along_axis(scores, idx, np.float32(log_true), axis=0)
    scores[:, ~valid] = np.float32(-np.log(num_classes))
    return scores, valid


class ProvidedLabelsTeacher(SemanticTeacher):
    """Scores from label maps the user (or the synthetic scene's ground truth) supplies as ``Frame.labels``."""

    name = "provided"
    cacheable = False  # cheap to recompute; nothing to cache

    def __init__(self, smoothing: float = DEFAULT_LABEL_SMOOTHING, num_classes: int = NUM_CLASSES, name: str = "provided"):
        if not (0.0 <= float(smoothing) < 1.0):
            raise ValueError(f"ProvidedLabelsTeacher: smoothing must be in [0, 1), got {smoothing!r}")
        self.smoothing = float(smoothing)
        self.num_classes = int(num_classes)
        self.name = name  # type: ignore[misc]  ("provided" or "gt": same behaviour)

    @property
    def cache_tag(self) -> str:
        return f"provided|C={self.num_classes}|s={self.smoothing!r}"

    def predict_batch(self, images, size=None):
        raise TypeError(
            "the provided-labels teacher has no image model: it reads Frame.labels (use predict_frame / "
            "labels_to_scores)"
        )

    def predict_frame(self, frame: Frame) -> SemanticPrediction:
        if frame.labels is None:
            raise ValueError(
                f"frame {frame.name!r}: teacher {self.name!r} needs Frame.labels (int32 [H,W] ADE20K ids, -1 "
                "unknown), which is None; use a model teacher (eomt / mask2former) for unlabelled images"
            )
        if frame.image is not None and tuple(frame.labels.shape) != tuple(frame.image.shape[:2]):
            raise ValueError(
                f"frame {frame.name!r}: Frame.labels shape {list(frame.labels.shape)} differs from the image's "
                f"{list(frame.image.shape[:2])}; resize labels with nearest-neighbour to the render resolution"
            )
        scores, valid = labels_to_scores(frame.labels, self.num_classes, self.smoothing)
        return SemanticPrediction(scores, valid)

    def predict_frames(self, frames):
        return [self.predict_frame(f) for f in frames]


# --------------------------------------------------------------------------------------------------------------
# mask-classification networks (EoMT, Mask2Former)


def mixture_to_log_probs(mixture: torch.Tensor) -> torch.Tensor:
    """Query-mixture scores [C,H,W] (>= 0) -> log-probabilities over C, floored at :data:`LOG_PROB_FLOOR`."""
    m = mixture.clamp_min(0)
    total = m.sum(dim=0, keepdim=True)
    tiny = torch.finfo(m.dtype).tiny
    out = torch.log(m.clamp_min(tiny)) - torch.log(total.clamp_min(tiny))
    return out.clamp_min(LOG_PROB_FLOOR)


def _query_mixture(class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """[Q,C+1] class logits x [Q,h,w] mask logits -> [C,h,w]: softmax without the null class, sigmoid masks."""
    classes = class_logits.softmax(dim=-1)[..., :-1]
    return torch.einsum("qc,qhw->chw", classes, mask_logits.sigmoid())


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[C,h,w] -> [C,H,W], bilinear, align_corners=False (the library's choice)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def _size_field(size: Any, key: str):
    try:
        return size[key]
    except (KeyError, TypeError):
        return getattr(size, key, None)


class _MaskClassificationTeacher(SemanticTeacher):
    """Shared loading / batching / autocast for EoMT and Mask2Former."""

    model_class_name: ClassVar[str] = ""
    model_input_names: ClassVar[tuple[str, ...]] = ("pixel_values",)

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str,
        device: str | torch.device = "auto",
        output: str = "log_prob",
        amp: bool = True,
        batch_size: int | None = None,
    ):
        if output not in ("log_prob", "mixture"):
            raise ValueError(f"{self.name} teacher: output must be 'log_prob' or 'mixture', got {output!r}")
        n = int(getattr(model.config, "num_labels", -1))
        if n != NUM_CLASSES:
            raise ValueError(
                f"{self.name} teacher: checkpoint {model_id!r} predicts {n} classes; an ADE20K-150 semantic "
                f"checkpoint is required (e.g. {M.DEFAULT_MODELS[self.name]})"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.model_id = str(model_id)
        self.output = output
        self.amp = bool(amp)
        self.batch_size = int(batch_size) if batch_size else default_batch_size(self.device)
        self._tag = M.checkpoint_tag(self.model_id, model)

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        device: str | torch.device = "auto",
        output: str = "log_prob",
        amp: bool = True,
        batch_size: int | None = None,
        cache_dir: str | None = None,
    ) -> "_MaskClassificationTeacher":
        """Load a checkpoint (hub id or local folder; default :data:`models.DEFAULT_MODELS`) and its processor."""
        import transformers

        model_id = model or M.DEFAULT_MODELS[cls.name]
        net, proc, resolved = M.load_model_and_processor(
            getattr(transformers, cls.model_class_name), model_id, cache_dir=cache_dir
        )
        return cls(net, proc, resolved, device=device, output=output, amp=amp, batch_size=batch_size)

    @property
    def cache_tag(self) -> str:
        return f"{self.name}|{self._tag}|{self.output}|v1"

    def predict_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[np.ndarray]:
        images = [check_image(im, f"{self.name} teacher image {i}") for i, im in enumerate(images)]
        results: list[np.ndarray | None] = [None] * len(images)
        for idx in shape_batches(images, self.batch_size):
            batch = [to_uint8(images[i]) for i in idx]
            inputs = self.processor(images=batch, return_tensors="pt")
            feed = {k: inputs[k].to(self.device) for k in self.model_input_names if k in inputs}
            with torch.inference_mode(), autocast(self.device, self.amp):
                out = self.model(**feed)
            cls_logits = out.class_queries_logits.float()
            mask_logits = out.masks_queries_logits.float()
            with torch.inference_mode():
                for j, i in enumerate(idx):
                    h, w = images[i].shape[:2]
                    target = (h, w) if size is None else (int(size[0]), int(size[1]))
                    mix = self._mixture(cls_logits, mask_logits, inputs, j, (h, w), target)
                    res = mix if self.output == "mixture" else mixture_to_log_probs(mix)
                    results[i] = res.float().cpu().numpy()
        return results  # type: ignore[return-value]

    @abstractmethod
    def _mixture(self, cls_logits, mask_logits, inputs, j: int, image_size, target) -> torch.Tensor:
        """Query-mixture scores [C, *target] for image ``j`` of the batch."""


class Mask2FormerTeacher(_MaskClassificationTeacher):
    """Mask2Former (default ``facebook/mask2former-swin-large-ade-semantic``).

    Like ``Mask2FormerImageProcessor.post_process_semantic_segmentation``: mask logits are resized bilinearly to
    the preprocessed size (the library hard-codes 384x384, the ADE checkpoints' input size; we use the actual
    ``pixel_values`` size), combined with the class probabilities, and resized bilinearly to the target. We also
    drop batch padding (``pixel_mask``) before the last resize, which the library does not (it never arises for
    single images or equal-size batches, the case the tests compare against the library).
    """

    name = "mask2former"
    model_class_name = "Mask2FormerForUniversalSegmentation"
    model_input_names = ("pixel_values", "pixel_mask")

    def _mixture(self, cls_logits, mask_logits, inputs, j, image_size, target):
        hp, wp = inputs["pixel_values"].shape[-2:]
        masks = F.interpolate(mask_logits[j : j + 1], size=(hp, wp), mode="bilinear", align_corners=False)[0]
        mix = _query_mixture(cls_logits[j], masks)
        pm = inputs.get("pixel_mask") if hasattr(inputs, "get") else None
        if pm is not None:
            m = pm[j].bool()
            rows = int(m.any(dim=1).sum())
            cols = int(m.any(dim=0).sum())
            if 0 < rows and 0 < cols and (rows, cols) != (hp, wp):
                mix = mix[:, :rows, :cols]
        return _bilinear(mix, target)


class EomtTeacher(_MaskClassificationTeacher):
    """EoMT (default ``tue-mps/ade20k_semantic_eomt_large_512``; DINOv2 ViT-L encoder, queries in the last blocks).

    Like ``EomtImageProcessor.post_process_semantic_segmentation``: per window (the processor splits the resized
    image into overlapping ``shortest_edge``-sized windows along its long side), mask logits are resized to the
    window size, mixed with the class probabilities, summed into the resized-image canvas and divided by the
    window count, then resized bilinearly to the target. Without window splitting, a zero-padded canvas is cropped
    to the image region before the last resize (the library's semantic path skips that crop).
    """

    name = "eomt"
    model_class_name = "EomtForUniversalSegmentation"

    def _resized_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        size = self.processor.size
        short, long = _size_field(size, "shortest_edge"), _size_field(size, "longest_edge")
        try:
            from transformers.image_transforms import get_size_with_aspect_ratio

            return tuple(get_size_with_aspect_ratio(image_size, short, long))  # type: ignore[return-value]
        except ImportError:  # pragma: no cover - older transformers
            h, w = image_size
            s = short / min(h, w)
            return int(h * s), int(w * s)

    def _mixture(self, cls_logits, mask_logits, inputs, j, image_size, target):
        size = self.processor.size
        short = _size_field(size, "shortest_edge")
        long = _size_field(size, "longest_edge")
        window = (short, long or short)
        offsets = inputs.get("patch_offsets") if hasattr(inputs, "get") else None
        if offsets:
            rows = [(k, [int(v) for v in o]) for k, o in enumerate(offsets)]
            rows = [(k, o) for k, o in rows if o[0] == j]
            rh, rw = self._resized_size(image_size)
            c = cls_logits.shape[-1] - 1
            acc = cls_logits.new_zeros((c, rh, rw))
            cnt = cls_logits.new_zeros((1, rh, rw))
            tall = image_size[0] > image_size[1]
            for k, (_, start, end) in rows:
                masks = F.interpolate(mask_logits[k : k + 1], size=window, mode="bilinear", align_corners=False)[0]
                mix = _query_mixture(cls_logits[k], masks)
                if tall:
                    acc[:, start:end, :] += mix[:, : max(0, min(end, rh) - start), :rw]
                    cnt[:, start:end, :] += 1
                else:
                    acc[:, :, start:end] += mix[:, :rh, : max(0, min(end, rw) - start)]
                    cnt[:, :, start:end] += 1
            return _bilinear(acc / cnt.clamp_min(1), target)
        masks = F.interpolate(mask_logits[j : j + 1], size=window, mode="bilinear", align_corners=False)[0]
        mix = _query_mixture(cls_logits[j], masks)
        if getattr(self.processor, "do_pad", False):
            rh, rw = self._resized_size(image_size)
            mix = mix[:, : min(rh, mix.shape[1]), : min(rw, mix.shape[2])]
        return _bilinear(mix, target)


# --------------------------------------------------------------------------------------------------------------
# factory

SEMANTIC_TEACHERS = choices(SemanticTeacherName)


def make_semantic_teacher(
    name: str,
    model: str | None = None,
    device: str = "auto",
    *,
    output: str = "log_prob",
    smoothing: float = DEFAULT_LABEL_SMOOTHING,
    amp: bool = True,
    batch_size: int | None = None,
    cache_dir: str | None = None,
) -> SemanticTeacher | None:
    """Build the teacher named by ``SemanticConfig.teacher``: eomt | mask2former | provided | gt | none.

    ``model`` is a hub id or a local folder (None: the registry default). "provided" and "gt" both read
    ``Frame.labels`` (user labels / synthetic ground truth) with label ``smoothing``; "none" returns None.
    """
    key = (name or "").strip().lower()
    if key in ("provided", "gt"):
        if model:
            log.warning("semantic teacher %r reads Frame.labels: model %r is ignored", key, model)
        return ProvidedLabelsTeacher(smoothing=smoothing, name=key)
    if key == "none":
        return None
    if key == "auto":
        raise ValueError("semantics.teacher 'auto' depends on the input: resolve it with "
                         "aligngs.pipeline.resolve_teachers(frames, config) first")
    if key == "eomt":
        return EomtTeacher.from_pretrained(model, device=device, output=output, amp=amp, batch_size=batch_size,
                                           cache_dir=cache_dir)
    if key == "mask2former":
        return Mask2FormerTeacher.from_pretrained(model, device=device, output=output, amp=amp,
                                                  batch_size=batch_size, cache_dir=cache_dir)
    raise ValueError(f"semantics.teacher: unknown teacher {name!r} (known: {', '.join(SEMANTIC_TEACHERS)})")
