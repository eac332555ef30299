"""Fixtures for the renderer tests: random Gaussian scenes with the awkward cases mixed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pytest
import torch


@dataclass
class Scene:
    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    width: int
    height: int
    kwargs: dict = field(default_factory=dict)

    def params(self):
        return [self.means, self.quats, self.scales, self.opacities, self.colors]

    def args(self, params=None):
        p = self.params() if params is None else params
        return (*p, self.viewmats, self.Ks, self.width, self.height)


def _look_at(eye, target, dtype):
    """World-to-camera (OpenCV: x right, y down, z forward) looking from eye at target."""
    eye = torch.tensor(eye, dtype=dtype)
    fwd = torch.tensor(target, dtype=dtype) - eye
    fwd = fwd / fwd.norm()
    down = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    right = torch.linalg.cross(down, fwd)
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    R = torch.stack([right, down, fwd])  # rows: camera axes in world coordinates
    vm = torch.eye(4, dtype=dtype)
    vm[:3, :3] = R
    vm[:3, 3] = -R @ eye
    return vm


def make_scene(
    seed: int = 0,
    n: int = 120,
    n_cameras: int = 1,
    width: int = 40,
    height: int = 32,
    features: Optional[int] = 4,
    sh_degree: Optional[int] = None,
    sh_bases: Optional[int] = None,
    per_camera_colors: bool = False,
    dtype: torch.dtype = torch.float64,
    awkward: bool = True,
    opaque: bool = False,
    scale: float = 1.0,
    saturated: bool = False,
) -> Scene:
    """Random scene in front of the camera(s). With ``awkward``, some Gaussians sit behind the
    camera, inside the near plane, far off-screen, or below the 1/255 opacity cut; ``opaque``
    stacks many high-opacity Gaussians so pixels hit the 1e-4 transmittance termination;
    ``saturated`` gives every third Gaussian opacity 1 so alphas hit the 0.999 clamp."""
    g = torch.Generator().manual_seed(seed)

    def rand(*s):
        return torch.rand(*s, generator=g, dtype=dtype)

    def randn(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    means = torch.stack([(rand(n) - 0.5) * 3.0, (rand(n) - 0.5) * 2.4, 2.0 + rand(n) * 3.0], -1)
    quats = randn(n, 4) * 2.0  # not normalised on purpose
    scales = (0.03 + 0.2 * rand(n, 3)) * scale
    opacities = 0.05 + 0.9 * rand(n)
    if opaque:
        opacities = 0.85 + 0.14 * rand(n)
        scales = scales * 2.0
    if saturated:
        opacities[::3] = 1.0
    if awkward and n >= 8:
        k = n // 8
        means[:k, 2] = -1.0 - rand(k)  # behind the camera
        means[k : k + 2, 2] = 0.005  # inside the near plane
        means[k + 2 : 2 * k, 0] = 40.0 + rand(k - 2)  # far off-screen to the right
        opacities[2 * k : 2 * k + 3] = 0.002  # below 1/255: culled
    C = n_cameras
    viewmats = torch.stack(
        [_look_at([0.4 * c, -0.2 * c, 0.3 * c], [0.0, 0.0, 3.5], dtype) for c in range(C)]
    )
    f = 0.9 * width
    Ks = torch.tensor([[f, 0.0, width / 2 + 0.3], [0.0, f * 1.05, height / 2 - 0.2], [0.0, 0.0, 1.0]],
                      dtype=dtype)[None].repeat(C, 1, 1)
    lead = (C,) if per_camera_colors else ()
    kwargs = {}
    if sh_degree is not None:
        K = sh_bases or (sh_degree + 1) ** 2
        colors = 0.4 * randn(*lead, n, K, 3)
        kwargs["sh_degree"] = sh_degree
    else:
        colors = rand(*lead, n, features)
    return Scene(means, quats, scales, opacities, colors, viewmats, Ks, width, height, kwargs)


@pytest.fixture
def scene_factory():
    return make_scene
