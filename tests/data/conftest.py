"""Fixtures and small writers for the data-loader tests (tmp files only; real data is read in place)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"shared test data {path} is absent (expected ../shared/data/{name} next to the repo)")
    return path


def pattern(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB test image."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def save_rgb(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def save_u16(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint16)).save(path)
    return path


def save_u8(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode=None).save(path)
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def rotation(seed: int) -> np.ndarray:
    """A random proper rotation (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def rigid(seed: int) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation(seed)
    m[:3, 3] = np.random.default_rng(seed + 100).normal(size=3)
    return m


def quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z), COLMAP's order (independent of the code under test)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(R).as_quat()
    return np.array([w, x, y, z])


# --- COLMAP models written by hand (legacy format, as COLMAP < 3.12 writes them) -------------------------------

COLMAP_MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4}


def write_colmap(folder: Path, cameras, images, points, binary: bool) -> Path:
    """cameras: [(id, model, w, h, params)]; images: [(id, w2c 4x4, camera_id, name)];
    points: [(id, xyz, rgb, error, [(image_id, point2D_idx)])]. Images get one 2D point per track entry."""
    folder.mkdir(parents=True, exist_ok=True)
    obs: dict[int, list[tuple[float, float, int]]] = {im[0]: [] for im in images}
    tracks = []
    for pid, _, _, _, track in points:
        t = []
        for iid, _ in track:
            t.append((iid, len(obs[iid])))
            obs[iid].append((1.0 + len(obs[iid]), 2.0, pid))
        tracks.append(t)
    if binary:
        with open(folder / "cameras.bin", "wb") as f:
            f.write(struct.pack("<Q", len(cameras)))
            for cid, model, w, h, params in cameras:
                f.write(struct.pack("<iiQQ", cid, COLMAP_MODEL_IDS[model], w, h))
                f.write(struct.pack(f"<{len(params)}d", *params))
        with open(folder / "images.bin", "wb") as f:
            f.write(struct.pack("<Q", len(images)))
            for iid, w2c, cid, name in images:
                f.write(struct.pack("<i", iid))
                f.write(struct.pack("<7d", *quat_wxyz(w2c[:3, :3]), *w2c[:3, 3]))
                f.write(struct.pack("<i", cid))
                f.write(name.encode() + b"\x00")
                f.write(struct.pack("<Q", len(obs[iid])))
                for x, y, pid in obs[iid]:
                    f.write(struct.pack("<ddq", x, y, pid))
        with open(folder / "points3D.bin", "wb") as f:
            f.write(struct.pack("<Q", len(points)))
            for (pid, xyz, rgb, err, _), t in zip(points, tracks):
                f.write(struct.pack("<Q3d3Bd", pid, *xyz, *rgb, err))
                f.write(struct.pack("<Q", len(t)))
                for iid, idx in t:
                    f.write(struct.pack("<ii", iid, idx))
    else:
        lines = ["# Camera list with one line of data per camera:"]
        for cid, model, w, h, params in cameras:
            lines.append(" ".join([str(cid), model, str(w), str(h)] + [repr(float(p)) for p in params]))
        (folder / "cameras.txt").write_text("\n".join(lines) + "\n")
        lines = ["# Image list with two lines of data per image:"]
        for iid, w2c, cid, name in images:
            q, t = quat_wxyz(w2c[:3, :3]), w2c[:3, 3]
            lines.append(" ".join([str(iid)] + [repr(float(v)) for v in (*q, *t)] + [str(cid), name]))
            lines.append(" ".join(f"{x} {y} {pid}" for x, y, pid in obs[iid]))
        (folder / "images.txt").write_text("\n".join(lines) + "\n")
        lines = ["# 3D point list"]
        for (pid, xyz, rgb, err, _), t in zip(points, tracks):
            lines.append(" ".join([str(pid)] + [repr(float(v)) for v in xyz] + [str(int(c)) for c in rgb]
                                  + [repr(float(err))] + [f"{i} {j}" for i, j in t]))
        (folder / "points3D.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def dh():
    """These helpers (pytest runs with --import-mode=importlib, so tests cannot import conftest by name)."""
    import sys

    return sys.modules[__name__]


# --- lens distortion references (brute force, independent of aligngs.data.undistort) --------------------------

def analytic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth RGB pattern in [0,1] defined on normalised (pinhole) image coordinates."""
    return np.stack([0.5 + 0.4 * np.sin(6 * x) * np.cos(5 * y), 0.5 + 0.4 * np.cos(7 * x + 2 * y),
                     0.5 + 0.4 * np.sin(4 * y - 3 * x)], -1).astype(np.float32)


def opencv_distort(x, y, k1=0.0, k2=0.0, p1=0.0, p2=0.0, k3=0.0):
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def opencv_undistort_points(xd, yd, d: dict, iters: int = 200):
    """Invert the distortion by fixed-point iteration (brute force)."""
    x, y = xd.copy(), yd.copy()
    for _ in range(iters):
        dx, dy = opencv_distort(x, y, **d)
        x, y = x - (dx - xd), y - (dy - yd)
    return x, y


def render_distorted(fn, h, w, fx, fy, cx, cy, d: dict) -> np.ndarray:
    """What a distorted camera sees of ``fn`` (defined on undistorted normalised coordinates)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = opencv_undistort_points((u - cx) / fx, (v - cy) / fy, d)
    return fn(x, y)
