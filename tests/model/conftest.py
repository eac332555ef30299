"""The dense-init tests use the poses tests' camera geometry helpers (look_at, make_camera, random_rotation)."""
from tests.poses.conftest import geom  # noqa: F401  (fixture)
