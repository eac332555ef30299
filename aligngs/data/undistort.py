"""Lens undistortion to a pinhole camera with the same K (OpenCV radial-tangential model), numpy only.

For every output pixel we take its pinhole ray, apply the forward distortion and sample the distorted input
there (bilinear for colour, nearest for depth/labels). No inverse of the distortion is needed. Output pixels
whose source falls outside the input image are reported invalid (``valid`` mask False, value 0).

Pixel convention: pixel (i, j) has its centre at integer coordinates (u = j, v = i), as ``Camera.scaled``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIST_KEYS = ("k1", "k2", "p1", "p2", "k3")


@dataclass(frozen=True)
class Distortion:
    """OpenCV radial-tangential coefficients (the model used by COLMAP OPENCV and transforms.json)."""

    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    k3: float = 0.0

    @property
    def is_zero(self) -> bool:
        return not any((self.k1, self.k2, self.p1, self.p2, self.k3))

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in DIST_KEYS}


def distort_normalized(x: np.ndarray, y: np.ndarray, d: Distortion) -> tuple[np.ndarray, np.ndarray]:
    """Forward distortion of normalised image coordinates (z = 1 plane)."""
    r2 = x * x + y * y
    radial = 1.0 + r2 * (d.k1 + r2 * (d.k2 + r2 * d.k3))
    xd = x * radial + 2.0 * d.p1 * x * y + d.p2 * (r2 + 2.0 * x * x)
    yd = y * radial + d.p1 * (r2 + 2.0 * y * y) + 2.0 * d.p2 * x * y
    return xd, yd


@dataclass
class _Map:
    i00: np.ndarray  # flat indices of the 4 bilinear taps, their weights [N,1], the nearest tap
    i01: np.ndarray
    i10: np.ndarray
    i11: np.ndarray
    w00: np.ndarray
    w01: np.ndarray
    w10: np.ndarray
    w11: np.ndarray
    nearest: np.ndarray
    valid: np.ndarray  # [H,W] bool


class Undistorter:
    """Undistorts images of one or more cameras; caches the sampling map per (K, distortion, size)."""

    def __init__(self) -> None:
        self._maps: dict[tuple, _Map] = {}

    def _map(self, K: np.ndarray, d: Distortion, width: int, height: int) -> _Map:
        key = (tuple(np.round(K.ravel(), 9)), d, width, height)
        m = self._maps.get(key)
        if m is not None:
            return m
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        x = (u - cx) / fx - K[0, 1] * (v - cy) / (fx * fy)
        y = (v - cy) / fy
        xd, yd = distort_normalized(x, y, d)
        su = fx * xd + K[0, 1] * yd + cx
        sv = fy * yd + cy
        valid = (su > -0.5) & (su < width - 0.5) & (sv > -0.5) & (sv < height - 0.5)
        su = np.clip(su, 0.0, width - 1.0)
        sv = np.clip(sv, 0.0, height - 1.0)
        x0 = np.minimum(np.floor(su).astype(np.int64), width - 2 if width > 1 else 0)
        y0 = np.minimum(np.floor(sv).astype(np.int64), height - 2 if height > 1 else 0)
        x1 = np.minimum(x0 + 1, width - 1)
        y1 = np.minimum(y0 + 1, height - 1)
        ax = (su - x0).astype(np.float32)
        ay = (sv - y0).astype(np.float32)
        nearest = (np.clip(np.rint(sv), 0, height - 1).astype(np.int64) * width
                   + np.clip(np.rint(su), 0, width - 1).astype(np.int64)).ravel()
        m = _Map(
            i00=(y0 * width + x0).ravel(), i01=(y0 * width + x1).ravel(),
            i10=(y1 * width + x0).ravel(), i11=(y1 * width + x1).ravel(),
            w00=((1 - ax) * (1 - ay)).ravel()[:, None], w01=(ax * (1 - ay)).ravel()[:, None],
            w10=((1 - ax) * ay).ravel()[:, None], w11=(ax * ay).ravel()[:, None],
            nearest=nearest, valid=valid,
        )
        self._maps[key] = m
        return m

    def image(self, image: np.ndarray, K: np.ndarray, d: Distortion) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear undistortion of an [H,W] or [H,W,C] float image -> (image, valid mask)."""
        h, w = image.shape[:2]
        m = self._map(np.asarray(K, np.float64), d, w, h)
        flat = image.reshape(h * w, -1)
        out = np.take(flat, m.i00, axis=0).astype(np.float32, copy=False)
        out *= m.w00
        for idx, wt in ((m.i01, m.w01), (m.i10, m.w10), (m.i11, m.w11)):
            tap = np.take(flat, idx, axis=0).astype(np.float32, copy=False)
            tap *= wt
            out += tap
        out = out.astype(image.dtype, copy=False).reshape(image.shape)
        out[~m.valid] = 0
        return out, m.valid.copy()

    def nearest(self, arr: np.ndarray, K: np.ndarray, d: Distortion, fill=0) -> np.ndarray:
        """Nearest-neighbour undistortion (depth, labels); invalid pixels get ``fill``."""
        h, w = arr.shape[:2]
        m = self._map(np.asarray(K, np.float64), d, w, h)
        out = np.take(arr.reshape(h * w, *arr.shape[2:]), m.nearest, axis=0).reshape(arr.shape)
        out[~m.valid] = fill
        return out
