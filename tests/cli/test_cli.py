"""The ``aligngs`` command line: reconstruct (summary, outputs, readable errors) and models list/download."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aligngs.cli import main  # noqa: E402
from aligngs.priors import models  # noqa: E402

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


def test_models_list_names_every_checkpoint_and_flags_non_commercial(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for info in models.list_models():
        (line,) = [ln for ln in lines if ln.startswith(info.id + " ")]
        assert info.licence in line
        assert ("NON-COMMERCIAL" in line) == info.non_commercial
        assert ("default" in line) == (info.id in models.DEFAULT_MODELS.values())


def test_models_download_offline_fails_naming_the_checkpoint(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "download", "facebook/dpt-dinov2-small-nyu"]) == 1
    err = capsys.readouterr().err
    assert "could not download facebook/dpt-dinov2-small-nyu" in err


def test_reconstruct_sample_prints_summary_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "room"
    rc = main(["reconstruct", str(ROOM), "--out", str(out), "--preset", "fast", "--mode", "3dgs",
               "--iterations", "40", "--resolution", "48", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"AlignGS (3dgs) on {ROOM}" in text and "PSNR" in text
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "3dgs" and report["config"]["train"]["iterations"] == 40
    assert report["config"]["data"]["resolution"] == 48
    assert report["counts"]["mesh_faces"] > 0
    for name in ("gaussians.ply", "mesh.ply", "cameras.json", "result/manifest.json"):
        assert (out / name).is_file(), name


def test_reconstruct_bad_inputs_are_readable(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["reconstruct", str(empty), "--out", str(tmp_path / "o1")]) == 2
    assert str(empty) in capsys.readouterr().err
    bad_cfg = tmp_path / "cfg.json"
    bad_cfg.write_text("{not json")
    with pytest.raises(SystemExit, match="cfg.json"):
        main(["reconstruct", str(ROOM), "--out", str(tmp_path / "o2"), "--config", str(bad_cfg)])
    bad_cfg.write_text(json.dumps({"train": {"iterations": "many"}}))
    assert main(["reconstruct", str(ROOM), "--out", str(tmp_path / "o3"), "--config", str(bad_cfg)]) == 2
    assert "config.train.iterations: expected an integer" in capsys.readouterr().err
