"""Objects benchmark (issue 13): identity splits vs connected components, and virtual views under sparse views.

    python -m benchmarks objects instances --data samples/room /tmp/rooms/seed1 --json objects.json
    python -m benchmarks objects virtual --data samples/room --views 8 --json virtual.json

``instances``: per room, one reconstruction with the identity encodings on (``--preset fast``, by default the demo's
schedule: 120 iterations at 112 px), then the SAME labelled mesh split two ways: by the learned identities (what
the pipeline writes, ``classes/*/mesh.ply``) and by today's connected components (``split_by_class`` on
``mesh.ply`` + ``semantic_points.ply``). Ground truth: every split vertex gets the instance of the nearest point of
a dense sample of ``gt_mesh.ply`` (within ``--tol``, else void). Per class, predicted instances are matched to the
ground-truth instances of that class by IoU > 0.5 over the non-void vertices (panoptic quality: PQ = sum of matched
IoU / (TP + FP/2 + FN/2); SQ = mean matched IoU; RQ = PQ / SQ); the row's PQ is the mean over the classes present
in the ground truth. It also prints the number of objects per class against the truth (``scene.json``) for wall,
floor, ceiling, chair and lamp.

``virtual``: per room, sparse training views (``--views``, evenly spaced over the scene's own training split) with
a view-consistent simulated teacher (:mod:`aligngs.priors.simulate`: whole objects confused with a look-alike
class, small objects missed, blocky boundaries; the same plan labels the virtual views through the ground-truth
mesh), trained with and without virtual views, same seed and schedule; the figure is the test-view mIoU of the
rendered labels against the ground truth, and the teacher's own mIoU on the same test views.
Both runs use the input's sensor depth as depth prior and its default initialisation (this measures the semantic
term only, not the geometry protocol of the scene benchmark).
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

log = logging.getLogger(__name__)

COUNT_CLASSES = ("wall", "floor", "ceiling", "chair", "lamp")


# ------------------------------------------------------------------------------------------------ ground truth
def gt_sampler(data: Path, n: int = 400_000, seed: int = 0):
    """(points [n,3], instance id per point) sampled area-uniformly on ``gt_mesh.ply``, and {instance: class}."""
    from aligngs.export.ply import read_ply

    v, f = read_ply(data / "gt_mesh.ply")
    V = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    F = np.asarray(f, np.int64)
    inst_v = np.asarray(v["instance_id"], np.int64)
    cls_v = np.asarray(v["class_id"], np.int64)
    a, b, c = V[F[:, 0]], V[F[:, 1]], V[F[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    rng = np.random.default_rng(seed)
    fi = rng.choice(len(F), n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    pts = (1 - s)[:, None] * a[fi] + (s * (1 - r2))[:, None] * b[fi] + (s * r2)[:, None] * c[fi]
    inst_cls = {int(i): int(k) for i, k in zip(inst_v[F[:, 0]], cls_v[F[:, 0]])}
    return pts, inst_v[F[fi, 0]], inst_cls


def evaluate_split(elements: list[tuple[int, np.ndarray, np.ndarray]], tree, gt_inst_pts: np.ndarray,
                   inst_class: dict[int, int], tol: float) -> dict:
    """PQ of one split. ``elements``: (class id, positions [n,3], instance index [n] (-1 none)) per class split."""
    cls_all, pos_all, pred_all = [], [], []
    for cid, pos, inst in elements:
        cls_all.append(np.full(len(pos), cid))
        pos_all.append(pos)
        pred_all.append(inst)
    if not pos_all:
        return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "per_class": {}}
    cls_all = np.concatenate(cls_all)
    pos_all = np.concatenate(pos_all)
    pred_all = np.concatenate(pred_all)
    d, j = tree.query(pos_all, k=1)
    gt = np.where(d <= tol, gt_inst_pts[j], 0)
    valid = gt > 0
    gt_cls = np.array([inst_class.get(int(g), -1) for g in gt])
    per_class = {}
    classes = sorted(set(gt_cls[valid].tolist()) | set(cls_all.tolist()))
    for c in classes:
        gts = [g for g in np.unique(gt[valid & (gt_cls == c)])]
        preds = [(c, i) for i in np.unique(pred_all[(cls_all == c) & (pred_all >= 0)])]
        if not gts and not preds:
            continue
        ious = np.zeros((len(preds), len(gts)))
        for a, (_, i) in enumerate(preds):
            pm = (cls_all == c) & (pred_all == i) & valid
            for b, g in enumerate(gts):
                gm = gt == g
                inter = np.sum(pm & gm)
                union = np.sum(pm | gm)
                ious[a, b] = inter / union if union else 0.0
        matched = ious > 0.5  # at most one match per row/column when IoU > 0.5
        tp = int(matched.sum())
        iou_sum = float(ious[matched].sum())
        fp, fn = len(preds) - tp, len(gts) - tp
        pq = iou_sum / (tp + 0.5 * fp + 0.5 * fn) if (tp + fp + fn) else 0.0
        per_class[int(c)] = {"pq": pq, "sq": iou_sum / tp if tp else 0.0, "tp": tp, "fp": fp, "fn": fn,
                             "n_pred": len(preds), "n_gt": len(gts)}
    gt_classes = [c for c, v in per_class.items() if v["n_gt"] > 0]
    pq = float(np.mean([per_class[c]["pq"] for c in gt_classes])) if gt_classes else 0.0
    sq = float(np.mean([per_class[c]["sq"] for c in gt_classes])) if gt_classes else 0.0
    return {"pq": pq, "sq": sq, "rq": pq / sq if sq else 0.0, "per_class": per_class}


def _identity_elements(out: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    from aligngs.export.ply import read_ply

    doc = json.loads((out / "classes.json").read_text())
    els = []
    for c in doc["classes"]:
        rel = c.get("files", {}).get("mesh")
        if not rel:
            continue
        v, _ = read_ply(out / rel)
        els.append((int(c["id"]), np.stack([v["x"], v["y"], v["z"]], 1), np.asarray(v["instance"], np.int64)))
    return els


def _component_splits(out: Path, min_instance_points: int):
    from aligngs.data.types import TriMesh
    from aligngs.export.ply import read_ply
    from aligngs.extract.splits import split_by_class

    v, f = read_ply(out / "mesh.ply")
    mesh = TriMesh(np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32), np.asarray(f, np.int32), None,
                   {"class_id": np.asarray(v["class_id"], np.int32)})
    p, _ = read_ply(out / "semantic_points.ply")
    pts = {"positions": np.stack([p["x"], p["y"], p["z"]], 1).astype(np.float32),
           "colors": np.stack([p["red"], p["green"], p["blue"]], 1).astype(np.uint8),
           "class_id": np.asarray(p["class_id"], np.int32), "confidence": np.asarray(p["confidence"], np.float32)}
    return split_by_class(mesh, pts, min_instance_points=min_instance_points)


def _counts(names_counts: dict[str, int], truth: dict[str, int]) -> dict:
    return {c: {"pred": names_counts.get(c, 0), "truth": truth.get(c, 0)} for c in COUNT_CLASSES}


def run_instances(data: Path, args, out_root: Path) -> dict:
    from scipy.spatial import cKDTree

    from aligngs.config import DataConfig, preset
    from aligngs.data.loaders import load_scene
    from aligngs.pipeline import reconstruct
    from aligngs.priors.ade20k import CLASS_NAMES

    cfg = preset(args.preset, {"data": {"resolution": args.resolution},
                               "train": {"iterations": args.iterations, "seed": args.seed,
                                         "identity": {"masks": args.masks}}})
    scene = load_scene(data, DataConfig(resolution=args.resolution))
    out = out_root / f"instances_{data.name}_{args.masks}"
    t0 = time.perf_counter()
    report = reconstruct(scene, out, cfg)
    wall = time.perf_counter() - t0
    pts, inst, inst_class = gt_sampler(data)
    tree = cKDTree(pts)
    ident = _identity_elements(out)
    comp_splits = _component_splits(out, cfg.mesh.min_instance_points)
    comp = [(sp.class_id, sp.mesh.vertices, sp.mesh_instance) for sp in comp_splits if sp.mesh is not None]
    meta = json.loads((data / "scene.json").read_text())
    truth: dict[str, int] = {}
    for o in meta["objects"]:
        truth[o["class_name"]] = truth.get(o["class_name"], 0) + 1
    doc = json.loads((out / "classes.json").read_text())
    ident_counts = {c["name"]: c["n_instances"] for c in doc["classes"]}
    comp_counts = {CLASS_NAMES[sp.class_id]: len(sp.instances) for sp in comp_splits}
    q_id = evaluate_split(ident, tree, inst, inst_class, args.tol)
    q_cc = evaluate_split(comp, tree, inst, inst_class, args.tol)
    return {
        "data": str(data), "iterations": cfg.train.iterations, "resolution": cfg.data.resolution,
        "masks": report.get("objects", {}).get("identity", {}).get("masks"),
        "pq_identity": q_id["pq"], "sq_identity": q_id["sq"], "rq_identity": q_id["rq"],
        "pq_components": q_cc["pq"], "sq_components": q_cc["sq"], "rq_components": q_cc["rq"],
        "counts_identity": _counts(ident_counts, truth), "counts_components": _counts(comp_counts, truth),
        "per_class_identity": q_id["per_class"], "per_class_components": q_cc["per_class"],
        "wall_s": wall, "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


# ---------------------------------------------------------------------------------------------------- virtual
def run_virtual(data: Path, args, out_root: Path) -> list[dict]:
    from aligngs.config import DataConfig, preset
    from aligngs.data.loaders import load_scene
    from aligngs.data.split import evenly_spaced, split_frames
    from aligngs.metrics.semantic import miou
    from aligngs.pipeline import reconstruct
    from aligngs.priors.simulate import TEACHER_STRENGTHS, TeacherModel, plan_teacher, simulate_teacher_labels
    from aligngs.train.virtual_views import MeshLabelTeacher

    base = load_scene(data, DataConfig(resolution=args.resolution))
    train_all, test = split_frames(base, DataConfig(resolution=args.resolution))
    keep = [train_all[i].name for i in evenly_spaced(len(train_all), min(args.views, len(train_all)))]
    test_names = [f.name for f in test]
    rng = np.random.default_rng(args.seed)
    plan = plan_teacher([f.labels for f in base.frames], [f.extras.get("instance") for f in base.frames], rng,
                        TeacherModel(strength=TEACHER_STRENGTHS[args.teacher]))

    def degrade(lab, inst):
        return simulate_teacher_labels(lab, inst, plan)

    sc = copy.copy(base)
    sc.frames = []
    preds, gts = [], []
    for f in base.frames:
        if f.name not in keep and f.name not in test_names:
            continue
        f = copy.copy(f)
        noisy = degrade(f.labels, f.extras.get("instance"))
        if f.name in test_names:
            preds.append(noisy.ravel())
            gts.append(f.labels.ravel())
        else:
            f.labels = noisy
        sc.frames.append(f)
    teacher_miou = float(miou(np.concatenate(preds), np.concatenate(gts), 150)[0])
    sc.meta = dict(base.meta)
    sc.meta["virtual_teacher"] = MeshLabelTeacher.from_ply(data / "gt_mesh.ply", degrade=degrade)
    rows = []
    for on in (False, True):
        cfg = preset(args.preset, {"data": {"resolution": args.resolution, "test_names": test_names},
                                   "train": {"iterations": args.iterations, "seed": args.seed,
                                             "identity": {"enabled": False},
                                             "virtual_views": {"enabled": on}}})
        t0 = time.perf_counter()
        rep = reconstruct(sc, out_root / f"virtual_{data.name}_{'on' if on else 'off'}", cfg)
        rows.append({"data": str(data), "virtual_views": on, "views": len(keep), "teacher": args.teacher,
                     "teacher_plan": plan.summary(), "miou": rep["metrics"].get("miou"), "teacher_miou": teacher_miou,
                     "psnr": rep["metrics"].get("psnr"), "iterations": cfg.train.iterations,
                     "virtual": rep.get("objects", {}).get("virtual_views"), "wall_s": time.perf_counter() - t0})
    return rows


# ------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks objects")
    ap.add_argument("part", choices=["instances", "virtual"])
    ap.add_argument("--data", nargs="+", required=True, help="synthetic room folders (with gt_mesh.ply, scene.json)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--iterations", type=int, default=120, help="default: the demo's schedule")
    ap.add_argument("--resolution", type=int, default=112, help="default: the demo's resolution")
    ap.add_argument("--views", type=int, default=8, help="virtual: training views")
    ap.add_argument("--teacher", default="strong", help="virtual: simulated teacher strength (mild | strong)")
    ap.add_argument("--tol", type=float, default=0.05, help="instances: metres to the nearest ground-truth point")
    ap.add_argument("--masks", default="auto", choices=["auto", "provided", "associated"],
                    help="instances: identity.masks (associated = ignore the instance maps, match teacher segments)")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--out", default="out/bench/objects")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    rows: list[dict] = []
    for d in args.data:
        d = Path(d)
        if args.part == "instances":
            r = run_instances(d, args, Path(args.out))
            rows.append(r)
            ci, cc = r["counts_identity"], r["counts_components"]
            print(f"{d.name:>10}  PQ identity {r['pq_identity']:.3f} (SQ {r['sq_identity']:.3f}, RQ {r['rq_identity']:.3f})"
                  f"  components {r['pq_components']:.3f} (SQ {r['sq_components']:.3f}, RQ {r['rq_components']:.3f})"
                  f"  masks {r['masks']}  {r['wall_s']:.0f}s")
            print("            objects per class (identity / components / truth): " + ", ".join(
                f"{c} {ci[c]['pred']}/{cc[c]['pred']}/{ci[c]['truth']}" for c in COUNT_CLASSES))
        else:
            for r in run_virtual(d, args, Path(args.out)):
                rows.append(r)
                print(f"{d.name:>10}  virtual views {'on ' if r['virtual_views'] else 'off'}  test mIoU {r['miou']:.3f}"
                      f"  teacher {r['teacher_miou']:.3f}  PSNR {r['psnr']:.2f}  {r['views']} views"
                      f"  {r['iterations']} its  {r['wall_s']:.0f}s")
    if args.part == "instances" and rows:
        print(f"      mean  PQ identity {np.mean([r['pq_identity'] for r in rows]):.3f}"
              f"  components {np.mean([r['pq_components'] for r in rows]):.3f}")
    elif rows:
        on = [r["miou"] for r in rows if r["virtual_views"]]
        off = [r["miou"] for r in rows if not r["virtual_views"]]
        print(f"      mean  test mIoU with virtual views {np.mean(on):.3f}  without {np.mean(off):.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
