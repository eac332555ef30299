"""Small helpers shared by the semantic and depth teachers: devices, autocast, input checks, batching."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """"auto"/None -> cuda if available else cpu; an explicit cuda device must exist."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} requested but CUDA is not available on this machine")
    return dev


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (fp16 where bf16 is unsupported); a no-op elsewhere (CPU runs stay fp32)."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def check_image(image: np.ndarray, where: str = "image") -> np.ndarray:
    """A float RGB image [H,W,3] in [0,1] (values outside are clipped; NaN/inf rejected)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{where}: expected a numpy array [H,W,3] float32 in 0..1, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{where}: expected shape [H,W,3], got {list(image.shape)}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{where}: expected float values in 0..1, got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError(f"{where}: contains NaN or inf")
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[H,W,3] float 0..1 -> uint8, the form the Hugging Face image processors expect from photos."""
    return np.clip(np.rint(image.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def shape_batches(images: Sequence[np.ndarray], batch_size: int) -> Iterator[list[int]]:
    """Indices of images grouped by shape, in chunks of at most ``batch_size`` (order kept within a shape)."""
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape), []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), max(1, batch_size)):
            yield idx[s : s + max(1, batch_size)]


def default_batch_size(device: torch.device) -> int:
    return 4 if device.type == "cuda" else 1
