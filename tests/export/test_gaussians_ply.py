"""3DGS Gaussian PLY: header lines, hand-computed f_rest ordering, exact round trip, extras."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from aligngs.export.gaussians_ply import gaussian_property_names, read_gaussians_ply, write_gaussians_ply
from aligngs.export.ply import read_ply


def _gaussians(n=3, k_rest=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        means=rng.normal(size=(n, 3)).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        log_scales=rng.normal(size=(n, 3)).astype(np.float32),
        logit_opacities=rng.normal(size=n).astype(np.float32),
        sh0=rng.normal(size=(n, 1, 3)).astype(np.float32),
        shN=rng.normal(size=(n, k_rest, 3)).astype(np.float32),
    )


def test_header_is_the_3dgs_layout(tmp_path):
    g = _gaussians(n=2, k_rest=15)  # SH degree 3
    p = write_gaussians_ply(tmp_path / "g.ply", **g, extra={"class_id": np.array([1, 2], np.int32)})
    raw = p.read_bytes()
    header = raw[: raw.index(b"end_header\n")].decode("ascii").splitlines()
    expected = ["ply", "format binary_little_endian 1.0", "element vertex 2"]
    expected += [f"property float {k}" for k in ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")]
    expected += [f"property float f_rest_{i}" for i in range(45)]
    expected += ["property float opacity"] + [f"property float scale_{i}" for i in range(3)]
    expected += [f"property float rot_{i}" for i in range(4)] + ["property int class_id"]
    assert header == expected
    assert gaussian_property_names(15, {"class_id": np.zeros(2)}) == [line.split()[-1] for line in expected[3:]]
    # 62 float32 + 1 int32 per Gaussian, nothing else
    assert len(raw) - raw.index(b"end_header\n") - len(b"end_header\n") == 2 * (62 * 4 + 4)


def test_f_rest_is_channel_major_by_hand(tmp_path):
    # shN[0, k, c] = 10*c + k: R coefficients 0,1,2 ; G 10,11,12 ; B 20,21,22
    shN = np.array([[[0, 10, 20], [1, 11, 21], [2, 12, 22]]], np.float32)
    g = _gaussians(n=1, k_rest=3)
    g["shN"] = shN
    g["sh0"] = np.array([[[0.1, 0.2, 0.3]]], np.float32)
    g["means"] = np.array([[1, 2, 3]], np.float32)
    g["logit_opacities"] = np.array([-0.5], np.float32)
    g["log_scales"] = np.array([[-1, -2, -3]], np.float32)
    g["quats"] = np.array([[0.9, 0.1, 0.2, 0.3]], np.float32)  # w x y z, stored as given
    p = write_gaussians_ply(tmp_path / "g.ply", **g)
    v, _ = read_ply(p)
    assert [float(v[f"f_rest_{i}"][0]) for i in range(9)] == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    raw = p.read_bytes()
    body = raw[raw.index(b"end_header\n") + len(b"end_header\n"):]
    row = struct.unpack("<26f", body)
    expected = [1, 2, 3, 0, 0, 0, 0.1, 0.2, 0.3, 0, 1, 2, 10, 11, 12, 20, 21, 22, -0.5, -1, -2, -3, 0.9, 0.1, 0.2, 0.3]
    np.testing.assert_allclose(row, expected, rtol=0, atol=1e-7)


def test_round_trip_exact_with_extras_and_torch_inputs(tmp_path):
    g = _gaussians(n=7, k_rest=8, seed=3)  # SH degree 2
    sem = np.random.default_rng(4).normal(size=(7, 5)).astype(np.float32)
    extra = {"sem": sem, "class_id": np.arange(7, dtype=np.int32), "class_conf": np.linspace(0, 1, 7, dtype=np.float32)}
    torch_in = {k: torch.from_numpy(v).requires_grad_(k == "means") for k, v in g.items()}
    write_gaussians_ply(tmp_path / "g.ply", **torch_in, extra=extra)
    back = read_gaussians_ply(tmp_path / "g.ply")
    for k, v in g.items():
        assert back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v)
    np.testing.assert_array_equal(back["normals"], np.zeros((7, 3)))
    assert list(back["extra"]) == ["sem", "class_id", "class_conf"]
    np.testing.assert_array_equal(back["extra"]["sem"], sem)
    assert back["extra"]["class_id"].dtype == np.int32
    np.testing.assert_array_equal(back["extra"]["class_id"], extra["class_id"])
    np.testing.assert_array_equal(back["extra"]["class_conf"], extra["class_conf"])


def test_degree_zero_and_opacity_column(tmp_path):
    g = _gaussians(n=4, k_rest=0)
    g["logit_opacities"] = g["logit_opacities"][:, None]  # [N,1] accepted
    write_gaussians_ply(tmp_path / "g.ply", **g)
    back = read_gaussians_ply(tmp_path / "g.ply")
    assert back["shN"].shape == (4, 0, 3)
    np.testing.assert_array_equal(back["logit_opacities"], g["logit_opacities"][:, 0])


def test_bad_inputs(tmp_path):
    g = _gaussians(n=3)
    with pytest.raises(ValueError, match=r"quats must have shape \[3, 4\]"):
        write_gaussians_ply(tmp_path / "g.ply", **{**g, "quats": g["quats"][:, :3]})
    with pytest.raises(ValueError, match="shN must be"):
        write_gaussians_ply(tmp_path / "g.ply", **{**g, "shN": g["shN"][:, :, :2]})
    with pytest.raises(ValueError, match="clashes"):
        write_gaussians_ply(tmp_path / "g.ply", **g, extra={"opacity": np.zeros(3)})
    from aligngs.export.ply import write_points_ply

    write_points_ply(tmp_path / "pts.ply", g["means"])
    with pytest.raises(ValueError, match="not a 3DGS PLY"):
        read_gaussians_ply(tmp_path / "pts.ply")
