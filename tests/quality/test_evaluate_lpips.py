"""evaluate_views reports LPIPS (VGG) when its weights are on disk and says why not (None + a note) otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aligngs.config import DataConfig, preset
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.extract.extent import scene_extent
from aligngs.extract.views import evaluate_views
from aligngs.metrics import lpips_vgg
from aligngs.model.gaussians import GaussianModel
from aligngs.model.init import initial_points

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.fixture(scope="module")
def small():
    cfg = DataConfig(resolution=32)
    scene = load_scene(ROOM, cfg)
    train, test = split_frames(scene, cfg)
    extent = scene_extent([f.camera for f in scene.frames], scene.points)
    pts, cols, _ = initial_points(scene, train, 2000, 0, extent)
    model = GaussianModel.from_points(pts, cols, sh_degree=0, init_opacity=0.5, device="cpu")
    return model, test[:2]


def _point_weights_at(monkeypatch, backbone: Path, lin: Path) -> None:
    monkeypatch.setenv("ALIGNGS_LPIPS_VGG16", str(backbone))
    monkeypatch.setenv("ALIGNGS_LPIPS_LIN", str(lin))
    monkeypatch.setattr(lpips_vgg.torch.hub, "get_dir", lambda: str(backbone.parent / "no-hub"))
    monkeypatch.setattr(lpips_vgg.importlib.util, "find_spec", lambda name: None)
    lpips_vgg._load_cached.cache_clear()


def test_missing_weights_give_none_and_a_note(small, monkeypatch, tmp_path):
    _point_weights_at(monkeypatch, tmp_path / "missing-vgg.pth", tmp_path / "missing-lin.pth")
    model, test = small
    res = evaluate_views(model, test, preset("fast"))
    assert res["lpips"] is None
    assert "VGG16 backbone weights not found" in res["lpips_note"] and "missing-vgg.pth" in res["lpips_note"]
    assert np.isfinite(res["psnr"])


def test_weights_on_disk_give_lpips_per_view(small, monkeypatch, tmp_path):
    # random weights with the real layout: the number is meaningless, but it must be computed and be 0 for a perfect
    # render and > 0 otherwise
    torch.manual_seed(0)
    c_in, state = 3, {}
    idx = 0
    for v in lpips_vgg._VGG_CFG:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, c_in, 3, 3) * (2.0 / (9 * c_in)) ** 0.5
        state[f"features.{idx}.bias"] = torch.zeros(v)
        c_in, idx = v, idx + 2
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(lpips_vgg.CHANNELS)}
    torch.save(state, tmp_path / "vgg16.pth")
    torch.save(lin, tmp_path / "lin.pth")
    _point_weights_at(monkeypatch, tmp_path / "vgg16.pth", tmp_path / "lin.pth")
    model, test = small
    res = evaluate_views(model, test, preset("fast"))
    assert res["lpips"] is not None and res["lpips"] > 0 and "lpips_note" not in res
    net = lpips_vgg.load_lpips()
    img = torch.from_numpy(test[0].image).permute(2, 0, 1)[None].float()
    assert float(net(img, img)[0]) == pytest.approx(0.0, abs=1e-7)
    lpips_vgg._load_cached.cache_clear()
