"""In Blender (real bpy in .venv-blender, the built extension zip, a real backend.serve running the pipeline): the
sample room reconstructed with the demo's settings yields per-instance objects under their class collections, each
instance toggle hides exactly that instance, and the objects per class are within one of the room's truth."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "addon"))

from addon_testlib import BPY_PYTHON, BackendServer, have_backend  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
ROOM = Path(os.environ.get("ALIGNGS_SAMPLE_ROOM", REPO / "samples" / "room"))
DEMO_ITERATIONS, DEMO_RESOLUTION = 120, 112  # tools.demo's DEMO_ITERATIONS / DEMO_RESOLUTION
CHECKED = ("wall", "floor", "ceiling", "chair", "lamp")


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    if not BPY_PYTHON.is_file():
        pytest.skip(f"{BPY_PYTHON} missing (make blender-env)")
    if not have_backend() or not (ROOM / "images").is_dir():
        pytest.skip("backend.serve, .venv or the sample room missing")
    import build_addon

    out = tmp_path_factory.mktemp("dist")
    cache = build_addon.DEFAULT_CACHE
    offline = all(any((cache / py / "linux-x64").glob("*.whl")) for py, _ in build_addon.PYTHONS)
    (zip_path,) = build_addon.build(out, offline=offline, platforms=["linux-x64"]).zips
    srv = BackendServer(tmp_path_factory.mktemp("objects-server") / "jobs")
    tmp = Path(tempfile.mkdtemp(prefix="aligngs-objects-bpy-"))
    try:
        res = tmp / "out.json"
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / "user"), PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        cmd = [str(BPY_PYTHON), str(Path(__file__).parent / "drivers" / "objects_room.py"), "--out", str(res),
               "--zip", str(zip_path), "--address", srv.address, "--images", str(ROOM),
               "--iterations", str(DEMO_ITERATIONS), "--resolution", str(DEMO_RESOLUTION), "--timeout", "2400"]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=2700)
        assert proc.returncode == 0 and res.is_file(), f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}\n{srv.log()}"
        return json.loads(res.read_text())
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _truth() -> dict[str, int]:
    meta = json.loads((ROOM / "scene.json").read_text())
    out: dict[str, int] = {}
    for o in meta["objects"]:
        out[o["class_name"]] = out.get(o["class_name"], 0) + 1
    return out


def test_instances_are_collections_under_their_class(facts):
    assert facts["phase"] == "done", facts
    classes = facts["classes"]
    named = {k: v for k, v in classes.items() if v["instance_items"]}
    assert set(CHECKED) <= set(named), sorted(classes)
    for name, c in named.items():
        safe = name.replace(" ", "_")
        assert c["children"] == c["item_collections"] == c["instance_items"], name
        assert c["children"] == [f"{safe}_{k}" for k in range(len(c["children"]))], name
        for inst, objs in c["per_instance"].items():
            assert inst in objs  # the instance's mesh, named like it (+ "<name> · points")
            assert all(o in (inst, f"{inst} · points") for o in objs), (inst, objs)


def test_objects_per_class_within_one_of_the_truth(facts):
    truth = _truth()
    got = {c: facts["classes"][c]["n_mesh_objects"] for c in CHECKED}
    print("objects per class (Blender / truth):", {c: (got[c], truth[c]) for c in CHECKED})
    for c in CHECKED:
        assert abs(got[c] - truth[c]) <= 1, (c, got[c], truth[c])


def test_each_instance_toggle_hides_exactly_that_instance(facts):
    toggles = facts["toggles"]
    assert len(toggles) >= sum(_truth()[c] for c in CHECKED) - len(CHECKED)
    for t in toggles:
        assert t["hidden"] == t["expected"] and t["hidden"], t
        assert t["render_hidden"] and t["restored"], t
    ct = facts["class_toggle"]
    assert ct["hidden"] == ct["expected"] and ct["hidden"]
