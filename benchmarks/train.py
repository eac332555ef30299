"""Training benchmark: where one CPU (or GPU) training run spends its time, and what it gives at checkpoints.

    python -m benchmarks train --data ../shared/data/shelf-rgbd --mode 3dgs --iterations 2000 --json out.json
    python -m benchmarks train --mode aligngs --iterations 500 --checkpoints 0 250 500

The run is what ``aligngs reconstruct FOLDER --mode M --resolution 160 --iterations N`` does with the CLI's
default preset (``--preset`` to pick another), on a fixed split of an RGB-D capture: every other frame trains
(25 of shelf-rgbd's 50), the others are held out. At each checkpoint (default 0/500/1000/2000, clipped to the
run) it records the Gaussian count, the held-out PSNR, and the mesh the pipeline would export (TSDF of rendered
depth of the training views) scored against a reference surface fused from the HELD-OUT frames' sensor depth
only (accuracy / completion / precision / recall / F-score at ``--threshold`` and at 2 cm). ``aligngs`` mode runs
without semantics (no labels in the capture): sensor depth as the Pearson prior plus the normal terms.

Printed (and written with ``--json``): wall time of the training proper (checkpoint evaluation excluded), time per
iteration and its breakdown (forward render, photometric loss forward, loss terms, backward, strategy, optimizer, rest),
CPU utilisation = process CPU seconds / wall seconds over training, peak RSS, the Gaussian count and the
per-checkpoint figures. The breakdown comes from wrapping the trainer's module-level calls, so it also profiles an
older checkout (``PYTHONPATH=/path/to/old``). Timings on shared machines are upper bounds.

No torch import at module level (``python -m benchmarks`` lists benchmarks without it).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

log = logging.getLogger(__name__)

SECTIONS = ("render", "photometric", "terms", "backward", "strategy", "optimizer")


def _import_first(*names: str):
    """The first importable module of ``names`` (the library moved modules between versions)."""
    err = None
    for n in names:
        try:
            return importlib.import_module(n)
        except ImportError as e:  # noqa: PERF203
            err = e
    raise err  # type: ignore[misc]


def _attr_first(pairs):
    for mod, attr in pairs:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if hasattr(m, attr):
            return getattr(m, attr)
    raise ImportError(f"none of {pairs} found")


class Profile:
    """Accumulates wall time per named section; per-iteration totals go in ``steps``."""

    def __init__(self):
        self.total: dict[str, float] = defaultdict(float)
        self.depth = defaultdict(int)
        self.steps: list[float] = []

    @contextlib.contextmanager
    def section(self, name: str):
        # nested calls of the same section (e.g. backward inside backward) count once
        self.depth[name] += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.depth[name] -= 1
            if self.depth[name] == 0:
                self.total[name] += time.perf_counter() - t0


def instrument(prof: Profile, trainer_mod, trainer) -> list:
    """Wrap the trainer module's render / photometric loss (forward; on CPU the C++ loss computes its gradient
    there too), the loss terms, Tensor.backward, the strategy hooks and the optimizers' step; returns undo
    callables."""
    import torch

    undo = []

    def wrap_attr(obj, attr, section):
        orig = getattr(obj, attr)

        def wrapped(*a, **k):
            with prof.section(section):
                return orig(*a, **k)

        setattr(obj, attr, wrapped)
        undo.append(lambda: setattr(obj, attr, orig))

    wrap_attr(trainer_mod, "render", "render")
    wrap_attr(trainer_mod, "photometric_loss", "photometric")
    wrap_attr(torch.Tensor, "backward", "backward")
    wrap_attr(trainer.strategy, "step_post_backward", "strategy")
    wrap_attr(trainer.strategy, "step_pre_backward", "strategy")
    wrap_attr(torch.optim.Adam, "step", "optimizer")
    for t in trainer.terms:
        orig_call = type(t).__call__

        class Timed(type(t)):  # type: ignore[misc, valid-type]
            def __call__(self, ctx, _orig=orig_call):
                with prof.section("terms"):
                    return _orig(self, ctx)

        old_cls = type(t)
        t.__class__ = Timed
        undo.append(lambda t=t, c=old_cls: setattr(t, "__class__", c))
    return undo


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_mem_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def heldout_split(names: list[str], every: int = 2) -> list[str]:
    """Held-out names: every ``every``-th frame starting at the second (the others train)."""
    return [n for i, n in enumerate(names) if i % every == 1]


def reference_points(data: Path, test_names: set[str], n: int, seed: int):
    """Points sampled from a TSDF of the held-out frames' sensor depth (native resolution)."""
    import numpy as np

    from aligngs.config import DataConfig, MeshConfig
    from aligngs.data.loaders import load_scene

    tsdf = _import_first("aligngs.extract.tsdf", "aligngs.mesh.tsdf")
    from aligngs.metrics.mesh import sample_mesh

    full = load_scene(data, DataConfig(test_every=0))
    frames = [f for f in full.frames if f.name in test_names and f.depth is not None]
    if not frames:
        raise SystemExit(f"error: no held-out frame with depth in {data}")
    cams = [f.camera for f in frames]
    mesh = tsdf.fuse_tsdf([f.depth for f in frames], [f.image for f in frames], cams, MeshConfig(),
                          tsdf.scene_extent(cams, None))
    return np.asarray(sample_mesh(mesh, n, seed=seed)), len(frames)


def build_config(args, test_names: list[str]):
    from aligngs.config import preset

    overrides = {"mode": args.mode, "data": {"test_names": test_names, "test_every": 0},
                 "train": {"seed": args.seed}}
    if args.resolution:
        overrides["data"]["resolution"] = args.resolution
    if args.iterations:
        overrides["train"]["iterations"] = args.iterations
    if args.device:
        overrides["train"]["device"] = args.device
    if args.mode == "aligngs":
        overrides["train"]["semantics"] = {"enabled": False}
    if args.config:
        from aligngs.config import deep_merge

        overrides = deep_merge(json.loads(Path(args.config).read_text()), overrides)
    return preset(args.preset, overrides)


def checkpoint_eval(model, train, test, cfg, extent, ref, threshold: float) -> dict:
    import torch

    extract_outputs = _attr_first([("aligngs.extract", "extract_outputs"), ("aligngs.extract.views", "extract_outputs")])
    evaluate_views = _attr_first([("aligngs.extract", "evaluate_views"), ("aligngs.extract.views", "evaluate_views")])
    from aligngs.metrics.mesh import mesh_metrics, sample_mesh

    with torch.no_grad():
        m = evaluate_views(model, test, cfg)
        row = {"psnr": m.get("psnr"), "ssim": m.get("ssim")}
        try:
            out = extract_outputs(model, train, cfg, extent)
            mesh = out.mesh
        except Exception as e:  # an empty mesh is a result, not a crash of the benchmark
            log.warning("mesh extraction failed: %s", e)
            mesh = None
    if mesh is not None and ref is not None:
        pred = sample_mesh(mesh, 200_000, seed=cfg.train.seed)
        row["mesh"] = mesh_metrics(pred, ref, threshold=threshold)
        row["fscore"] = row["mesh"]["fscore"]
        row["fscore_2cm"] = mesh_metrics(pred, ref, threshold=0.02)["fscore"]
        row["mesh_vertices"] = int(len(mesh.vertices))
    return row


def run(args) -> dict:
    import numpy as np
    import torch

    from aligngs.config import DataConfig
    from aligngs.data.loaders import load_scene
    from aligngs.data.split import split_frames
    from aligngs.model.gaussians import GaussianModel
    from aligngs.model.init import initial_points
    from aligngs.train import trainer as trainer_mod

    tsdf = _import_first("aligngs.extract.tsdf", "aligngs.mesh.tsdf")
    data = Path(args.data)
    names = load_scene(data, DataConfig(resolution=args.resolution or 160, test_every=0)).names()
    test_names = heldout_split(names)
    cfg = build_config(args, test_names)
    torch.manual_seed(cfg.train.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = trainer_mod.resolve_device(cfg.train.device)
    scene = load_scene(data, cfg.data)
    train, test = split_frames(scene, cfg.data)
    extent = tsdf.scene_extent([f.camera for f in scene.frames], scene.points)
    ref, n_ref_frames = (None, 0) if args.no_mesh_score else reference_points(data, set(test_names), 300_000, args.seed)

    priors, terms, normal_source = None, [], None
    if cfg.mode == "aligngs":
        from aligngs.pipeline import compute_view_priors
        from aligngs.train.terms import aligngs_terms, gaussian_camera_normals

        priors = compute_view_priors(train, cfg, Path(args.out), device, None)
        from dataclasses import replace

        loss_cfg = replace(cfg.train.loss, semantic_kl=0.0, semantic_ce=0.0)
        terms = aligngs_terms(loss_cfg, cfg.train.semantics, None)
        normal_source = gaussian_camera_normals
    pts, cols, init_source = initial_points(scene, train, cfg.train.max_init_points, cfg.train.seed, extent)
    model = GaussianModel.from_points(pts, cols, sh_degree=cfg.train.sh_degree, init_opacity=cfg.train.init_opacity,
                                      semantic_dim=0, device=device, orientation=cfg.train.init_orientation)
    tr = trainer_mod.Trainer(model, train, cfg.train, extent=extent, priors=priors, terms=terms,
                             normal_source=normal_source)

    total = cfg.train.iterations
    checkpoints = sorted({c for c in args.checkpoints if 0 <= c <= total} | {total})
    prof = Profile()
    undo = instrument(prof, trainer_mod, tr)
    rows, counts = [], {}
    wall = cpu = 0.0
    try:
        for c in checkpoints:
            t0, c0 = time.perf_counter(), cpu_seconds()
            while tr.step < c:
                s0 = time.perf_counter()
                tr.history.append(tr.train_step())
                prof.steps.append(time.perf_counter() - s0)
            wall += time.perf_counter() - t0
            cpu += cpu_seconds() - c0
            counts[c] = model.n
            row = {"iteration": c, "gaussians": model.n, "train_wall_s": wall}
            if not args.no_eval:
                e0 = time.perf_counter()
                row.update(checkpoint_eval(model, train, test, cfg, extent, ref, args.threshold))
                row["eval_s"] = time.perf_counter() - e0
            rows.append(row)
            print(_row_line(row), flush=True)
    finally:
        for u in reversed(undo):
            u()

    n_it = len(prof.steps)
    sections = {k: prof.total.get(k, 0.0) for k in SECTIONS}
    step_total = float(sum(prof.steps))
    sections["rest"] = max(0.0, step_total - sum(sections.values()))
    steps = np.asarray(prof.steps) if prof.steps else np.zeros(1)
    return {
        "benchmark": "train",
        "data": str(data),
        "mode": cfg.mode,
        "preset": args.preset,
        "preset_resolved": _resolved_preset(args.preset, str(device)),
        "resolution": cfg.data.resolution,
        "iterations": total,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "train_views": len(train),
        "test_views": len(test),
        "reference_frames": n_ref_frames,
        "init": {"source": init_source, "points": int(len(pts))},
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_util": cpu / wall if wall > 0 else None,
        "s_per_iter": step_total / max(n_it, 1),
        "s_per_iter_median": float(np.median(steps)),
        "s_per_iter_by_quarter": [float(q.mean()) for q in np.array_split(steps, 4)] if n_it >= 4 else None,
        "breakdown_s": sections,
        "breakdown_per_iter_ms": {k: 1000.0 * v / max(n_it, 1) for k, v in sections.items()},
        "gaussians": {str(k): v for k, v in counts.items()},
        "peak_mem_mb": peak_mem_mb(),
        "checkpoints": rows,
        "threshold": args.threshold,
        "config": cfg.to_dict(),
    }


def _fmt(v, nd=4):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _row_line(r: dict) -> str:
    return (f"  it {r['iteration']:>5}  gaussians {r['gaussians']:>8,}  train {r['train_wall_s']:7.1f}s  "
            f"PSNR {_fmt(r.get('psnr'), 2)}  F@{'5cm'} {_fmt(r.get('fscore'), 3)}  F@2cm {_fmt(r.get('fscore_2cm'), 3)}")


def print_report(res: dict) -> None:
    preset = res["preset"] if res.get("preset_resolved") in (None, res["preset"]) else f"{res['preset']} -> {res['preset_resolved']}"
    print(f"train benchmark: {res['mode']} / preset {preset} / {res['resolution']}px / {res['iterations']} its "
          f"on {res['data']} [{res['device']}, {res['torch_threads']} torch threads]; {res['train_views']} train / "
          f"{res['test_views']} held-out views; reference TSDF from {res['reference_frames']} held-out depth frames; "
          f"init {res['init']['points']} points ({res['init']['source']})")
    print(f"  wall {res['wall_s']:.1f}s  ({res['s_per_iter'] * 1000:.1f} ms/it mean, "
          f"{res['s_per_iter_median'] * 1000:.1f} median)  CPU util {100 * (res['cpu_util'] or 0):.0f}%  "
          f"peak RSS {res['peak_mem_mb']:.0f} MB")
    if res["s_per_iter_by_quarter"]:
        print("  ms/it by quarter of the run: " + ", ".join(f"{1000 * q:.1f}" for q in res["s_per_iter_by_quarter"]))
    tot = sum(res["breakdown_s"].values()) or 1.0
    print("  breakdown: " + ", ".join(
        f"{k} {v:.1f}s ({res['breakdown_per_iter_ms'][k]:.1f} ms/it, {100 * v / tot:.0f}%)"
        for k, v in res["breakdown_s"].items()))
    print("  gaussians: " + ", ".join(f"{k}: {v:,}" for k, v in res["gaussians"].items()))
    for r in res["checkpoints"]:
        print(_row_line(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/shelf-rgbd")
    ap.add_argument("--mode", default="3dgs", choices=["3dgs", "aligngs"])
    ap.add_argument("--preset", default=None, help="default: the CLI's default preset")
    ap.add_argument("--resolution", type=int, default=160)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--checkpoints", type=int, nargs="*", default=[0, 500, 1000, 2000])
    ap.add_argument("--threshold", type=float, default=0.05, help="F-score distance in metres")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave as is)")
    ap.add_argument("--config", help="JSON PipelineConfig overrides")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--no-eval", action="store_true", help="only timings and counts")
    ap.add_argument("--no-mesh-score", action="store_true")
    ap.add_argument("--out", default="out/bench-train")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.preset is None:
        args.preset = _cli_default_preset()
    logging.basicConfig(level=logging.WARNING)
    res = run(args)
    print_report(res)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


def _resolved_preset(name: str, device: str) -> str | None:
    """The concrete preset ``name`` ran as (``auto`` -> by device); None for checkouts without ``resolve_preset``."""
    try:
        from aligngs.config import resolve_preset
    except ImportError:
        return None
    return resolve_preset(name, device)


def _cli_default_preset() -> str:
    """The preset ``aligngs reconstruct`` uses without ``--preset``."""
    from aligngs import cli

    return getattr(cli, "DEFAULT_PRESET", "balanced")


if __name__ == "__main__":
    sys.exit(main())
