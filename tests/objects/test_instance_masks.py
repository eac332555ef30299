"""View-consistent object maps: provided instance maps re-numbered; teacher segments associated across views in 3-D."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aligngs.config import DataConfig
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.data.types import Camera, Frame
from aligngs.priors.instances import associate_segments, label_segments, provided_object_maps

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


def test_provided_maps_renumber_and_check():
    a = np.array([[0, 7], [12, 7]])
    b = np.array([[12, 0], [0, 40]])
    frames = [Frame("a", None, extras={"instance": a}), Frame("b", None, extras={"instance": b})]
    om = provided_object_maps(frames)
    assert om.num_objects == 3 and om.source == "provided"
    assert om.maps[0].tolist() == [[0, 1], [2, 1]] and om.maps[1].tolist() == [[2, 0], [0, 3]]
    assert om.origin == {1: 7, 2: 12, 3: 40}
    assert provided_object_maps(frames + [Frame("c", None)]) is None
    with pytest.raises(ValueError, match="max_instances"):
        provided_object_maps(frames, max_objects=3)


def test_label_segments():
    lab = np.full((10, 10), -1)
    lab[:4, :4] = 2
    lab[6:, 6:] = 2  # a second, separate region of class 2
    lab[:4, 6:] = 5
    lab[9, 0] = 5  # too small
    seg, classes = label_segments(lab, min_area=4)
    assert sorted(classes) == [2, 2, 5]
    assert len(np.unique(seg[seg > 0])) == 3 and seg[9, 0] == 0 and (seg[lab == -1] == 0).all()


@pytest.fixture(scope="module")
def room_views():
    scene = load_scene(ROOM, DataConfig(resolution=80))
    train, _ = split_frames(scene, DataConfig(resolution=80))
    return train[::2]


def test_associated_segments_are_consistent_across_views(room_views):
    frames = room_views
    segs = [label_segments(f.labels, min_area=12) for f in frames]
    om = associate_segments([s for s, _ in segs], [c for _, c in segs], [f.depth for f in frames],
                            [f.camera for f in frames], voxel=0.05)
    assert om.source == "associated" and om.num_objects >= 5
    # each ground-truth thing seen well in several views gets the same object id in (nearly) all of them
    consistent, total = 0, 0
    for gid in np.unique(np.concatenate([np.unique(f.extras["instance"]) for f in frames])):
        if gid <= 6:  # walls / floor / ceiling touch each other: the label-map fallback merges them by design
            continue
        ids = []
        for f, m in zip(frames, om.maps):
            sel = f.extras["instance"] == gid
            if sel.sum() >= 40:
                vals = m[sel]
                vals = vals[vals > 0]
                if len(vals):
                    ids.append(int(np.bincount(vals).argmax()))
        if len(ids) >= 2:
            total += 1
            consistent += int(len(set(ids)) == 1)
    assert total >= 5 and consistent / total >= 0.8
    # without 3-D overlap nothing merges: every segment of every view is its own object
    far = [Camera(f.camera.c2w @ np.diag([1, 1, 1, 1.0]) + np.pad(np.eye(3)[:, :1] * 100 * i, ((0, 1), (3, 0))),
                  f.camera.K, f.camera.width, f.camera.height) for i, f in enumerate(frames)]
    om2 = associate_segments([s for s, _ in segs], [c for _, c in segs], [f.depth for f in frames], far, voxel=0.05)
    assert om2.num_objects == sum(len(c) for _, c in segs)
