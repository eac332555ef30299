"""Scene benchmark: reconstruct a scene in one or more modes and print one table.

Two protocols:

- ``--protocol sparse`` (the paper's regime; see ``benchmarks/_sparse.py``): K training views (``--views 8 16``), the
  input's test split (else all other views) as test views; initial points from what a photo-only user has (features
  of the K views triangulated with the known cameras, plus a SPARS3R dense cloud from the depth prior); a simulated
  monocular depth prior and view-consistent simulated teachers (``aligngs.priors.simulate``) at several strengths;
  several synthetic rooms (``--seeds``, generated with tools.synth) and RGB-D captures (reference: TSDF of the
  held-out views' depth only); per-seed rows, mean rows and an ablation table (``--ablation``)::

    python -m benchmarks scene --protocol sparse --data samples/room --seeds 0 1 2 3 4 --json out/sparse.json
    python -m benchmarks scene --protocol sparse --data samples/room --seeds 0 1 2 3 4 --teacher mild \
        --preset sparse --init-cache out/init-cache --json out/sparse.json   # the same points in every run
    python -m benchmarks scene --protocol sparse --data ../shared/data/shelf-rgbd --threshold 0.02 --teacher none

- the default (full) protocol below: the scene as given, every view's teacher input from the data (labels and
  sensor depth are oracles here: see the rows' ``teacher`` / ``depth`` fields).

    python -m benchmarks scene --data samples/room --mode 3dgs aligngs --json out.json --figure out.png
    python -m benchmarks scene --data ../shared/data/shelf-rgbd --views 14 --resolution 160 \
        --iterations 2000 --mode 3dgs --threshold 0.02 --json shelf.json

Reference surface: ``gt_mesh.ply`` in the data folder (synthetic scenes), else a TSDF of ALL the sensor depth maps
(RGB-D captures), else none. Test views: the scene's own split if it has one, else all views that are not among
the ``--views`` evenly spaced training views (taken from the input's train split when it declares one). Figures: test PSNR/SSIM (and the untrained model's PSNR and a
mean-colour image's PSNR as floors), mesh accuracy/completion/F-score, semantic mIoU of rendered labels vs ground
truth and of the (optionally degraded) 2D teacher labels, wall time per stage, peak memory, Gaussian count.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np

from aligngs.config import Mode, choices, deep_merge, preset
from aligngs.data.split import evenly_spaced
from aligngs.data.types import Scene

log = logging.getLogger(__name__)


def peak_mem_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reference_points(data: Path, scene: Scene, n: int = 300_000, seed: int = 0) -> np.ndarray | None:
    from aligngs.metrics.mesh import sample_mesh

    gt = data / "gt_mesh.ply"
    if gt.is_file():
        from aligngs.export.ply import read_ply
        from aligngs.data.types import TriMesh

        v, f = read_ply(gt)
        mesh = TriMesh(np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32), np.asarray(f, np.int32))
        return sample_mesh(mesh, n, seed=seed)
    frames = [f for f in scene.frames if f.depth is not None]
    if not frames:
        return None
    from aligngs.config import MeshConfig
    from aligngs.extract.extent import scene_extent
    from aligngs.extract.tsdf import fuse_tsdf

    cams = [f.camera for f in frames]
    mesh = fuse_tsdf([f.depth for f in frames], [f.image for f in frames], cams, MeshConfig(),
                     scene_extent(cams, None))
    return sample_mesh(mesh, n, seed=seed)


def mean_color_psnr(train, test) -> float:
    from aligngs.metrics.image import psnr
    import torch

    mean = np.mean([f.image.reshape(-1, 3).mean(0) for f in train], axis=0).astype(np.float32)
    vals = [float(psnr(torch.from_numpy(np.broadcast_to(mean, f.image.shape).copy()), torch.from_numpy(f.image)))
            for f in test]
    return float(np.mean(vals))


def choose_split(scene: Scene, views: int | None) -> list[str]:
    """Test view names: the scene's own split when it has one (``views`` then picks evenly spaced training views from
    its train list: ``DataConfig.max_train_views``), else everything not among ``views`` training views."""
    split = scene.meta.get("split")
    if split and split.get("test"):
        return list(split["test"])
    names = scene.names()
    k = views or max(1, len(names) * 3 // 4)
    train = set(evenly_spaced(len(names), k))
    return [n for i, n in enumerate(names) if i not in train]


def run_mode(mode: str, scene: Scene, args, ref: np.ndarray | None, out_root: Path) -> dict:
    from aligngs.metrics.semantic import miou
    from aligngs.pipeline import reconstruct
    from aligngs.priors.noise import degrade_labels

    overrides = {"mode": mode, "data": {"test_names": choose_split(scene, args.views)}, "train": {"seed": args.seed}}
    if args.views and scene.meta.get("split"):
        overrides["data"]["max_train_views"] = args.views
    if args.resolution:
        overrides["data"]["resolution"] = args.resolution
    if args.iterations:
        overrides["train"]["iterations"] = args.iterations
    if args.device:
        overrides["train"]["device"] = args.device
    if args.config:
        overrides = deep_merge(json.loads(Path(args.config).read_text()), overrides)
    cfg = preset(args.preset, overrides)
    sc = copy.copy(scene)
    sc.frames = [copy.copy(f) for f in scene.frames]
    test_names = set(cfg.data.test_names)
    teacher_miou = None
    if any(f.labels is not None for f in sc.frames):
        rng = np.random.default_rng(args.seed)
        preds, gts = [], []
        for f in sc.frames:
            if f.labels is None:
                continue
            noisy = degrade_labels(f.labels, rng, args.teacher_noise)
            if f.name in test_names:  # the teacher's quality on the test views; the pipeline never sees these
                preds.append(noisy.ravel())
                gts.append(f.labels.ravel())
            else:
                f.labels = noisy
        if preds:
            teacher_miou = float(miou(np.concatenate(preds), np.concatenate(gts), 150)[0])
    t0 = time.perf_counter()
    out = out_root / mode
    report = reconstruct(sc, out, cfg, reference_points=ref, mesh_threshold=args.threshold, eval_initial=True)
    m = report["metrics"]
    train_frames = [f for f in sc.frames if f.name not in test_names]
    test_frames = [f for f in sc.frames if f.name in test_names]
    row = {
        "mode": mode,
        "psnr": m.get("psnr"), "ssim": m.get("ssim"), "psnr_initial": m.get("psnr_initial"),
        "psnr_meancolor": mean_color_psnr(train_frames, test_frames) if test_frames else None,
        "fscore": m.get("mesh", {}).get("fscore"), "accuracy": m.get("mesh", {}).get("accuracy"),
        "completion": m.get("mesh", {}).get("completion"),
        "precision": m.get("mesh", {}).get("precision"), "recall": m.get("mesh", {}).get("recall"),
        "threshold": args.threshold,
        "miou": m.get("miou"), "teacher_miou": teacher_miou, "teacher_noise": args.teacher_noise,
        "wall_s": time.perf_counter() - t0, "timings": report["timings"],
        "peak_mem_mb": peak_mem_mb(), "n_gaussians": report["counts"]["gaussians"],
        "train_views": len(report["views"]["train"]), "test_views": len(report["views"]["test"]),
        "iterations": cfg.train.iterations, "out": str(out),
    }
    return row


def figure(rows: list[dict], scene: Scene, path: Path, max_views: int = 4) -> None:
    """GT | render | labels | depth for a few test views, one block per mode."""
    import torch
    from PIL import Image

    from aligngs.extract.views import render_view
    from aligngs.model.gaussians import GaussianModel
    from aligngs import config as C
    from aligngs.priors.ade20k import colorize

    tiles = []
    for row in rows:
        ckpt = torch.load(Path(row["out"]) / "checkpoint.pt", map_location="cpu", weights_only=True)
        model = GaussianModel.from_state_dict(ckpt["model"])
        rep = json.loads((Path(row["out"]) / "report.json").read_text())
        cfg = C.PipelineConfig.from_dict(rep["config"])
        test = [f for f in scene.frames if f.name in set(rep["views"]["test"])][:max_views]
        for f in test:
            vr = render_view(model, f, cfg)
            d = vr.depth / max(float(vr.depth.max()), 1e-6)
            cells = [f.image, vr.rgb, colorize(vr.labels) / 255.0 if vr.labels is not None else np.zeros_like(f.image),
                     np.repeat(d[..., None], 3, -1)]
            tiles.append(np.concatenate([np.clip(c, 0, 1) for c in cells], axis=1))
    if tiles:
        img = (np.concatenate(tiles, axis=0) * 255).astype(np.uint8)
        Image.fromarray(img).save(path)


def print_table(rows: list[dict]) -> None:
    cols = ["mode", "psnr", "ssim", "psnr_initial", "psnr_meancolor", "fscore", "accuracy", "completion", "miou",
            "teacher_miou", "wall_s", "peak_mem_mb", "n_gaussians"]
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(fmt(r.get(c)).rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print(f"{r['mode']}: stages " + ", ".join(f"{k} {v:.1f}s" for k, v in r["timings"].items()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--protocol=sparse" for a in argv) or any(
            a == "--protocol" and i + 1 < len(argv) and argv[i + 1] == "sparse" for i, a in enumerate(argv)):
        from ._sparse import sparse_main

        return sparse_main(argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks scene")
    ap.add_argument("--protocol", choices=["full", "sparse"], default="full",
                    help="sparse: the paper's regime (K views, predicted priors, erring teachers; see the module doc)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--mode", nargs="+", default=["3dgs"], choices=choices(Mode))
    ap.add_argument("--views", type=int, help="training views (evenly spaced); the rest are test views")
    ap.add_argument("--resolution", type=int)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--config", help="JSON PipelineConfig overrides")
    ap.add_argument("--device")
    ap.add_argument("--threshold", type=float, default=0.05, help="mesh F-score distance threshold in metres")
    ap.add_argument("--teacher-noise", type=float, default=0.0, help="degrade GT labels (0 = clean, 1 = strong)")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--json")
    ap.add_argument("--figure")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from aligngs.data.loaders import load_scene
    from aligngs.config import DataConfig

    data = Path(args.data)
    scene = load_scene(data, DataConfig(resolution=args.resolution))
    ref = reference_points(data, load_scene(data, DataConfig()) if args.resolution else scene)
    rows = [run_mode(m, scene, args, ref, Path(args.out)) for m in args.mode]
    print_table(rows)
    if args.figure:
        figure(rows, scene, Path(args.figure))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
