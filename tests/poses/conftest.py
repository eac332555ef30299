from pathlib import Path

import numpy as np
import pytest

from aligngs.data.types import Camera

ROOT = Path(__file__).resolve().parents[2]
ROOM = ROOT / "samples" / "room"


def look_at(centre, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV c2w looking from ``centre`` at ``target``."""
    c, t, up = (np.asarray(v, np.float64) for v in (centre, target, up))
    z = t - c
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, c
    return m


def make_camera(c2w, w=64, h=48, f=60.0) -> Camera:
    return Camera(c2w, np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]]), w, h)


def random_rotation(rng) -> np.ndarray:
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@pytest.fixture(scope="session")
def room_scene():
    from aligngs.data.loaders import load_scene

    return load_scene(ROOM)


class Geom:
    look_at = staticmethod(look_at)
    make_camera = staticmethod(make_camera)
    random_rotation = staticmethod(random_rotation)


@pytest.fixture
def geom():
    return Geom
