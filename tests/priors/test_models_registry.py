"""Checkpoint registry, licence notices, the missing-checkpoint error, HF-cache loading and download()."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from aligngs.priors import models as M
from aligngs.priors.depth import make_depth_teacher
from aligngs.priors.teachers import make_semantic_teacher


def test_registry_covers_the_defaults_and_vggt():
    for name, model_id in M.DEFAULT_MODELS.items():
        info = M.REGISTRY[model_id]
        assert info.architecture == name and not info.non_commercial, model_id
    assert M.DEFAULT_MODELS["eomt"] == "tue-mps/ade20k_semantic_eomt_large_512"
    assert M.DEFAULT_MODELS["mask2former"] == "facebook/mask2former-swin-large-ade-semantic"
    assert M.DEFAULT_MODELS["dpt"] == "facebook/dpt-dinov2-small-nyu"
    assert M.DEFAULT_MODELS["depth_anything"] == "depth-anything/Depth-Anything-V2-Small-hf"
    vggt = M.REGISTRY["facebook/VGGT-1B"]
    assert vggt.task == "poses" and vggt.non_commercial and "NC" in vggt.licence
    assert {c.id for c in M.list_models("depth")} >= {"facebook/dpt-dinov2-small-nyu",
                                                       "depth-anything/Depth-Anything-V2-Small-hf"}
    assert all(c.task == "semantic" for c in M.list_models("semantic"))


def test_licence_notice_levels(caplog):
    with caplog.at_level(logging.INFO, logger="aligngs.priors.models"):
        M.warn_licence("facebook/VGGT-1B")
        M.warn_licence("facebook/dpt-dinov2-small-nyu")
    recs = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(lv == logging.WARNING and "facebook/VGGT-1B" in m and "non-commercial" in m for lv, m in recs)
    assert not any(lv >= logging.WARNING and "dpt-dinov2" in m for lv, m in recs)
    # a folder inside a Hugging Face cache maps back to its id
    snap = "/x/hub/models--depth-anything--Depth-Anything-V2-Base-hf/snapshots/abc"
    assert M.checkpoint_info(snap).id == "depth-anything/Depth-Anything-V2-Base-hf"


def test_missing_hub_checkpoint_names_id_and_download_command(tmp_path):
    empty_cache = tmp_path / "hub"
    empty_cache.mkdir()
    with pytest.raises(M.CheckpointNotFoundError) as e:
        make_semantic_teacher("mask2former", None, "cpu", cache_dir=str(empty_cache))
    msg = str(e.value)
    assert "facebook/mask2former-swin-large-ade-semantic" in msg
    assert "aligngs models download facebook/mask2former-swin-large-ade-semantic" in msg
    assert "local folder" in msg
    with pytest.raises(M.CheckpointNotFoundError, match="aligngs models download depth-anything/Depth-Anything"):
        make_depth_teacher("depth_anything", None, "cpu", cache_dir=str(empty_cache))


def test_missing_or_incomplete_local_folder(tmp_path):
    with pytest.raises(M.CheckpointNotFoundError, match="does not exist"):
        make_semantic_teacher("eomt", str(tmp_path / "nope"), "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(M.CheckpointNotFoundError, match="has no config.json"):
        make_depth_teacher("dpt", str(tmp_path / "empty"), "cpu")


def _fake_hub_cache(cache: Path, repo_id: str, save_tiny, kind: str) -> Path:
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    save_tiny(repo / "snapshots" / commit, kind)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo


def test_hub_id_loads_from_the_cache_offline_and_warns_on_nc_licence(tmp_path, save_tiny, caplog, make_image, rng):
    repo_id = "depth-anything/Depth-Anything-V2-Base-hf"  # CC-BY-NC-4.0 in the registry
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, repo_id, save_tiny, "depth_anything")
    with caplog.at_level(logging.WARNING, logger="aligngs.priors.models"):
        teacher = make_depth_teacher("depth_anything", repo_id, "cpu", cache_dir=str(cache))
    assert any("CC-BY-NC-4.0" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert teacher.model_id == repo_id and teacher.output_kind == "disparity"
    assert repo_id in teacher.cache_tag
    depth = teacher.predict(make_image(rng, 28, 42))
    assert depth.shape == (28, 42) and np.isfinite(depth).all()


def test_download_fetches_only_loader_files(monkeypatch, tmp_path):
    import huggingface_hub

    calls = []

    def fake_list(repo_id):
        return {"a/st": ["config.json", "model.safetensors", "pytorch_model.bin"],
                "b/bin": ["config.json", "pytorch_model.bin"]}[repo_id]

    def fake_snapshot(repo_id, cache_dir=None, allow_patterns=None):
        calls.append((repo_id, cache_dir, tuple(allow_patterns)))
        return str(tmp_path / repo_id)

    monkeypatch.setattr(huggingface_hub, "list_repo_files", fake_list)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    out = M.download(["a/st", "b/bin"], cache_dir=tmp_path)
    assert out == {"a/st": tmp_path / "a/st", "b/bin": tmp_path / "b/bin"}
    (id_a, cache_a, pats_a), (id_b, _, pats_b) = calls
    assert cache_a == str(tmp_path)
    assert "*.safetensors" in pats_a and "*.bin" not in pats_a  # safetensors present: no duplicate .bin
    assert "*.bin" in pats_b and "*.json" in pats_b
