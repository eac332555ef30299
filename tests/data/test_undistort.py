"""Undistortion maps against a hand-computed distortion and a brute-force inverse."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.data.undistort import Distortion, Undistorter, distort_normalized


def test_distortion_hand_value():
    xd, yd = distort_normalized(np.array(0.3), np.array(-0.2), Distortion(k1=0.1, k2=0.01, p1=0.001, p2=0.002))
    # r2 = 0.13, radial = 1 + 0.013 + 0.000169
    assert float(xd) == pytest.approx(0.3 * 1.013169 + 2 * 0.001 * 0.3 * -0.2 + 0.002 * (0.13 + 2 * 0.09), abs=1e-12)
    assert float(yd) == pytest.approx(-0.2 * 1.013169 + 0.001 * (0.13 + 2 * 0.04) + 2 * 0.002 * 0.3 * -0.2, abs=1e-12)
    assert float(yd) == pytest.approx(-0.2026638, abs=1e-9)


@pytest.mark.parametrize("coeffs", [
    {"k1": -0.2, "k2": 0.05, "p1": 0.01, "p2": -0.006},
    {"k1": 0.1, "k2": -0.02, "p1": -0.004, "p2": 0.008, "k3": 0.01},
])
def test_map_inverts_the_reference_distortion(dh, coeffs):
    """Undistorting an image of its own pixel coordinates (bilinear is exact on a ramp) gives, at every output
    pixel, where the pinhole ray lands in the distorted image; undistorting that point by brute force must give
    the pinhole coordinates back."""
    h, w, fx, fy, cx, cy = 48, 64, 55.0, 57.0, 31.3, 24.1
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = np.stack([u, v], -1)
    out, valid = Undistorter().image(ramp, K, Distortion(**coeffs))
    assert valid.mean() > 0.7
    # invalid pixels are exactly those whose source lies outside the image (pixel centres 0..w-1, +-0.5 px)
    xd, yd = dh.opencv_distort((u - cx) / fx, (v - cy) / fy, **coeffs)
    pu, pv = fx * xd + cx, fy * yd + cy
    np.testing.assert_array_equal(valid, (pu > -0.5) & (pu < w - 0.5) & (pv > -0.5) & (pv < h - 0.5))
    # away from the half-pixel border (where the edge pixel is repeated) the sample point is exact
    inner = (pu >= 0) & (pu <= w - 1) & (pv >= 0) & (pv <= h - 1)
    assert inner.mean() > 0.7
    su, sv = out[..., 0][inner], out[..., 1][inner]
    x, y = dh.opencv_undistort_points((su - cx) / fx, (sv - cy) / fy, coeffs)
    np.testing.assert_allclose(x, ((u - cx) / fx)[inner], atol=1e-6)
    np.testing.assert_allclose(y, ((v - cy) / fy)[inner], atol=1e-6)


def test_nearest_keeps_values_and_fills(dh):
    h, w = 30, 40
    K = np.array([[35.0, 0, 19.5], [0, 35.0, 14.5], [0, 0, 1]])
    labels = np.arange(h * w, dtype=np.int32).reshape(h, w)
    d = Distortion(k1=0.3)
    out = Undistorter().nearest(labels, K, d, fill=-1)
    assert out.dtype == np.int32
    valid = out >= 0
    assert 0 < valid.mean() < 1
    assert set(np.unique(out[valid])) <= set(labels.ravel())  # only original values, no blending
    np.testing.assert_array_equal(out[14:16, 19:21], labels[14:16, 19:21])  # at the principal point: identity
