"""A job function for the add-on's server tests (``backend.serve --runner tests/addon/addon_runner.py:run``).

Same signature as ``aligngs.pipeline.reconstruct``. It writes a synthetic room result (``benchmarks/blender_import.py``) with
``aligngs.wire.write_parts`` whose size depends on the job: the number of points/classes comes from an optional
``control.json`` among the inputs ({"points": int, "tris": int, "classes": int, "steps": int, "step_s": float,
"fail": "bad_input" | "raise", "splat": true, "point_preview": int}; ``point_preview`` attaches a live point preview of
that many points to every progress step (step i: x = i, y = point index, z = 0), ``splat`` also writes a small 3DGS PLY, ``SPLAT_PLY``), and the number of cameras equals the number of submitted images, so a test can
check that what it sent reached the job and what the job wrote reached Blender.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from aligngs.progress import PointPreview, Progress, check_cancel  # noqa: E402
from aligngs.wire import write_parts  # noqa: E402

from benchmarks.blender_import import synthetic_result  # noqa: E402

IMAGE_EXT = {".jpg", ".jpeg", ".png"}
SPLAT_PLY = (b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float f_dc_0\n"
             b"end_header\n" + bytes(range(16)))


def _points(step: int, n: int) -> PointPreview | None:
    if n <= 0:
        return None
    k = np.arange(n)
    pos = np.stack([np.full(n, step), k % 2048, np.zeros(n)], 1).astype(np.float16)
    return PointPreview(pos, np.full((n, 3), 40 * step % 256, np.uint8), (k % 150).astype(np.uint8), total=n,
                        up=(0.0, 0.0, 1.0))


def run(input_path, out_dir, config, *, progress=None, should_cancel=None) -> dict:
    input_path, out_dir = Path(input_path), Path(out_dir)
    ctl_file = input_path / "control.json"
    ctl = json.loads(ctl_file.read_text()) if ctl_file.is_file() else {}
    images = sorted(p for p in input_path.rglob("*") if p.suffix.lower() in IMAGE_EXT)
    if ctl.get("fail") == "bad_input":
        from aligngs.data.errors import DataError

        raise DataError(images[0] if images else input_path, "not a usable image (test)")
    steps, step_s = int(ctl.get("steps", 4)), float(ctl.get("step_s", 0.01))
    for i in range(steps):
        check_cancel(should_cancel)
        if ctl.get("fail") == "raise" and i == steps // 2:
            raise RuntimeError("synthetic failure in training (test)")
        if progress is not None:
            progress(Progress("train", (i + 1) / steps, iteration=i + 1, total=steps,
                              eta_s=(steps - i - 1) * step_s, points=_points(i + 1, int(ctl.get("point_preview", 0)))))
        time.sleep(step_s)
    manifest, parts = synthetic_result(int(ctl.get("points", 20_000)), int(ctl.get("tris", 4_000)),
                                       int(ctl.get("classes", 4)), n_cameras=len(images), seed=len(images))
    write_parts(out_dir / "result", parts, scene="room",
                up=manifest["up"])
    if ctl.get("splat"):
        (out_dir / "gaussians.ply").write_bytes(SPLAT_PLY)
    return {"images": len(images), "iterations": config.train.iterations, "preset_resolution": config.data.resolution,
            "semantics": config.train.semantics.enabled, "mesh": config.mesh.enabled, "poses": config.data.poses}
