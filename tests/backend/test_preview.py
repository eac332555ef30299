"""The live point preview through a real server: worker -> scheduler -> every attached client, checked on the way."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.priors.ade20k import colorize
from aligngs.wire import PointsPreview, ProtocolError, decode_points, encode_points
from backend.worker import NO_CLASS_COLOR

from .backend_testlib import scene_files


def test_progress_carries_the_point_preview_to_the_client(servers, clients):
    sp = servers()
    c = clients(sp.endpoint)
    c.hello()
    job, seq = c.submit(scene_files(2, n=3, steps=4, step_s=0.6, point_preview=500), preset="fast",
                        overrides={"train": {"iterations": 30}}, name="room")
    got = []
    c.wait(job, seq, timeout=90, on_progress=lambda m: got.append((m.header["iteration"], m.points()))
           if m.header.get("points") else None)
    assert len(got) >= 2, got  # the worker caps bursts at one per 0.5 s; the runner sends one per 0.6 s iteration
    i = np.arange(500)
    for it, pts in got:
        assert isinstance(pts, PointsPreview) and pts.n == 500 and pts.total == 1000 and pts.up == (0.0, -1.0, 0.0)
        np.testing.assert_array_equal(pts.positions.astype(np.float32), np.stack([np.full(500, it), i, -i], 1))
        np.testing.assert_array_equal(pts.colors[:, 1], it % 256)
        ids = (i % 150).astype(np.int16)
        want = colorize(ids[:-1])
        np.testing.assert_array_equal(pts.class_colors[:-1], want)
        np.testing.assert_array_equal(pts.class_colors[-1], NO_CLASS_COLOR)  # 255: no class yet


def _preview(n=4, classes=True):
    rng = np.random.default_rng(0)
    return PointsPreview(rng.normal(size=(n, 3)).astype(np.float16), rng.integers(0, 256, (n, 3), dtype=np.uint8),
                         rng.integers(0, 256, (n, 3), dtype=np.uint8) if classes else None, 9, (0.0, 0.0, 1.0))


@pytest.mark.parametrize("classes", [True, False])
def test_points_round_trip_after_other_frames(classes):
    p = _preview(classes=classes)
    field, frames = encode_points(p, first_frame=2)
    assert field["positions"]["frame"] == 2 and (field["class_colors"] is None) != classes
    q = decode_points(field, [b"header", b"image"] + [bytes(f) for f in frames])
    np.testing.assert_array_equal(q.positions, p.positions)
    np.testing.assert_array_equal(q.colors, p.colors)
    assert (q.class_colors is None) == (not classes) and q.total == 9 and q.up == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("mutate, match", [
    (lambda f, fr: f["positions"].update(dtype="float32", nbytes=48), "float16"),
    (lambda f, fr: f.pop("colors"), "colors is required"),
    (lambda f, fr: f["colors"].update(frame=9), "out of range"),
    (lambda f, fr: fr.__setitem__(2, b"x"), "expected"),
    (lambda f, fr: f.update(total=-1), "total"),
    (lambda f, fr: f.update(up=[0, 1]), "up"),
    (lambda f, fr: f["colors"].update(shape=[3, 3], nbytes=9), "rows"),
])
def test_bad_points_fields_are_protocol_errors(mutate, match):
    field, frames = encode_points(_preview(), first_frame=1)
    frames = [b"header"] + [bytes(f) for f in frames]
    mutate(field, frames)
    with pytest.raises(ProtocolError, match=match):
        decode_points(field, frames)
