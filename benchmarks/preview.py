"""The live preview's cost: bytes per preview, its share of training time, and Blender's timer tick as it lands.

    .venv/bin/python -m benchmarks preview [--iterations 150] [--resolution 96] [--json PATH]

Two parts, one report:
- server (this process, .venv): a real training run on samples/room (``fast`` preset, 3dgs mode, the given
  iterations and resolution, ``train.preview_every`` 25) whose progress goes through the worker's own sender
  (``backend.worker.ProgressSender``) into a ZeroMQ socket, as in ``backend.serve``. Measured: the wall time of
  training, the time spent taking point previews (``Trainer._point_preview``) and sending them (the sender's calls
  that carried points), bytes per preview (all frames of the message), points per preview.
- blender (a subprocess under .venv-blender, ``--part blender``): the add-on's own path against a real
  ``backend.serve`` whose job (tests/addon/addon_runner.py) sends 50,000-point previews; ``session.tick`` is pumped
  like Blender's timer; the longest tick that applied a preview, and the longest tick of the run.
Timings on a machine shared with other jobs are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BPY_PYTHON = REPO / ".venv-blender" / "bin" / "python"


def run_server_part(iterations: int, resolution: int, every: int) -> dict:
    import torch
    import zmq

    from aligngs.config import preset
    from aligngs.data.loaders import load_scene
    from aligngs.data.split import split_frames
    from aligngs.extract.extent import scene_extent
    from aligngs.model.gaussians import GaussianModel
    from aligngs.model.init import initial_points
    from aligngs.train.trainer import Trainer
    from aligngs.wire import decode_json_object
    from backend.worker import ProgressSender

    cfg = preset("fast", {"mode": "3dgs", "data": {"resolution": resolution},
                          "train": {"iterations": iterations, "preview_every": every}})
    scene = load_scene(REPO / "samples" / "room", cfg.data)
    train, _ = split_frames(scene, cfg.data)
    extent = scene_extent([f.camera for f in scene.frames], scene.points)
    torch.manual_seed(cfg.train.seed)
    pts, cols, _ = initial_points(scene, train, cfg.train.max_init_points, cfg.train.seed, extent)
    model = GaussianModel.from_points(pts, cols, sh_degree=cfg.train.sh_degree, init_opacity=cfg.train.init_opacity)

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    sender = ProgressSender(push, "bench", "token")
    send_s, build_s, sizes, counts = [], [], [], []

    def progress(p):
        t0 = time.perf_counter()
        sender(p)
        dt = time.perf_counter() - t0
        if p.points is not None:
            send_s.append(dt)
            counts.append(p.points.n)

    trainer = Trainer(model, train, cfg.train, extent=extent, progress=progress)
    take = trainer._point_preview

    def timed_preview(total):
        t0 = time.perf_counter()
        out = take(total)
        if out is not None:
            build_s.append(time.perf_counter() - t0)
        return out

    trainer._point_preview = timed_preview
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    while pull.poll(100):
        frames = pull.recv_multipart()
        if decode_json_object(frames[0], "worker message").get("points") is not None:
            sizes.append(sum(len(f) for f in frames))
    push.close(0)
    pull.close(0)
    ctx.term()
    cost = sum(build_s) + sum(send_s)
    return {
        "iterations": iterations, "resolution": resolution, "preview_every": every, "train_wall_s": wall,
        "previews": len(build_s), "points_per_preview": max(counts) if counts else 0, "gaussians_end": model.n,
        "bytes_per_preview": int(sum(sizes) / len(sizes)) if sizes else 0, "previews_received": len(sizes),
        "build_ms_mean": 1e3 * sum(build_s) / max(len(build_s), 1), "send_ms_mean": 1e3 * sum(send_s) / max(len(send_s), 1),
        "preview_share_of_training": cost / wall,
    }


def run_blender_part(points: int, steps: int, step_s: float, timeout: float = 300.0) -> dict:
    """Under .venv-blender: the add-on's session against a real backend.serve sending point previews."""
    import bpy

    from blender_addon.blender import preview, session as sess

    from ._addon_job import submitted_job

    with submitted_job(3, {"points": 5000, "steps": steps, "step_s": step_s, "point_preview": points}) as (s, scene, _):
        t_start = time.perf_counter()
        ticks, max_tick, preview_ticks, last = 0, 0.0, [], None
        while s.job.phase not in ("done", "failed", "cancelled"):
            if time.perf_counter() - t_start > timeout:
                raise TimeoutError("preview benchmark timed out")
            t0 = time.perf_counter()
            sess.tick(s)
            dt = time.perf_counter() - t0
            ticks += 1
            max_tick = max(max_tick, dt)
            obj = preview.find(scene)
            state = None if obj is None else (len(obj.data.vertices), obj.data.vertices[0].co.x if len(obj.data.vertices) else 0)
            if state is not None and state != last:
                preview_ticks.append(dt)
            last = state
            time.sleep(0.01)
        if s.job.phase != "done":
            raise RuntimeError(f"job ended {s.job.phase}: {s.job.error}")
        s.close()
        return {"points": points, "previews_applied": len(preview_ticks),
                "max_preview_tick_ms": 1e3 * max(preview_ticks) if preview_ticks else None,
                "median_preview_tick_ms": 1e3 * sorted(preview_ticks)[len(preview_ticks) // 2] if preview_ticks else None,
                "max_tick_ms": 1e3 * max_tick, "ticks": ticks, "blender": bpy.app.version_string}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks preview", description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["all", "server", "blender"], default="all")
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--every", type=int, default=25, help="train.preview_every for the server part")
    ap.add_argument("--points", type=int, default=50_000, help="points per preview in the Blender part")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    out: dict = {}
    if args.part in ("all", "server"):
        out["server"] = run_server_part(args.iterations, args.resolution, args.every)
    if args.part == "blender":
        out["blender"] = run_blender_part(args.points, steps=8, step_s=0.5)
    elif args.part == "all":
        with tempfile.TemporaryDirectory() as d:
            js = Path(d) / "blender.json"
            proc = subprocess.run([str(BPY_PYTHON), "-m", "benchmarks", "preview", "--part", "blender",
                                   "--points", str(args.points), "--json", str(js)], cwd=REPO, capture_output=True,
                                  text=True, timeout=600,
                                  env={**os.environ, "BLENDER_USER_RESOURCES": str(Path(d) / "user")})
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                return proc.returncode
            out["blender"] = json.loads(js.read_text())["blender"]
    sv, bl = out.get("server"), out.get("blender")
    if sv:
        print(f"server: {sv['previews']} previews of up to {sv['points_per_preview']:,} points in {sv['iterations']} "
              f"iterations ({sv['gaussians_end']:,} Gaussians at the end); {sv['bytes_per_preview']:,} bytes per "
              f"preview; build {sv['build_ms_mean']:.1f} ms + send {sv['send_ms_mean']:.1f} ms each = "
              f"{100 * sv['preview_share_of_training']:.2f} % of {sv['train_wall_s']:.1f} s training")
    if bl:
        print(f"blender {bl['blender']}: {bl['previews_applied']} previews of {bl['points']:,} points applied; "
              f"longest tick with a preview {bl['max_preview_tick_ms']:.1f} ms (median {bl['median_preview_tick_ms']:.1f}); "
              f"longest tick {bl['max_tick_ms']:.1f} ms over {bl['ticks']} ticks")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
