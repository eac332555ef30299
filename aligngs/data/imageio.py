"""Reading images, depth and label maps from disk (Pillow), with checks that name the file on failure.

Conventions: colour -> float32 RGB [H,W,3] in [0,1] (+ bool mask from an alpha channel, if any);
depth PNG -> float32 metres [H,W], 0 = invalid; label PNGs -> int32 [H,W].
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # orientations that swap width and height


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def natural_key(s: str) -> list:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(s))]


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise DataError(path, "file does not exist")
    if not is_image_name(path):
        raise DataError(path, f"not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})")
    try:
        return Image.open(path)
    except UnidentifiedImageError as e:
        raise DataError(path, f"unreadable or corrupt image ({e})") from e
    except OSError as e:
        raise DataError(path, f"unreadable or corrupt image ({e})") from e


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only (no decode)."""
    path = Path(path)
    with _open(path) as img:
        w, h = img.size
        try:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        except Exception:  # a broken EXIF block: treat as unrotated (the decode will tell if the image is bad)
            orientation = 1
    return (h, w) if orientation in _TRANSPOSING_ORIENTATIONS else (w, h)


def read_image(path: str | Path, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as float32 RGB [H,W,3] in [0,1], EXIF orientation applied.

    ``size`` = (width, height) resizes (Lanczos, anti-aliased) before the float conversion.
    Returns ``(image, mask)``; ``mask`` is alpha > 0.5 for images with an alpha channel, else None.
    """
    path = Path(path)
    with _open(path) as img:
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(path, f"unreadable or corrupt image ({e})") from e
        alpha = None
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA")
            alpha = img.getchannel("A")
            img = img.convert("RGB")
        elif img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr16 = np.asarray(img).astype(np.float32) / 65535.0
            img = Image.fromarray(np.clip(arr16 * 255.0 + 0.5, 0, 255).astype(np.uint8))
            img = img.convert("RGB")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        if size is not None and tuple(size) != img.size:
            img = img.resize(tuple(size), Image.Resampling.LANCZOS)
            if alpha is not None:
                alpha = alpha.resize(tuple(size), Image.Resampling.BILINEAR)
        image = np.asarray(img, dtype=np.float32) / 255.0
    mask = None if alpha is None else np.asarray(alpha) > 127
    return image, mask


def _read_array(path: Path, what: str, modes: tuple[str, ...]) -> np.ndarray:
    with _open(path) as img:
        if img.mode not in modes:
            raise DataError(path, f"{what} must be a single-channel image of mode {' or '.join(modes)}, got mode {img.mode}")
        try:
            return np.array(img)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(path, f"unreadable or corrupt {what} ({e})") from e


def read_depth_png(path: str | Path, scale: float = 1000.0) -> np.ndarray:
    """16-bit depth PNG -> float32 metres (value / ``scale``), 0 = invalid."""
    path = Path(path)
    raw = _read_array(path, "depth PNG (16-bit)", ("I;16", "I;16B", "I;16L", "I"))
    if raw.ndim != 2:
        raise DataError(path, f"depth must be single-channel, got shape {raw.shape}")
    if raw.dtype != np.uint16 and (raw.min() < 0 or raw.max() > 65535):
        raise DataError(path, "depth values outside the 16-bit range")
    return raw.astype(np.float32) / np.float32(scale)


def read_label_png(path: str | Path, what: str = "label map", sixteen_bit: bool = False) -> np.ndarray:
    """Single-channel PNG -> int32 array. 8-bit (L or palette P) always; 16-bit too when ``sixteen_bit``."""
    path = Path(path)
    modes = ("L", "P") + (("I;16", "I;16B", "I;16L", "I") if sixteen_bit else ())
    raw = _read_array(path, what, modes)
    return raw.astype(np.int32)


def resize_nearest(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an [H,W,...] array (pixel-centre sampling; keeps the dtype)."""
    h, w = arr.shape[:2]
    if (w, h) == (width, height):
        return arr
    ys = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return arr[ys[:, None], xs[None, :]]


def target_size(width: int, height: int, resolution: int | None) -> tuple[int, int]:
    """Size with the longest side = ``resolution`` (aspect kept). Never upscales; None = native."""
    if resolution is None:
        return width, height
    if resolution <= 0:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")
    longest = max(width, height)
    if resolution >= longest:
        return width, height
    s = resolution / longest
    return max(1, round(width * s)), max(1, round(height * s))
