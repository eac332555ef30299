"""A stand-in job function for the server mechanics tests (same signature as aligngs.pipeline.reconstruct).

Behaviour comes from an optional ``control.json`` among the inputs:
  steps (int, 5)         train iterations reported as progress
  step_s (float, 0.01)   sleep per iteration
  points (int, 2000)     points in the "points" part (800_000+ makes arrays that are streamed in chunks)
  preview (bool, false)  attach a 40x30 RGB preview to the train progress
  point_preview (int, 0) attach a live point preview of this many points to every train progress: positions
                         (it, i, -i), colours (i % 256, it, 7), class ids i % 150 (the last point: 255, no class)
  crash (str|null)       "raise" (RuntimeError), "bad_input" (DataError), "missing_model" (CheckpointNotFoundError),
                         "exit" (os._exit(3)), "segv" (SIGSEGV)
  crash_at (int, 0)      the train iteration at which to crash
  ignore_cancel (bool)   never look at should_cancel (to test terminate after the grace period)
It writes ``runner.pid`` first, then the parts with aligngs.wire.write_parts, a 3DGS-style ``gaussians.ply``
and a plain ``mesh.ply``. The summary carries sha256 digests of every input file, so a test can check that
the bytes it sent are the bytes the job saw.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from aligngs.data.errors import DataError
from aligngs.progress import STAGES, PointPreview, Progress, check_cancel
from aligngs.wire import ResultPart, write_parts


def make_parts(seed: int, n_points: int) -> list[ResultPart]:
    rng = np.random.default_rng(seed)
    nv, nf, v = 500, 900, 3
    mesh = ResultPart("mesh", "mesh", {
        "vertices": rng.normal(size=(nv, 3)).astype(np.float32),
        "faces": rng.integers(0, nv, size=(nf, 3), dtype=np.int32),
        "colors": rng.integers(0, 256, size=(nv, 3), dtype=np.uint8),
        "class_id": rng.integers(0, 150, size=nv, dtype=np.int32),
    })
    points = ResultPart("points", "points", {
        "positions": rng.normal(size=(n_points, 3)).astype(np.float32),
        "colors": rng.integers(0, 256, size=(n_points, 3), dtype=np.uint8),
        "class_id": rng.integers(0, 150, size=n_points, dtype=np.int32),
        "confidence": rng.random(n_points, dtype=np.float32),
    })
    c2w = np.tile(np.eye(4, dtype=np.float32), (v, 1, 1))
    c2w[:, :3, 3] = rng.normal(size=(v, 3))
    K = np.tile(np.array([[50, 0, 32], [0, 50, 24], [0, 0, 1]], np.float32), (v, 1, 1))
    cams = ResultPart("cameras", "cameras", {"c2w": c2w, "K": K, "size": np.tile(np.array([64, 48], np.int32), (v, 1))},
                      {"names": [f"{i:04d}.jpg" for i in range(v)]})
    chair = ResultPart("class_019_chair", "class", {
        "points_positions": rng.normal(size=(300, 3)).astype(np.float32),
        "points_colors": rng.integers(0, 256, size=(300, 3), dtype=np.uint8),
        "points_instance": rng.integers(-1, 3, size=300, dtype=np.int32),
        "empty": np.zeros((0, 3), np.float32),
        "flags": rng.random(300) > 0.5,
        "scalar": np.array(7, np.int64),
    }, {"class_id": 19, "name": "chair", "color": [204, 5, 255], "instances": 3})
    return [mesh, points, cams, chair]


def point_preview(it: int, n: int) -> PointPreview | None:
    if n <= 0:
        return None
    i = np.arange(n)
    ids = (i % 150).astype(np.uint8)
    ids[-1] = 255
    return PointPreview(np.stack([np.full(n, it), i, -i], 1).astype(np.float16),
                        np.stack([i % 256, np.full(n, it % 256), np.full(n, 7)], 1).astype(np.uint8), ids, total=2 * n,
                        up=(0.0, -1.0, 0.0))


def write_ply_files(out: Path, seed: int) -> None:
    rng = np.random.default_rng(seed + 1)
    n = 100
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex %d\n" % n
              + "".join(f"property float {p}\n" for p in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"))
              + "end_header\n").encode()
    (out / "gaussians.ply").write_bytes(header + rng.random((n, 7), dtype=np.float32).tobytes())
    (out / "mesh.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")


def run(input_path: Path, out_dir: Path, config, *, progress=None, should_cancel=None) -> dict:
    out_dir = Path(out_dir)
    (out_dir / "runner.pid").write_text(str(os.getpid()))
    control_file = Path(input_path) / "control.json"
    ctl = json.loads(control_file.read_text()) if control_file.is_file() else {}
    cancel = None if ctl.get("ignore_cancel") else should_cancel
    digests = {
        p.relative_to(input_path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(input_path).rglob("*")) if p.is_file()
    }
    steps, step_s = int(ctl.get("steps", 5)), float(ctl.get("step_s", 0.01))
    t0 = time.time()
    for stage in STAGES:
        check_cancel(cancel)
        if progress:
            progress(Progress(stage, 0.0, stage))
        if stage == "train":
            for it in range(1, steps + 1):
                check_cancel(cancel)
                if ctl.get("crash") and it >= int(ctl.get("crash_at", 0)):
                    crash = ctl["crash"]
                    if crash == "raise":
                        raise RuntimeError("runner asked to crash")
                    if crash == "bad_input":
                        raise DataError(Path(input_path) / "control.json", "runner asked to reject its input")
                    if crash == "missing_model":
                        from aligngs.priors.models import CheckpointNotFoundError

                        raise CheckpointNotFoundError("facebook/dpt-dinov2-small-nyu", "offline and not in the cache")
                    if crash == "exit":
                        os._exit(3)
                    if crash == "segv":
                        os.kill(os.getpid(), signal.SIGSEGV)
                time.sleep(step_s)
                if progress:
                    prev = np.full((30, 40, 3), it % 256, np.uint8) if ctl.get("preview") else None
                    points = point_preview(it, int(ctl.get("point_preview", 0)))
                    progress(Progress("train", it / steps, "", iteration=it, total=steps, losses={"l1": 1.0 / it},
                                      n_gaussians=1000 + it, eta_s=(steps - it) * step_s, preview=prev,
                                      points=points))
        if progress:
            progress(Progress(stage, 1.0, stage))
    seed = int(config.train.seed)
    write_parts(out_dir / "result", make_parts(seed, int(ctl.get("points", 2000))), scene="test-scene", up=(0.0, 0.0, 1.0))
    write_ply_files(out_dir, seed)
    return {
        "metrics": {"psnr": 21.5, "nan_metric": float("nan")},
        "timings": {"total": time.time() - t0},
        "counts": {"inputs": len(digests)},
        "inputs": digests,
        "device": config.train.device,
        "iterations": config.train.iterations,
    }
