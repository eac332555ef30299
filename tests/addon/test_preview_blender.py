"""The live preview in real Blender against a real backend.serve (synthetic job function sending point previews)."""
from __future__ import annotations

import pytest

from addon_testlib import make_image_folder, run_driver

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def facts(addon_zip, backend, tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    imgs = make_image_folder(d / "imgs", 3, {"steps": 6, "step_s": 0.7, "point_preview": 50_000, "points": 5_000})
    return run_driver("preview_live", "--address", backend.address, "--images", str(imgs), zip_path=addon_zip,
                      timeout=300)


def test_preview_object_is_rewritten_in_place_then_removed(facts):
    assert facts["op"] == ["FINISHED"] and facts["phase"] == "done", facts["error"]
    seen = [s for s in facts["seen"] if s is not None]
    assert len(seen) >= 3, seen  # one object, several previews
    assert len({s[0] for s in seen}) == 1 and len({s[1] for s in seen}) == 1  # same object, same mesh datablock
    assert all(s[2] == 50_000 for s in seen)
    xs = [s[3] for s in seen]
    assert len(set(xs)) >= 3 and xs == sorted(xs)  # new coordinates from each step (x = step), in order
    assert seen[0][4] == "Col" and seen[-1][4] == "ClassCol" and seen[-1][5] == "ClassCol"  # the colour toggle
    assert facts["preview_after"] == [] and not facts["preview_mesh_left"]  # gone when the result landed
    assert facts["root"]
