"""Depth teachers: a "depth-like" prior per view for the Pearson depth loss (method section 3).

:class:`DepthTeacher`:

* ``predict(image, size=None) -> float32 [H,W]`` depth-like: it increases with distance. The Pearson loss is
  invariant to scale and shift, so only an affine relation to true depth matters;
* ``predict_frame(frame) -> DepthPrediction(depth, valid)`` is what the prior computation calls.

Implementations:

* :class:`DptDepthTeacher` — ``DPTForDepthEstimation`` (default ``facebook/dpt-dinov2-small-nyu``, a DINOv2-S
  backbone with an NYUv2 head: metric depth, used as is);
* :class:`DepthAnythingTeacher` — ``DepthAnythingForDepthEstimation`` (default
  ``depth-anything/Depth-Anything-V2-Small-hf``): relative models predict affine-invariant **inverse** depth
  (disparity), converted with :func:`disparity_to_depth`; ``depth_estimation_type == "metric"`` checkpoints
  predict depth and are used as is;
* :class:`SensorDepthTeacher` — ``Frame.depth`` passthrough (RGB-D), 0 / non-finite = invalid.

Network outputs are post-processed like the library's ``post_process_depth_estimation`` (bicubic resize to the
target size), after cropping any centre padding the processor added (the DINOv2 NYU checkpoints pad to
multiples of 14; the library's post-processing leaves that padding in).
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DepthTeacherName, choices
from ..data.types import Frame
from . import models as M
from ._runtime import autocast, check_image, default_batch_size, resolve_device, shape_batches, to_uint8

log = logging.getLogger(__name__)

__all__ = [
    "DepthPrediction",
    "DepthTeacher",
    "DptDepthTeacher",
    "DepthAnythingTeacher",
    "SensorDepthTeacher",
    "disparity_to_depth",
    "make_depth_teacher",
    "DEPTH_TEACHERS",
    "DISPARITY_FLOOR",
]

#: Disparity is floored at this fraction of its 99.5th percentile before inversion (depth range <= 100x).
DISPARITY_FLOOR = 0.01


@dataclass
class DepthPrediction:
    depth: np.ndarray  # [H,W] float32 depth-like (increasing with distance)
    valid: np.ndarray  # [H,W] bool


def disparity_to_depth(disparity: np.ndarray | torch.Tensor, mode: str = "inverse"):
    """Relative inverse depth -> a depth-like map (increasing with distance).

    ``mode="inverse"`` (default): ``1 / max(d / d99.5, DISPARITY_FLOOR)`` where ``d99.5`` is the 99.5th percentile
    of the disparity: exact up to scale when the model's disparity has no shift, bounded to [~1, 100] so far /
    sky pixels cannot dominate the Pearson statistics. ``mode="negate"``: ``-d``, an affine map of the
    disparity (robust, but only monotone in depth). Works on numpy arrays and torch tensors.
    """
    if mode not in ("inverse", "negate"):
        raise ValueError(f"disparity_to_depth: mode must be 'inverse' or 'negate', got {mode!r}")
    is_np = isinstance(disparity, np.ndarray)
    d = torch.as_tensor(disparity, dtype=torch.float32)
    if mode == "negate":
        out = -d
    else:
        finite = d[torch.isfinite(d)]
        ref = torch.quantile(finite.flatten()[:16_000_000], 0.995) if finite.numel() else d.new_tensor(1.0)
        if not torch.isfinite(ref) or ref <= 0:
            ref = d.new_tensor(1.0)
        out = 1.0 / torch.clamp(d / ref, min=DISPARITY_FLOOR)
    return out.numpy() if is_np else out


class DepthTeacher(ABC):
    name: ClassVar[str] = ""
    cacheable: ClassVar[bool] = True

    @property
    @abstractmethod
    def cache_tag(self) -> str:
        """Identifies the teacher (kind, checkpoint, conversion) in prior-cache keys."""

    @abstractmethod
    def predict_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """Depth-like float32 [H,W] per image."""

    def predict(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        return self.predict_batch([image], size)[0]

    def predict_frame(self, frame: Frame) -> DepthPrediction:
        return self.predict_frames([frame])[0]

    def predict_frames(self, frames: Sequence[Frame]) -> list[DepthPrediction]:
        for f in frames:
            if f.image is None:
                raise ValueError(f"frame {f.name!r}: depth teacher {self.name!r} needs Frame.image, which is None")
        depths = self.predict_batch([f.image for f in frames])
        return [DepthPrediction(d, np.isfinite(d)) for d in depths]


class SensorDepthTeacher(DepthTeacher):
    """``Frame.depth`` (metres, 0 = invalid) as the prior."""

    name = "sensor"
    cacheable = False

    @property
    def cache_tag(self) -> str:
        return "sensor"

    def predict_batch(self, images, size=None):
        raise TypeError("the sensor depth teacher has no image model: it reads Frame.depth (use predict_frame)")

    def predict_frames(self, frames):
        out = []
        for f in frames:
            if f.depth is None:
                raise ValueError(
                    f"frame {f.name!r}: depth teacher 'sensor' needs Frame.depth (float32 [H,W] metres), which is "
                    "None; use depth_teacher 'dpt' or 'depth_anything' for RGB-only input, or 'none'"
                )
            d = np.asarray(f.depth, dtype=np.float32)
            if d.ndim != 2:
                raise ValueError(f"frame {f.name!r}: Frame.depth must be [H,W], got shape {list(d.shape)}")
            if f.image is not None and d.shape != f.image.shape[:2]:
                raise ValueError(
                    f"frame {f.name!r}: Frame.depth shape {list(d.shape)} differs from the image's "
                    f"{list(f.image.shape[:2])}; resize depth (nearest) to the render resolution"
                )
            valid = np.isfinite(d) & (d > 0)
            out.append(DepthPrediction(np.where(valid, d, 0.0).astype(np.float32), valid))
        return out


class _HFDepthTeacher(DepthTeacher):
    """Shared loading / batching / padding crop for transformers depth estimators."""

    model_class_name: ClassVar[str] = ""

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str,
        device: str | torch.device = "auto",
        output_kind: str | None = None,
        disparity_mode: str = "inverse",
        amp: bool = True,
        batch_size: int | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.model_id = str(model_id)
        kind = output_kind or self._default_output_kind(model)
        if kind not in ("depth", "disparity"):
            raise ValueError(f"{self.name} teacher: output_kind must be 'depth' or 'disparity', got {kind!r}")
        if disparity_mode not in ("inverse", "negate"):
            raise ValueError(f"{self.name} teacher: disparity_mode must be 'inverse' or 'negate', got {disparity_mode!r}")
        self.output_kind = kind
        self.disparity_mode = disparity_mode
        self.amp = bool(amp)
        self.batch_size = int(batch_size) if batch_size else default_batch_size(self.device)
        self._tag = M.checkpoint_tag(self.model_id, model)

    def _default_output_kind(self, model) -> str:
        info = M.checkpoint_info(self.model_id)
        return info.output if info is not None and info.output else "depth"

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        device: str | torch.device = "auto",
        output_kind: str | None = None,
        disparity_mode: str = "inverse",
        amp: bool = True,
        batch_size: int | None = None,
        cache_dir: str | None = None,
    ) -> "_HFDepthTeacher":
        import transformers

        model_id = model or M.DEFAULT_MODELS[cls.name]
        net, proc, resolved = M.load_model_and_processor(
            getattr(transformers, cls.model_class_name), model_id, cache_dir=cache_dir
        )
        return cls(net, proc, resolved, device=device, output_kind=output_kind, disparity_mode=disparity_mode,
                   amp=amp, batch_size=batch_size)

    @property
    def cache_tag(self) -> str:
        conv = self.disparity_mode if self.output_kind == "disparity" else "as-is"
        return f"{self.name}|{self._tag}|{self.output_kind}|{conv}|v1"

    def _content_box(self, batch: list[np.ndarray], padded: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the image inside the processor's centre padding, in pixel_values px."""
        if not (getattr(self.processor, "do_pad", False) and getattr(self.processor, "size_divisor", None)):
            return 0, 0, padded[0], padded[1]
        unpadded = self.processor(images=batch[:1], do_pad=False, return_tensors="pt")["pixel_values"].shape[-2:]
        h, w = int(unpadded[0]), int(unpadded[1])
        # DPT pads centred: left = (new - old) // 2 on each axis
        return (padded[0] - h) // 2, (padded[1] - w) // 2, h, w

    def predict_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[np.ndarray]:
        images = [check_image(im, f"{self.name} teacher image {i}") for i, im in enumerate(images)]
        results: list[np.ndarray | None] = [None] * len(images)
        for idx in shape_batches(images, self.batch_size):
            batch = [to_uint8(images[i]) for i in idx]
            inputs = self.processor(images=batch, return_tensors="pt")
            pv = inputs["pixel_values"].to(self.device)
            with torch.inference_mode(), autocast(self.device, self.amp):
                pred = self.model(pixel_values=pv).predicted_depth
            pred = pred.float()
            if pred.dim() == 4:  # [B,1,h,w] from some heads
                pred = pred[:, 0]
            top, left, ch, cw = self._content_box(batch, tuple(pv.shape[-2:]))
            sy, sx = pred.shape[-2] / pv.shape[-2], pred.shape[-1] / pv.shape[-1]
            y0, x0 = int(round(top * sy)), int(round(left * sx))
            y1, x1 = int(round((top + ch) * sy)), int(round((left + cw) * sx))
            with torch.inference_mode():
                for j, i in enumerate(idx):
                    h, w = images[i].shape[:2]
                    target = (h, w) if size is None else (int(size[0]), int(size[1]))
                    d = pred[j, y0:y1, x0:x1]
                    d = F.interpolate(d[None, None], size=target, mode="bicubic", align_corners=False)[0, 0]
                    if self.output_kind == "disparity":
                        d = disparity_to_depth(d, self.disparity_mode)
                    results[i] = d.float().cpu().numpy()
        return results  # type: ignore[return-value]


class DptDepthTeacher(_HFDepthTeacher):
    """DPT with a DINOv2 backbone (default ``facebook/dpt-dinov2-small-nyu``: metric depth, used as is).

    Checkpoints of the MiDaS family (``Intel/dpt-*``) predict disparity: pass ``output_kind="disparity"``.
    """

    name = "dpt"
    model_class_name = "DPTForDepthEstimation"


class DepthAnythingTeacher(_HFDepthTeacher):
    """Depth Anything V2 (default ``depth-anything/Depth-Anything-V2-Small-hf``, relative inverse depth)."""

    name = "depth_anything"
    model_class_name = "DepthAnythingForDepthEstimation"

    def _default_output_kind(self, model) -> str:
        kind = getattr(model.config, "depth_estimation_type", "relative")
        return "depth" if kind == "metric" else "disparity"


DEPTH_TEACHERS = choices(DepthTeacherName)


def make_depth_teacher(
    name: str,
    model: str | None = None,
    device: str = "auto",
    *,
    output_kind: str | None = None,
    disparity_mode: str = "inverse",
    amp: bool = True,
    batch_size: int | None = None,
    cache_dir: str | None = None,
) -> DepthTeacher | None:
    """Build the depth teacher named by ``SemanticConfig.depth_teacher``: dpt | depth_anything | sensor | none."""
    key = (name or "").strip().lower()
    if key == "none":
        return None
    if key == "auto":
        raise ValueError("semantics.depth_teacher 'auto' depends on the input: resolve it with "
                         "aligngs.pipeline.resolve_teachers(frames, config) first")
    if key == "sensor":
        if model:
            log.warning("depth teacher 'sensor' reads Frame.depth: model %r is ignored", model)
        return SensorDepthTeacher()
    kw = dict(device=device, output_kind=output_kind, disparity_mode=disparity_mode, amp=amp, batch_size=batch_size,
              cache_dir=cache_dir)
    if key == "dpt":
        return DptDepthTeacher.from_pretrained(model, **kw)
    if key in ("depth_anything", "depth-anything", "depthanything"):
        return DepthAnythingTeacher.from_pretrained(model, **kw)
    raise ValueError(f"semantics.depth_teacher: unknown depth teacher {name!r} (known: {', '.join(DEPTH_TEACHERS)})")
