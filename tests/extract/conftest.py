"""Fixtures for the extract tests: a small labelled scene (two separated chairs, noise, a wall) for labelling,
splits and editing; the real shelf RGB-D capture (read straight from the shared data folder) for TSDF fusion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aligngs.data.types import Camera, TriMesh
from aligngs.extract.labeling import SemanticPoints

CHAIR, WALL = 19, 0


def grid_mesh(origin, n=6, step=0.1, cls=0):
    """An n x n vertex grid in the z = origin[2] plane: 2 (n-1)^2 faces."""
    ij = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    verts = np.c_[ij * step, np.zeros(len(ij))] + origin
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.c_[a, b, c], np.c_[b, d, c]])
    return verts.astype(np.float32), faces.astype(np.int32), np.full(len(verts), cls, np.int32)


def merge(*meshes):
    vs, fs, cs, off = [], [], [], 0
    for v, f, c in meshes:
        vs.append(v)
        fs.append(f + off)
        cs.append(c)
        off += len(v)
    v = np.concatenate(vs)
    colors = (np.arange(len(v))[:, None] % 256 * np.ones(3)).astype(np.uint8)
    return TriMesh(v, np.concatenate(fs), colors, {"class_id": np.concatenate(cs), "confidence": np.ones(len(v), np.float32)})


def blob(center, n, rng, spread=0.1):
    return center + rng.uniform(-spread, spread, (n, 3))


@pytest.fixture
def scene():
    """(mesh, points): chair grids at x=0 and x=5 (50 faces each) + a wall grid at z=3 (18 faces); 100 chair
    points over each chair grid, 10 chair-labelled points far away (noise), 60 wall points."""
    rng = np.random.default_rng(0)
    mesh = merge(grid_mesh([0, 0, 0], cls=CHAIR), grid_mesh([5, 0, 0], cls=CHAIR), grid_mesh([0, 0, 3], n=4, cls=WALL))
    pos = np.concatenate([
        blob(np.array([0.25, 0.25, 0.05]), 100, rng),  # chair A (over mesh piece A)
        blob(np.array([5.25, 0.25, 0.05]), 100, rng),  # chair B
        blob(np.array([2.5, 9.0, 0.0]), 10, rng, 0.02),  # a small chair-labelled fragment: noise
        blob(np.array([0.1, 0.1, 3.0]), 60, rng),  # wall points
    ])
    cls = np.r_[np.full(210, CHAIR), np.full(60, WALL)].astype(np.int32)
    pts = SemanticPoints(pos, np.full((270, 3), 100, np.uint8), cls, np.full(270, 0.9, np.float32))
    return mesh, pts


@pytest.fixture(name="grid_mesh")
def grid_mesh_fixture():
    return grid_mesh


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
