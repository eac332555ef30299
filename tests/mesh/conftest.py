"""Fixtures for the mesh tests: the real shelf RGB-D capture, read straight from the shared data folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aligngs.data.types import Camera

SHELF = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "shelf-rgbd"


@pytest.fixture(scope="session")
def shelf():
    """(depths [H,W] m, colors [H,W,3] 0..1, cameras) for all 50 frames of shelf-rgbd."""
    if not SHELF.is_dir():
        pytest.skip(f"shared data not found at {SHELF}")
    K = np.loadtxt(SHELF / "intrinsics.K.txt")
    depths, colors, cameras = [], [], []
    for pose in sorted(SHELF.glob("frame-*.pose.txt")):
        stem = pose.name[: -len(".pose.txt")]
        depth = np.asarray(Image.open(SHELF / f"{stem}.depth.png"))
        assert depth.dtype == np.uint16
        color = np.asarray(Image.open(SHELF / f"{stem}.color.png").convert("RGB"))
        depths.append(depth.astype(np.float32) / 1000.0)
        colors.append(color.astype(np.float32) / 255.0)
        cameras.append(Camera(np.loadtxt(pose), K, depth.shape[1], depth.shape[0]))
    assert len(cameras) == 50
    return depths, colors, cameras
