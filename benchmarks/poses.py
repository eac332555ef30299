"""Pose benchmark: recover cameras from the images alone and score them against the provided ones.

    python -m benchmarks poses --data ../shared/data/fox --method sfm --json fox_poses.json
    python -m benchmarks poses --data samples/room --method sfm --dense --json room_poses.json

The data folder is loaded with ``load_scene`` (its poses are the reference), then the poses are stripped and the
method (``sfm`` | ``vggt`` | ``auto``) sees only the frames' images. Recovered camera centres are mapped onto the
reference ones by a Sim3 (Umeyama); figures: ``registered`` / ``total``, ``ate`` (RMSE of the aligned centres, in
the scene's units), ``ate_rel`` (ate / the reference camera path's bounding-box diagonal), ``rot_err_deg`` (mean
camera rotation error; ``rot_err_deg_median`` too), ``n_points`` (points the method returned), ``wall_s``.

``--dense`` (needs per-view depth in the data and ``gt_mesh.ply``): SPARS3R-style alignment of dense per-view depth
to the SfM points (``aligngs.model.dense_init``). As a stand-in for a monocular depth prior the benchmark feeds the
ground-truth depth corrupted per view by an unknown scale and shift (``--prior-scale-min/max``, ``--prior-shift``)
and 1% multiplicative pixel noise (``--prior-noise``); optionally (``--segment-share``, default 0) a random share
of the semantic regions gets an extra offset of its own (``--segment-offset``, a fraction of the view's median depth) -- the per-object errors of
real monocular priors that the semantic re-alignment is for. Both clouds go into the reference frame with the
cameras' Sim3 and are scored against the GT mesh (``aligngs.metrics.mesh``): ``sparse_points`` / ``dense_points``,
``sparse_acc`` / ``dense_acc`` (mean distance to the mesh), ``dense_acc_global`` (global fit only, no semantic
step), completion and F-score at ``--threshold``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from aligngs.config import DataConfig
from aligngs.data.types import Frame, Scene

log = logging.getLogger(__name__)


def strip_poses(scene: Scene, max_views: int | None = None) -> Scene:
    """The same frames (images, paths, labels) without cameras: what a bare photo folder gives."""
    frames = scene.frames
    if max_views and max_views < len(frames):
        from aligngs.data.split import evenly_spaced

        frames = [frames[i] for i in evenly_spaced(len(frames), max_views)]
    return Scene([replace(f, camera=None, depth=None) for f in frames], "images", scene.root, has_poses=False)


def synthetic_prior(frame: Frame, rng: np.random.Generator, scale: tuple[float, float], shift: float, noise: float,
                    segment_share: float, segment_offset: float) -> np.ndarray:
    """GT depth -> a monocular-prior stand-in: ``a d + b`` per view (unknown to the method), multiplicative noise,
    and an extra offset on a random share of the view's semantic regions (0 stays invalid)."""
    from aligngs.model.dense_init import segments

    d = frame.depth.astype(np.float64)
    valid = d > 0
    med = float(np.median(d[valid])) if valid.any() else 1.0
    out = d * (1.0 + noise * rng.standard_normal(d.shape))
    if frame.labels is not None and segment_share > 0:
        seg = segments(frame.labels, 30)
        for sid in range(int(seg.max()) + 1):
            if rng.random() < segment_share:
                out[seg == sid] += rng.choice([-1.0, 1.0]) * segment_offset * med
    a = rng.uniform(*scale)
    b = rng.uniform(-shift, shift) * med
    out = a * out + b
    out[~valid] = 0.0
    return np.maximum(out, 0.0).astype(np.float32)


def score_cloud(points: np.ndarray, sim, ref: np.ndarray, threshold: float) -> dict:
    from aligngs.metrics.mesh import mesh_metrics

    if len(points) == 0:
        return {"accuracy": None, "completion": None, "fscore": None}
    m = mesh_metrics(sim.apply(points), ref, threshold=threshold)
    return {k: m[k] for k in ("accuracy", "completion", "fscore", "precision", "recall")}


def dense_figures(data: Path, full: Scene, est: Scene, sim, args) -> dict:
    from aligngs.model.dense_init import DenseAlignConfig, align_dense
    from benchmarks.scene import reference_points

    if not (data / "gt_mesh.ply").is_file():
        raise SystemExit(f"error: --dense needs {data / 'gt_mesh.ply'} (a ground-truth mesh)")
    by_name = {f.name: f for f in full.frames}
    if not all(by_name[f.name].depth is not None for f in est.frames):
        raise SystemExit(f"error: --dense needs per-view depth in {data} (none loaded)")
    ref = reference_points(data, full, n=2_000_000)  # dense enough that sampling adds < 1 cm to accuracy
    rng = np.random.default_rng(args.seed)
    frames = [f.with_camera(f.camera) for f in est.frames]
    priors = [synthetic_prior(by_name[f.name], rng, (args.prior_scale_min, args.prior_scale_max), args.prior_shift,
                              args.prior_noise, args.segment_share, args.segment_offset) for f in frames]
    labels = [by_name[f.name].labels for f in frames]
    obs = est.meta.get("point_observations")
    out = {}
    for key, semantic in (("dense", True), ("dense_global", False)):
        t0 = time.perf_counter()
        res = align_dense(frames, priors, est.points, obs, DenseAlignConfig(seed=args.seed, semantic=semantic),
                          labels=labels)
        out[key] = (res, time.perf_counter() - t0)
    sparse = score_cloud(est.points, sim, ref, args.threshold)
    dense_res, dense_s = out["dense"]
    dense = score_cloud(dense_res.points, sim, ref, args.threshold)
    glob = score_cloud(out["dense_global"][0].points, sim, ref, args.threshold)
    return {
        "sparse_points": int(len(est.points)), "dense_points": int(len(dense_res.points)),
        "sparse_acc": sparse["accuracy"], "dense_acc": dense["accuracy"], "dense_acc_global": glob["accuracy"],
        "sparse_completion": sparse["completion"], "dense_completion": dense["completion"],
        "sparse_fscore": sparse["fscore"], "dense_fscore": dense["fscore"], "dense_fscore_global": glob["fscore"],
        "threshold": args.threshold, "dense_wall_s": dense_s, "dense_report": dense_res.report(),
        "prior": {"scale": [args.prior_scale_min, args.prior_scale_max], "shift": args.prior_shift,
                  "noise": args.prior_noise, "segment_share": args.segment_share,
                  "segment_offset": args.segment_offset},
    }


def run(args) -> dict:
    from aligngs.data.loaders import load_scene
    from aligngs.poses import PoseConfig, estimate_poses
    from aligngs.poses.align import pose_errors
    from aligngs.poses.vggt import VGGTConfig

    data = Path(args.data)
    full = load_scene(data, DataConfig(resolution=args.resolution))
    bare = strip_poses(full, args.max_views)
    cfg = PoseConfig(vggt=VGGTConfig(checkpoint=args.checkpoint) if args.checkpoint else VGGTConfig())
    t0 = time.perf_counter()
    est = estimate_poses(bare, args.method, cfg=cfg)
    wall = time.perf_counter() - t0
    ref = {f.name: f.camera for f in full.frames}
    errs = pose_errors({f.name: f.camera for f in est.frames}, ref)
    info = est.meta.get("poses", {})
    row = {
        "data": str(data), "method": info.get("method", args.method),
        "registered": len(est.frames), "total": len(bare.frames),
        "ate": errs.ate, "ate_rel": errs.ate_rel, "rot_err_deg": errs.rot_err_deg,
        "rot_err_deg_median": errs.rot_err_deg_median, "sim3_scale": errs.sim3.s,
        "n_points": int(0 if est.points is None else len(est.points)), "wall_s": wall,
        "unregistered": info.get("unregistered", []), "fallbacks": info.get("fallbacks", []),
    }
    if args.dense:
        row.update(dense_figures(data, load_scene(data, DataConfig(resolution=args.resolution)), est, errs.sim3,
                                 args))
    return row


def print_row(row: dict) -> None:
    f = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    print(f"{row['data']}  method {row['method']}")
    print(f"  registered   {row['registered']}/{row['total']}" +
          (f"  (unregistered: {', '.join(row['unregistered'])})" if row["unregistered"] else ""))
    print(f"  ATE          {f(row['ate'])} scene units  ({100 * row['ate_rel']:.2f}% of the camera path)")
    print(f"  rotation     {f(row['rot_err_deg'])} deg mean, {f(row['rot_err_deg_median'])} deg median")
    print(f"  points       {row['n_points']}")
    print(f"  wall         {row['wall_s']:.1f} s")
    if "dense_points" in row:
        print(f"  sparse       {row['sparse_points']} points, accuracy {f(row['sparse_acc'])}, completion "
              f"{f(row['sparse_completion'])}, F@{row['threshold']} {f(row['sparse_fscore'])}")
        print(f"  dense        {row['dense_points']} points, accuracy {f(row['dense_acc'])}, completion "
              f"{f(row['dense_completion'])}, F@{row['threshold']} {f(row['dense_fscore'])}  "
              f"({row['dense_wall_s']:.1f} s)")
        print(f"  dense/global accuracy {f(row['dense_acc_global'])}, F {f(row['dense_fscore_global'])} "
              "(no semantic re-alignment)")
        print(f"  alignment    {row['dense_report']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks poses")
    ap.add_argument("--data", required=True, help="a folder with reference poses (transforms.json, COLMAP, RGB-D)")
    ap.add_argument("--method", default="sfm", choices=["sfm", "vggt", "auto"])
    ap.add_argument("--checkpoint", help="VGGT checkpoint id or local folder")
    ap.add_argument("--resolution", type=int, help="longest side of the loaded frames (SfM reads the files)")
    ap.add_argument("--max-views", type=int, help="use this many evenly spaced views")
    ap.add_argument("--dense", action="store_true", help="also score SPARS3R dense alignment (needs depth + gt mesh)")
    ap.add_argument("--prior-scale-min", type=float, default=0.5)
    ap.add_argument("--prior-scale-max", type=float, default=2.0)
    ap.add_argument("--prior-shift", type=float, default=0.3, help="max |shift| as a fraction of the median depth")
    ap.add_argument("--prior-noise", type=float, default=0.01)
    ap.add_argument("--segment-share", type=float, default=0.0, help="share of semantic regions given their own offset")
    ap.add_argument("--segment-offset", type=float, default=0.1)
    ap.add_argument("--threshold", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from aligngs.data.errors import DataError

    try:
        row = run(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_row(row)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
