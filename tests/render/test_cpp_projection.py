"""The C++ projection and SH colours (csrc/project.cpp) against the torch ones, values and gradients."""

from __future__ import annotations

import pytest
import torch

from aligngs.render import _project_cpp
from aligngs.render._cpp import kernel
from aligngs.render._projection import project_gaussians, sh_colors


def _project_both(scene, antialiased: bool, weights):
    outs = []
    for impl in ("torch", "cpp"):
        leaves = [t.clone().requires_grad_(True) for t in (scene.means, scene.quats, scene.scales, scene.opacities)]
        kw = dict(eps2d=0.3, near_plane=0.01, far_plane=1e10, radius_clip=0.0, antialiased=antialiased)
        if impl == "torch":
            p = project_gaussians(*leaves, scene.viewmats, scene.Ks, scene.width, scene.height, **kw)
            res = (p.means2d, p.conics, p.depths, p.opacities, p.radii)
        else:
            res = _project_cpp.project(kernel("cpp"), *leaves, scene.viewmats, scene.Ks, scene.width, scene.height,
                                       workers=2, **kw)
        valid = (res[4] > 0).all(-1)
        # a loss over the visible Gaussians only (what the compositing reads)
        loss = sum(((r * valid.reshape(*valid.shape, *([1] * (r.dim() - 2)))) * w).sum()
                   for r, w in zip(res[:4], weights))
        loss.backward()
        outs.append((res, [t.grad for t in leaves]))
    return outs


@pytest.mark.parametrize("opts", [
    dict(seed=21, n=5000, n_cameras=2, dtype=torch.float32, antialiased=False),  # two halves on the workers
    dict(seed=22, n=700, n_cameras=3, antialiased=True),
    dict(seed=23, n=400, scale=3.0, antialiased=False),  # large Gaussians: the Jacobian clamp at the border
])
def test_cpp_projection_matches_torch(opts, scene_factory):
    antialiased = opts.pop("antialiased")
    scene = scene_factory(features=None, sh_degree=0, **opts)
    g = torch.Generator().manual_seed(1)
    C, N = scene.viewmats.shape[0], scene.means.shape[0]
    weights = [torch.randn(C, N, 2, generator=g, dtype=scene.means.dtype),
               torch.randn(C, N, 3, generator=g, dtype=scene.means.dtype),
               torch.randn(C, N, generator=g, dtype=scene.means.dtype),
               torch.randn(C, N, generator=g, dtype=scene.means.dtype)]
    (ref, ref_g), (got, got_g) = _project_both(scene, antialiased, weights)
    assert torch.equal(ref[4], got[4]), "radii"
    valid = (ref[4] > 0).all(-1)
    assert 0 < int(valid.sum()) < C * N  # some culled, some visible
    tol = 3e-5 if scene.means.dtype == torch.float32 else 1e-10
    for name, r, c in zip(["means2d", "conics", "depths", "opacities"], ref[:4], got[:4]):
        r, c = r.detach()[valid], c.detach()[valid]
        assert float((r - c).abs().max()) <= tol * (float(r.abs().max()) + 1e-12), name
    for name, r, c in zip(["means", "quats", "scales", "opacities"], ref_g, got_g):
        assert float(r.abs().max()) > 0, name
        assert float((r - c).abs().max()) <= 50 * tol * float(r.abs().max()), name


@pytest.mark.parametrize("degree,per_camera", [(0, False), (1, False), (2, True), (3, False), (4, True)])
def test_cpp_sh_matches_torch(degree, per_camera, scene_factory):
    scene = scene_factory(seed=30 + degree, n=300, n_cameras=2, features=None, sh_degree=degree,
                          sh_bases=(degree + 1) ** 2 + 2, per_camera_colors=per_camera)
    outs = []
    w = torch.randn(2, 300, 3, generator=torch.Generator().manual_seed(degree), dtype=scene.means.dtype)
    for impl in ("torch", "cpp"):
        means = scene.means.clone().requires_grad_(True)
        coeffs = scene.colors.clone().requires_grad_(True)
        if impl == "torch":
            col = sh_colors(degree, means, coeffs, scene.viewmats)
        else:
            col = _project_cpp.sh_colors(kernel("cpp"), degree, means, coeffs, scene.viewmats, workers=2)
        (col * w).sum().backward()
        d_means = means.grad if means.grad is not None else torch.zeros_like(means)  # degree 0: no view dependence
        outs.append((col.detach(), d_means, coeffs.grad))
    for name, r, c in zip(["colors", "d_means", "d_coeffs"], *outs):
        assert float((r - c).abs().max()) <= 1e-10 * (float(r.abs().max()) + 1e-12), name
    if degree > 0:
        assert float(outs[0][1].abs().max()) > 0  # view dependence reaches the means


def test_camera_gradients_use_the_torch_projection(scene_factory):
    scene = scene_factory(seed=40, n=200, features=None, sh_degree=1)
    k = kernel("cpp")
    assert _project_cpp.uses_cpp_projection(k, scene.viewmats, scene.Ks)
    assert not _project_cpp.uses_cpp_projection(k, scene.viewmats.clone().requires_grad_(True), scene.Ks)
    assert not _project_cpp.uses_cpp_projection(None, scene.viewmats, scene.Ks)


@pytest.mark.parametrize("kernel_choice", ["cpp", "torch"])
def test_view_sh_colors_match_gsplats_reference(kernel_choice, scene_factory, monkeypatch):
    """The SH colours AlignGS blends with its normals (render/view.py) are gsplat's: its own pure-torch SH."""
    from gsplat.cuda._torch_impl import _spherical_harmonics

    from aligngs.render import api
    from aligngs.render.view import ViewTensors, sh_colors

    monkeypatch.setattr(api, "CPU_KERNEL", kernel_choice)
    scene = scene_factory(seed=50, n=500, features=None, sh_degree=3, dtype=torch.float32)
    vm = scene.viewmats[:1]
    centre = torch.inverse(vm[0])[:3, 3]
    view = ViewTensors(vm, scene.Ks[:1], scene.width, scene.height, centre)
    ref = torch.clamp_min(_spherical_harmonics(3, scene.means - centre, scene.colors) + 0.5, 0.0)
    got = sh_colors(scene.colors, scene.means, view, 3)
    assert got.shape == ref.shape and float((got - ref).abs().max()) < 1e-5


def test_sh_degree_beyond_the_coefficients_is_refused_not_read_out_of_bounds(scene_factory):
    """K = 4 coefficients hold degree 1; degree 3 would read and write past them (heap corruption once, found by a
    profiling script): the public entry point and the C++ ops themselves refuse it."""
    from aligngs.render.api import sh_colors_cpu

    scene = scene_factory(seed=60, n=300, n_cameras=1, features=None, sh_degree=1, sh_bases=4)
    with pytest.raises(ValueError, match=r"sh_colors_cpu: sh_degree=3 needs K >= 16 SH bases, colors has K=4"):
        sh_colors_cpu(3, scene.means, scene.colors, scene.viewmats, cpu_kernel="cpp")
    k = kernel("cpp")
    out = scene.means.new_empty(1, 300, 3)
    with pytest.raises(RuntimeError, match=r"sh_forward: degree 3 needs K >= 16 coefficients, got K = 4"):
        k.sh_forward(3, scene.means, scene.colors, scene.viewmats, 0, 300, out)
    d_means, d_coeffs = torch.zeros_like(scene.means), torch.zeros_like(scene.colors)
    with pytest.raises(RuntimeError, match=r"sh_backward: degree 3 needs K >= 16"):
        k.sh_backward(3, scene.means, scene.colors, scene.viewmats, 0, 300, out, d_means, d_coeffs)
    with pytest.raises(RuntimeError, match=r"sh_forward: colours must hold C x N x 3"):
        k.sh_forward(1, scene.means, scene.colors, scene.viewmats, 0, 300, out[:, :100])
    # the degree the coefficients hold still runs
    assert sh_colors_cpu(1, scene.means, scene.colors, scene.viewmats, cpu_kernel="cpp").shape == (1, 300, 3)


def test_projection_ops_refuse_ranges_and_arrays_they_would_overrun(scene_factory):
    """The C++ projection ops index [C, N, ...] arrays by a Gaussian range: a range past N or an output of the wrong
    size is an error, not a write past the tensor."""
    scene = scene_factory(seed=61, n=200, n_cameras=2, features=None, sh_degree=0, dtype=torch.float32)
    k = kernel("cpp")
    C, N = 2, 200
    ins = (scene.means, scene.quats, scene.scales, scene.opacities, scene.viewmats, scene.Ks)
    outs = [scene.means.new_empty(C, N, 2), scene.means.new_empty(C, N, 3), scene.means.new_empty(C, N),
            scene.means.new_empty(C, N), torch.empty(C, N, 2, dtype=torch.int32)]
    opts = (scene.width, scene.height, 0.3, 0.01, 1e10, 0.0, False)
    with pytest.raises(RuntimeError, match=r"project_forward: range \[150, 250\) outside the 200 Gaussians"):
        k.project_forward(*ins, 150, 100, *opts, *outs)
    with pytest.raises(RuntimeError, match=r"project_forward: conics must hold 1200 values"):
        k.project_forward(*ins, 0, N, *opts, outs[0], outs[1][:1], *outs[2:])
    k.project_forward(*ins, 0, N, *opts, *outs)  # the right sizes still run
    assert int((outs[4] > 0).sum()) > 0
    d = [torch.zeros_like(t) for t in ins[:4]]
    g = [torch.ones_like(o) for o in outs[:4]]
    with pytest.raises(RuntimeError, match=r"project_backward: d_quats must hold 800 values"):
        k.project_backward(*ins, 0, N, scene.width, scene.height, 0.3, False, *g, d[0], d[1][:10], d[2], d[3])
    with pytest.raises(RuntimeError, match=r"project_backward: range \[0, 201\) outside"):
        k.project_backward(*ins, 0, N + 1, scene.width, scene.height, 0.3, False, *g, *d)
