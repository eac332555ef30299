"""The pipeline with identities and virtual views on: both run, the outputs carry named identity instances."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aligngs.config import preset
from aligngs.data.loaders import load_scene
from aligngs.export.ply import read_ply
from aligngs.pipeline import reconstruct
from aligngs.train.virtual_views import MeshLabelTeacher

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.mark.slow
def test_pipeline_identities_and_virtual_views(tmp_path):
    masks = "associated"  # the path for inputs without instance maps (the room's own maps are ignored)
    cfg = preset("fast", {"data": {"resolution": 48, "max_train_views": 6},
                          "train": {"iterations": 24, "max_init_points": 6000,
                                    "identity": {"masks": masks},
                                    "virtual_views": {"from_fraction": 0.5, "pool": 4}},
                          "mesh": {"min_instance_points": 20}})
    scene = load_scene(ROOM, cfg.data)
    # provided labels and no hook: no virtual views (the run cannot know whether its labels were degraded)
    rep0 = reconstruct(scene, tmp_path / "no_hook", preset("fast", {"data": {"resolution": 48, "max_train_views": 4},
                                                                      "train": {"iterations": 2}}))
    assert rep0["objects"]["virtual_views"]["off"].startswith("provided labels")
    scene.meta["virtual_teacher"] = MeshLabelTeacher.from_ply(ROOM / "gt_mesh.ply", degrade=lambda lab, inst: lab)
    rep = reconstruct(scene, tmp_path, cfg)
    obj = rep["objects"]
    assert obj["identity"]["masks"] == masks and obj["identity"]["objects"] >= 3
    assert obj["virtual_views"] == {"teacher": "ground-truth mesh labels through a simulated teacher", "from_step": 12}
    assert "identity" in rep["final_losses"] and "virtual" in rep["final_losses"]
    v, _ = read_ply(tmp_path / "gaussians.ply")
    assert "object_id" in v and len(np.unique(v["object_id"])) >= 2
    doc = json.loads((tmp_path / "classes.json").read_text())
    insts = [i for c in doc["classes"] for i in c["instances"]]
    assert insts and all(i["name"].startswith(i["name"].rsplit("_", 1)[0]) for i in insts)
    assert {i["source"] for i in insts} <= {"identity", "components"}
    assert any(i["source"] == "identity" for i in insts)
    man = json.loads((tmp_path / "result" / "manifest.json").read_text())
    cls_parts = [p for p in man["parts"] if p["kind"] == "class"]
    assert cls_parts and all("name" in i for p in cls_parts for i in p["meta"]["instances"])
