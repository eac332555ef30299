"""What a photo-only user has for initialisation, built for the sparse protocol of the scene benchmark.

:func:`triangulate_known_poses`: SIFT features of the K training views (pycolmap), exhaustive matching with
COLMAP's geometric verification, then every verified match triangulated with the views' known cameras (linear DLT)
and kept when it lies in front of both cameras, reprojects within ``max_reproj_px`` in both and has a triangulation
angle of at least ``min_angle_deg``. Incremental SfM registers too few of 8 sparse synthetic views to be usable
(pycolmap finds no initial pair on samples/room at 8 views), and the benchmark evaluates in the known camera frame
anyway, so the cameras are given and only the points are estimated. No ground-truth depth is read.

:func:`dense_from_prior`: the SPARS3R dense cloud: each view's depth *prior* (affine-ambiguous) aligned to the
triangulated points by :func:`aligngs.model.dense_init.align_dense` (RANSAC scale/shift + semantic re-alignment on the
*teacher's* labels), unprojected and cross-view checked.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from aligngs.config import PRESETS

log = logging.getLogger(__name__)


def _dlt(P1: np.ndarray, P2: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Linear triangulation of N correspondences (pixel coords [N,2]) with 3x4 projections. -> [N,3]."""
    A = np.stack([
        x1[:, 0:1] * P1[2] - P1[0], x1[:, 1:2] * P1[2] - P1[1],
        x2[:, 0:1] * P2[2] - P2[0], x2[:, 1:2] * P2[2] - P2[1],
    ], axis=1)  # [N,4,4]
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    return X[:, :3] / X[:, 3:4]


def _project(P: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = X @ P[:, :3].T + P[:, 3]
    return h[:, :2] / h[:, 2:3], h[:, 2]


def triangulate_known_poses(frames, max_reproj_px: float = 2.0, min_angle_deg: float = 1.5,
                            max_features: int = 4096, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Sparse points [P,3] float32 + colours [P,3] 0..1 from feature matches between ``frames`` (known cameras).

    Frames need ``image`` and ``camera`` (same resolution as the image). ``seed`` seeds the geometric
    verification's RANSAC (pycolmap draws a fresh seed otherwise); pycolmap's matching still differs between runs,
    so repeatable runs read the points back from ``prepare_case``'s ``init_cache``. Returns (points, colours,
    report)."""
    import pycolmap
    from PIL import Image

    from aligngs.poses.sfm import _colmap_quiet

    report = {"views": len(frames), "pairs": 0, "matches": 0, "points": 0}
    with tempfile.TemporaryDirectory(prefix="aligngs-tri-") as tmp, _colmap_quiet():
        work = Path(tmp)
        img_dir = work / "images"
        img_dir.mkdir()
        names = []
        for i, f in enumerate(frames):
            n = f"{i:04d}.png"
            Image.fromarray((np.clip(f.image, 0, 1) * 255).round().astype(np.uint8)).save(img_dir / n)
            names.append(n)
        db_path = work / "db.db"
        ext = pycolmap.FeatureExtractionOptions()
        ext.sift.max_num_features = max_features
        ext.num_threads = 2
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        pycolmap.extract_features(db_path, img_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  extraction_options=ext, device=pycolmap.Device.cpu)
        verify = pycolmap.TwoViewGeometryOptions()
        verify.ransac.random_seed = seed
        pycolmap.match_exhaustive(db_path, verification_options=verify, device=pycolmap.Device.cpu)
        db = pycolmap.Database.open(db_path)
        try:
            index = {img.image_id: names.index(img.name) for img in db.read_all_images()}
            kps = {iid: db.read_keypoints(iid)[:, :2].astype(np.float64) - 0.5 for iid in index}  # COLMAP: +0.5
            pair_ids, geoms = db.read_two_view_geometries()
        finally:
            db.close()
    Ps = [f.camera.K @ f.camera.w2c[:3, :4] for f in frames]
    pts, cols = [], []
    for pid, g in zip(pair_ids, geoms):
        m = np.asarray(g.inlier_matches)
        if len(m) < 8:
            continue
        a, b = pycolmap.pair_id_to_image_pair(pid)
        ia, ib = index[a], index[b]
        x1, x2 = kps[a][m[:, 0]], kps[b][m[:, 1]]
        X = _dlt(Ps[ia], Ps[ib], x1, x2)
        u1, z1 = _project(Ps[ia], X)
        u2, z2 = _project(Ps[ib], X)
        c1, c2 = frames[ia].camera.center, frames[ib].camera.center
        r1, r2 = X - c1, X - c2
        cosang = (r1 * r2).sum(1) / (np.linalg.norm(r1, axis=1) * np.linalg.norm(r2, axis=1) + 1e-12)
        ok = ((z1 > 0) & (z2 > 0) & (np.linalg.norm(u1 - x1, axis=1) < max_reproj_px)
              & (np.linalg.norm(u2 - x2, axis=1) < max_reproj_px)
              & (cosang < np.cos(np.deg2rad(min_angle_deg))))
        report["pairs"] += 1
        report["matches"] += int(len(m))
        if ok.any():
            pts.append(X[ok])
            img = frames[ia].image
            px = np.clip(np.rint(x1[ok]).astype(int), 0, [img.shape[1] - 1, img.shape[0] - 1])
            cols.append(img[px[:, 1], px[:, 0]])
    P = np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 3), np.float32)
    C = np.concatenate(cols).astype(np.float32) if cols else np.zeros((0, 3), np.float32)
    # one order for the same set of points (the database lists pairs and matches in the order the matching threads
    # produced them): the same matches give the same init, and so the same training
    order = np.lexsort(np.concatenate([P, C], axis=1).T[::-1])
    P, C = P[order], C[order]
    report["points"] = int(len(P))
    return P, C, report


def dense_from_prior(frames, depths: list[np.ndarray], points: np.ndarray, labels: list[np.ndarray | None] | None,
                     seed: int = 0, max_points: int = 200_000):
    """SPARS3R dense init: ``depths`` (per-view priors, any scale/shift) aligned to ``points``; ``labels`` are the
    teacher's label maps used for the semantic re-alignment (None = global alignment only)."""
    from aligngs.model.dense_init import DenseAlignConfig, align_dense

    cfg = DenseAlignConfig(seed=seed, max_points=max_points, semantic=labels is not None, stride=1,
                           inlier_rel=0.03, consistency_rel=0.05)
    res = align_dense(list(frames), depths, points, None, cfg, labels=labels if labels is not None else
                      [None] * len(frames))
    return res.points, res.colors, res.report()


# ---------------------------------------------------------------------------------------------------------------
# the sparse protocol: one case = one room (seed) x one teacher x one depth prior x one init, shared by every mode

import copy  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

#: AlignGS terms switched off one at a time for the ablation table (name -> LossConfig overrides).
ABLATIONS: dict[str, dict] = {
    "-kl": {"semantic_kl": 0.0},
    "-ce": {"semantic_ce": 0.0},
    "-pearson": {"depth_pearson": 0.0},
    "-edge_mask": {"depth_edge_mask": False},
    "-normal_consistency": {"normal_consistency": 0.0},
    "-boundary_normal": {"normal_semantic_boundary": 0.0},
    "-min_scale": {"min_scale": 0.0},
}


@dataclass
class Case:
    """Everything the modes of one comparison share: the same views, priors, init points and reference."""

    name: str
    seed: int
    data: str
    scene: object  # aligngs Scene: the K training views (teacher labels, prior depth) + the test views (truth)
    test_names: list[str]
    reference: np.ndarray | None
    info: dict = field(default_factory=dict)


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 0.1 s from /proc), in MB."""

    def __enter__(self):
        self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> float:
        try:
            with open("/proc/self/statm") as fh:
                import os

                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except OSError:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def _loop(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def synth_room(rooms: Path, seed: int, like: Path | None) -> Path:
    """The synthetic room of ``seed`` under ``rooms/seed<seed>``, generated with tools.synth (.venv-blender) when
    missing, with the view count / size / samples of the room ``like`` (else 32 views at 192x144)."""
    import subprocess
    import sys

    out = rooms / f"seed{seed}"
    if (out / "transforms.json").is_file():
        return out
    views, w, h, samples, test_every = 32, 192, 144, 12, 4
    if like is not None and (like / "transforms.json").is_file():
        t = json.loads((like / "transforms.json").read_text())
        views, samples = len(t["frames"]), int(t.get("aligngs_generator", {}).get("samples", samples))
        test_every = int(t.get("aligngs_generator", {}).get("test_every", test_every))
    root = Path(__file__).resolve().parents[1]
    py = root / ".venv-blender" / "bin" / "python"
    cmd = [str(py if py.exists() else sys.executable), "-m", "tools.synth", "--out", str(out), "--seed", str(seed),
           "--views", str(views), "--test-every", str(test_every), "--width", str(w), "--height", str(h),
           "--samples", str(samples), "--threads", "1", "--quiet"]
    log.warning("generating synthetic room seed %d: %s", seed, " ".join(cmd))
    subprocess.run(cmd, check=True, cwd=root)
    return out


def _split(scene, views: int):
    """K evenly spaced training views from the input's train split, its test split as test views; without a declared
    split: K evenly spaced views train, all the others test."""
    from aligngs.config import DataConfig
    from aligngs.data.split import evenly_spaced, split_frames

    if scene.meta.get("split"):
        return split_frames(scene, DataConfig(max_train_views=views))
    idx = set(evenly_spaced(len(scene.frames), views))
    return ([f for i, f in enumerate(scene.frames) if i in idx], [f for i, f in enumerate(scene.frames) if i not in idx])


def _stuff_instances(frames) -> set[int]:
    from aligngs.priors.ade20k import class_id
    from aligngs.priors.simulate import STUFF_CLASSES

    stuff_cls = {class_id(n) for n in STUFF_CLASSES}
    votes: dict[int, np.ndarray] = {}
    for f in frames:
        inst = f.extras.get("instance")
        if inst is None or f.labels is None:
            continue
        for i in np.unique(inst[inst > 0]).tolist():
            lab = f.labels[inst == i]
            lab = lab[lab >= 0]
            if len(lab):
                votes[i] = votes.get(i, np.zeros(150, np.int64)) + np.bincount(lab, minlength=150)
    return {i for i, v in votes.items() if int(v.argmax()) in stuff_cls}


def reference_surface(data: Path, native, test_names: set[str], n: int = 300_000) -> tuple[np.ndarray | None, str]:
    """The ground-truth mesh (synthetic rooms), else a TSDF of the HELD-OUT views' sensor depth only."""
    from aligngs.metrics.mesh import sample_mesh

    gt = data / "gt_mesh.ply"
    if gt.is_file():
        from aligngs.data.types import TriMesh
        from aligngs.export.ply import read_ply

        v, f = read_ply(gt)
        mesh = TriMesh(np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32), np.asarray(f, np.int32))
        return sample_mesh(mesh, n, seed=0), "gt_mesh"
    held = [f for f in native.frames if f.name in test_names and f.depth is not None]
    if not held:
        return None, "none"
    from aligngs.config import MeshConfig
    from aligngs.extract.extent import scene_extent
    from aligngs.extract.tsdf import fuse_tsdf

    cams = [f.camera for f in held]
    mesh = fuse_tsdf([f.depth for f in held], [f.image for f in held], cams, MeshConfig(), scene_extent(cams, None))
    return sample_mesh(mesh, n, seed=0), f"tsdf of {len(held)} held-out depth maps"


def _teacher_labels(teacher: str, train, test, sim_seed: int) -> tuple[dict | None, dict]:
    """(frame name -> teacher label map for the train views or None, info) for one teacher choice."""
    from aligngs.metrics.semantic import miou
    from aligngs.priors.simulate import TEACHER_STRENGTHS, TeacherModel, plan_teacher, simulate_teacher_labels

    if teacher == "none":
        return None, {"teacher": "none", "teacher_miou": None}
    if not all(f.labels is not None for f in train + test):
        return None, {"teacher": "none (the input has no label maps)", "teacher_miou": None}
    if teacher == "gt":
        return {f.name: f.labels for f in train}, {"teacher": "gt", "teacher_miou": 1.0, "oracle": True}
    strength = TEACHER_STRENGTHS[teacher] if teacher in TEACHER_STRENGTHS else float(teacher)
    frames = train + test
    plan = plan_teacher([f.labels for f in frames], [f.extras.get("instance") for f in frames],
                        np.random.default_rng(1000 + sim_seed), TeacherModel(strength=strength))
    noisy = {f.name: simulate_teacher_labels(f.labels, f.extras.get("instance"), plan) for f in frames}
    tm = None
    if test:  # the same teacher on the held-out views: what the lifted labels must beat
        tm = float(miou(np.concatenate([noisy[f.name].ravel() for f in test]),
                        np.concatenate([f.labels.ravel() for f in test]), 150)[0])
    return {f.name: noisy[f.name] for f in train}, {"teacher": f"sim-{teacher}", "teacher_miou": tm,
                                                     "teacher_plan": plan.summary()}


def _init_cache_file(folder: Path | None, key: str) -> Path | None:
    import hashlib

    return None if folder is None else Path(folder) / f"init-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def prepare_case(data: Path, seed: int, views: int, resolution: int | None, teachers: list[str], depth_prior: str,
                 init: str, *, sim_seed: int | None = None, max_init_points: int = 60_000,
                 depth_strength: float = 1.0, init_cache: Path | None = None) -> Case:
    """Build one sparse-protocol case: one room, K views, one depth prior and one init, and the label maps of every
    teacher in ``teachers`` (the first one's labels drive the init's semantic re-alignment, so every mode and every
    teacher of the case starts from the same points).

    ``init_cache``: a folder where the case's initial points are kept (one file per room, views, prior, init and
    first teacher) and read back by later runs: pycolmap's feature matching gives different matches in every run
    (even seeded, single-threaded and brute force), so without it two runs (or the processes of an ablation) start
    from different points."""
    from aligngs.config import DataConfig
    from aligngs.data.loaders import load_scene
    from aligngs.data.types import Scene
    from aligngs.priors.simulate import DepthPriorModel, depth_prior_stats, plan_misplaced, simulate_depth_prior

    sim_seed = seed if sim_seed is None else sim_seed
    scene = load_scene(data, DataConfig(resolution=resolution))
    native = load_scene(data, DataConfig()) if resolution else scene
    train, test = _split(scene, views)
    test_names = [f.name for f in test]
    train = [copy.copy(f) for f in train]
    test = [copy.copy(f) for f in test]
    info: dict = {"data": str(data), "views": len(train), "test_views": len(test), "resolution": resolution,
                  "oracle": [], "poses": "given (dataset cameras, both modes)", "teachers": {}}
    labels_by_teacher: dict[str, dict | None] = {}
    for t in teachers:
        labels_by_teacher[t], info["teachers"][t] = _teacher_labels(t, train, test, sim_seed)
    for f in train:
        f.labels = None  # set per run from labels_by_teacher
    # --- depth prior (train views only; test views keep nothing the method could read)
    truths = [f.depth for f in train]
    if depth_prior == "none" or all(d is None for d in truths):
        for f in train:
            f.depth = None
        info["depth_prior"] = "none"
    elif depth_prior == "gt":
        info["depth_prior"] = "gt"
        info["oracle"].append("depth_prior")
    elif depth_prior == "sim":
        rng = np.random.default_rng(2000 + sim_seed)
        dm = DepthPriorModel(strength=depth_strength)
        ids = sorted({int(i) for f in train if f.extras.get("instance") is not None
                      for i in np.unique(f.extras["instance"])})
        misplaced = plan_misplaced(ids, _stuff_instances(train + test), rng, dm) if ids else {}
        sims = [simulate_depth_prior(f.depth, rng, dm, f.extras.get("instance"), misplaced) for f in train]
        info["depth_prior_stats"] = depth_prior_stats([p for p, _ in sims], truths, [v for _, v in sims])
        info["depth_prior_stats"]["misplaced_objects"] = len(misplaced)
        for f, (p, _) in zip(train, sims):
            f.depth = p
        info["depth_prior"] = f"sim-mono(s={depth_strength:g})"
    elif depth_prior in ("dpt", "depth_anything"):
        for f in train:
            f.depth = None
        info["depth_prior"] = depth_prior  # the pipeline runs the real teacher (weights must be cached)
    else:
        raise ValueError(f"unknown depth prior {depth_prior!r}")
    for f in test:
        f.depth = None
        f.extras = {}
    # --- initial points (shared by every mode); what a row says of its init does not depend on the cache
    t0 = time.perf_counter()
    if init not in ("gt-depth", "sfm", "sfm+prior"):
        raise ValueError(f"unknown init {init!r}")
    labels = None
    if init == "gt-depth":
        info["oracle"].append("init")
    elif init == "sfm+prior":
        if info["depth_prior"] == "none" or any(f.depth is None for f in train):
            raise ValueError("init 'sfm+prior' needs a depth prior the benchmark can read (sim or gt)")
        first = labels_by_teacher.get(teachers[0]) if teachers else None
        labels = [first[f.name] for f in train] if first is not None else None
        info["init_realign_labels"] = info["teachers"][teachers[0]]["teacher"] if labels is not None else "none"
    key = json.dumps([str(Path(data).resolve()), seed, views, resolution, info["depth_prior"], depth_strength, init,
                      teachers[0] if teachers else None, max_init_points, sim_seed])
    cached = _init_cache_file(init_cache, key)
    if cached is not None and cached.is_file():
        with np.load(cached) as z:
            pts, cols, rep = z["points"], z["colors"], str(z["report"])
        info["init_report"] = json.loads(rep)
        info["init_cached"] = str(cached)
    elif init == "gt-depth":
        from aligngs.model.init import backproject_frames

        gt_frames = [f for f in scene.frames if f.name in {t.name for t in train}]
        pts, cols = backproject_frames(gt_frames)
        info["init_report"] = {"points": int(len(pts))}
    else:
        by_name = {f.name: f for f in native.frames}
        pts, cols, rep = triangulate_known_poses([by_name[f.name] for f in train])
        info["init_report"] = {"sfm": rep}
        if init == "sfm+prior":
            dpts, dcols, drep = dense_from_prior(train, [f.depth for f in train], pts, labels, seed=sim_seed)
            info["init_report"]["dense"] = drep
            if len(dpts) > len(pts):
                pts, cols = np.concatenate([dpts, pts]), np.concatenate([dcols, cols])
    rng = np.random.default_rng(sim_seed)
    if len(pts) > max_init_points:
        keep = rng.choice(len(pts), max_init_points, replace=False)
        pts, cols = pts[keep], cols[keep]
    if cached is not None and "init_cached" not in info:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, points=pts, colors=cols, report=json.dumps(info["init_report"]), key=key)
    info["init"] = init
    info["init_points"] = int(len(pts))
    info["init_s"] = time.perf_counter() - t0
    meta = {k: v for k, v in scene.meta.items() if k not in ("point_observations", "split")}
    meta["points_source"] = init
    sub = Scene(train + test, scene.source, scene.root, True, scene.up, pts.astype(np.float32),
                cols.astype(np.float32), meta)
    ref, ref_kind = reference_surface(data, native, set(test_names))
    info["reference"] = ref_kind
    info["labels_by_teacher"] = labels_by_teacher
    for f in train:  # ground-truth instance maps were only used to simulate the teacher / prior: nothing may read them
        f.extras = {k: v for k, v in f.extras.items() if k != "instance"}
    return Case(f"{data.name}-s{seed}", seed, str(data), sub, test_names, ref, info)


def run_mode(case: Case, mode: str, preset_name: str, overrides: dict, out_dir: Path, threshold: float,
             teacher: str | None = None, ablation: str | None = None) -> dict:
    """Reconstruct ``case`` in ``mode`` (AlignGS with ``teacher``'s labels; optionally one term off) -> one row.

    Plain 3DGS reads only the photos, the cameras and the init points; its row's ``teacher`` is "unused"."""
    from aligngs.config import deep_merge, preset
    from aligngs.pipeline import reconstruct

    info = case.info
    labels = None
    if mode == "aligngs" and teacher is not None:
        labels = info["labels_by_teacher"][teacher]
        tinfo = info["teachers"][teacher]
    else:
        tinfo = {"teacher": "unused", "teacher_miou": None}
    sem_teacher = "provided" if labels is not None else "none"
    depth_teacher = "none" if info["depth_prior"] == "none" else "sensor"
    if info["depth_prior"] in ("dpt", "depth_anything"):
        depth_teacher = info["depth_prior"]
    ov = deep_merge(overrides, {
        "mode": mode,
        "data": {"test_names": list(case.test_names), "dense_init": False},
        "train": {"semantics": {"teacher": sem_teacher, "depth_teacher": depth_teacher,
                                "enabled": sem_teacher != "none"}},
    })
    if ablation:
        ov = deep_merge(ov, {"train": {"loss": ABLATIONS[ablation]}})
    # AlignGS as the paper defines it: the identity encodings / virtual views of issue 13 stay off here
    from aligngs.config import TrainConfig

    for extra in ("identity", "virtual_views"):
        if extra in TrainConfig.__dataclass_fields__:
            ov = deep_merge(ov, {"train": {extra: {"enabled": False}}})
    cfg = preset(preset_name, ov)
    sc = copy.copy(case.scene)
    sc.frames = [copy.copy(f) for f in case.scene.frames]
    for f in sc.frames:
        if f.name not in case.test_names:
            f.labels = None if labels is None else labels[f.name]
    tag = mode + (f"-{teacher}" if mode == "aligngs" and teacher else "") + (ablation or "")
    out = out_dir / case.name / tag
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        report = reconstruct(sc, out, cfg, reference_points=case.reference, mesh_threshold=threshold)
    wall = time.perf_counter() - t0
    m = report["metrics"]
    mesh = m.get("mesh", {})
    oracle = ["init"] if "init" in info["oracle"] else []
    given = [f"{info['views']} photos + cameras", f"init {info['init']} ({info['init_points']} points)"]
    if mode == "aligngs":
        if tinfo.get("oracle"):
            oracle.append("teacher")
        if "depth_prior" in info["oracle"]:
            oracle.append("depth_prior")
        given += [f"teacher {tinfo['teacher']}", f"depth prior {info['depth_prior']}"]
    return {
        "mode": mode, "ablation": ablation, "seed": case.seed, "data": case.data, "views": info["views"],
        "test_views": info["test_views"], "teacher": tinfo["teacher"],
        "depth_prior": info["depth_prior"] if mode == "aligngs" else "unused", "init": info["init"],
        "init_points": info["init_points"], "init_realign_labels": info.get("init_realign_labels"),
        "oracle": bool(oracle), "oracle_parts": oracle, "given": "; ".join(given), "reference": info["reference"],
        "threshold": threshold,
        "mesher": {k: getattr(cfg.mesh, k) for k in ("depth", "alpha_min", "weight_threshold", "largest_component")},
        "fscore": mesh.get("fscore"), "accuracy": mesh.get("accuracy"), "completion": mesh.get("completion"),
        "precision": mesh.get("precision"), "recall": mesh.get("recall"),
        "psnr": m.get("psnr"), "ssim": m.get("ssim"), "lpips": m.get("lpips"), "lpips_note": m.get("lpips_note"),
        "miou": m.get("miou") if mode == "aligngs" else None, "teacher_miou": tinfo.get("teacher_miou"),
        "wall_s": wall, "peak_mem_mb": mem.peak, "n_gaussians": report["counts"]["gaussians"],
        "iterations": cfg.train.iterations, "resolution": info["resolution"], "timings": report["timings"],
        "depth_prior_stats": info.get("depth_prior_stats"), "teacher_plan": tinfo.get("teacher_plan"),
        "out": str(out),
    }


# ---------------------------------------------------------------------------------------------------------------
# tables and the command line (``python -m benchmarks scene --protocol sparse ...``)

METRICS = ("fscore", "accuracy", "completion", "precision", "recall", "psnr", "ssim", "lpips", "miou", "teacher_miou",
           "wall_s", "peak_mem_mb", "n_gaussians")


def _dataset(r: dict) -> str:
    """Synthetic rooms (the sample and generated seeds) average together; other inputs stay apart."""
    d = str(r["data"])
    return "synthetic rooms" if r.get("reference") == "gt_mesh" or "room" in d or "/seed" in d else d


def mean_rows(rows: list[dict]) -> list[dict]:
    """One row per (mode, teacher, ablation, views, depth prior, init): metrics averaged over the seeds present."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["mode"], r["teacher"], r["ablation"], r["views"], r["depth_prior"], r["init"],
                           _dataset(r)), []).append(r)
    out = []
    for (mode, teacher, abl, views, dp, init, _), rs in groups.items():
        m = {"mode": mode, "teacher": teacher, "ablation": abl, "views": views, "depth_prior": dp, "init": init,
             "seed": "mean", "seeds": [r["seed"] for r in rs], "n": len(rs), "oracle": any(r["oracle"] for r in rs),
             "data": _dataset(rs[0])}
        for k in METRICS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            m[k] = float(np.mean(vals)) if len(vals) == len(rs) else None
        out.append(m)
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3f}"
    return str(v)


def print_rows(rows: list[dict], cols: list[str], title: str) -> None:
    if not rows:  # e.g. an ablation-only run has no main rows
        return
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(w) for c, w in zip(cols, widths)))


def ablation_rows(rows: list[dict]) -> list[dict]:
    """Mean over the ablation seeds of full AlignGS and of each variant with one term off, with deltas."""
    abl_seeds = sorted({r["seed"] for r in rows if r["ablation"]}, key=str)
    out = []
    for teacher in sorted({r["teacher"] for r in rows if r["ablation"]}):
        base = [r for r in rows if r["mode"] == "aligngs" and not r["ablation"] and r["teacher"] == teacher
                and r["seed"] in abl_seeds]
        if not base:
            continue
        b = {k: float(np.mean([r[k] for r in base])) for k in ("fscore", "psnr", "miou") if all(r.get(k) is not None
                                                                                               for r in base)}
        out.append({"variant": "aligngs (all terms)", "teacher": teacher, "n": len(base), **b})
        for name in ABLATIONS:
            rs = [r for r in rows if r["ablation"] == name and r["teacher"] == teacher]
            if not rs:
                continue
            v = {k: float(np.mean([r[k] for r in rs])) for k in ("fscore", "psnr", "miou")
                 if all(r.get(k) is not None for r in rs)}
            out.append({"variant": name, "teacher": teacher, "n": len(rs), **v,
                        **{f"d_{k}": v[k] - b[k] for k in v if k in b}})
    return out


def sparse_schedule(iterations: int) -> dict:
    """The benchmark's schedule for short CPU runs (absolute steps, ``schedule_iterations`` None): refinement from 1/6
    to 3/4 of the run every 1/15, no opacity reset (a reset needs ~1,000 iterations to recover; scaled to a few hundred
    iterations it leaves the run ending just after one: test PSNR 10.4 vs 25.6 on samples/room, 8 views, 200 its),
    depth / normal terms from 1/5 (the reference: 3/14), SH degree up every quarter."""
    n = int(iterations)
    return {"iterations": n, "schedule_iterations": None, "sh_degree_interval": max(1, n // 4),
            "lr": {"means_decay_steps": 4 * n},
            "densify": {"refine_start_iter": n // 6, "refine_stop_iter": (3 * n) // 4,
                        "refine_every": max(10, n // 15), "reset_every": 10 * n + 1},
            "loss": {"depth_from_iter": n // 5, "normal_from_iter": n // 5}}


#: The mesher of the sparse protocol, for both modes and any --preset: the ``sparse`` preset's (every fused piece,
#: surface seen from one view, median depth; see aligngs.config.PRESETS for the figures).
SPARSE_MESH = dict(PRESETS["sparse"]["mesh"])


def sparse_main(argv: list[str]) -> int:
    import argparse
    import logging as _logging

    from aligngs.priors.simulate import TEACHER_STRENGTHS

    ap = argparse.ArgumentParser(prog="python -m benchmarks scene --protocol sparse", description=__doc__)
    ap.add_argument("--protocol", choices=["sparse"], default="sparse")
    ap.add_argument("--data", required=True, nargs="+", help="a synthetic room (seeds via --seeds) and/or RGB-D folders")
    ap.add_argument("--seeds", type=int, nargs="+", help="synthetic room seeds (the --data room's own seed is that "
                    "room; others are generated under --rooms); for inputs that are not synthetic rooms: the "
                    "simulation seeds (teacher / depth prior draws)")
    ap.add_argument("--rooms", default="out/rooms", help="where generated rooms live (created with tools.synth)")
    ap.add_argument("--views", type=int, nargs="+", default=[8], help="training views K (e.g. 8 16)")
    ap.add_argument("--teacher", nargs="+", default=["mild", "strong"],
                    help=f"simulated teacher strengths ({', '.join(f'{k}={v}' for k, v in TEACHER_STRENGTHS.items())}"
                         f" or a number), 'gt' (oracle) or 'none'")
    ap.add_argument("--depth-prior", default="sim", choices=["sim", "gt", "dpt", "depth_anything", "none"],
                    help="sim: simulated monocular prior (aligngs.priors.simulate); gt: sensor/GT depth (oracle); "
                         "dpt / depth_anything: the real teacher (weights must be cached)")
    ap.add_argument("--depth-strength", type=float, default=1.0)
    ap.add_argument("--init", default="sfm+prior", choices=["sfm", "sfm+prior", "gt-depth"],
                    help="sfm: triangulated matches of the K views; sfm+prior: + SPARS3R dense cloud from the depth "
                         "prior; gt-depth: back-projected ground-truth depth (oracle)")
    ap.add_argument("--mode", nargs="*", default=["3dgs", "aligngs"], choices=["3dgs", "aligngs"],
                    help="modes to run (none: only the --ablation runs)")
    ap.add_argument("--ablation", action="store_true", help="also run AlignGS with each term off in turn")
    ap.add_argument("--ablation-seeds", type=int, nargs="+", help="seeds for the ablation (default: all)")
    ap.add_argument("--ablation-teacher", help="teacher for the ablation (default: the first --teacher)")
    ap.add_argument("--ablation-terms", nargs="+", choices=list(ABLATIONS), help="only these ablations (default: all)")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--config", help="JSON PipelineConfig overrides (both modes)")
    ap.add_argument("--max-init-points", type=int, default=60_000)
    ap.add_argument("--threshold", type=float, default=0.05, help="F-score distance in metres")
    ap.add_argument("--out", default="out/bench-sparse")
    ap.add_argument("--init-cache", help="folder for the cases' initial points, reused when present (same init in "
                    "every run; default: none, a fresh init per run)")
    ap.add_argument("--json")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="print (and with --json write) the tables of earlier "
                    "runs' JSON files together instead of running (e.g. seeds run as parallel processes)")
    ap.add_argument("--max-gaussians", type=int, default=30_000, help="growth cap (densify.max_gaussians)")
    args = ap.parse_args(argv)
    _logging.basicConfig(level=_logging.WARNING)
    if args.merge:
        rows = [r for p in args.merge for r in json.loads(Path(p).read_text())["rows"]]
        _tables(rows)
        if args.json:
            _write(args.json, rows)
        return 0
    from aligngs.config import preset as _preset

    overrides: dict = {"train": sparse_schedule(args.iterations or _preset(args.preset).train.iterations),
                       "mesh": dict(SPARSE_MESH)}
    overrides["train"]["densify"]["max_gaussians"] = args.max_gaussians
    if args.config:
        from aligngs.config import deep_merge

        overrides = deep_merge(overrides, json.loads(Path(args.config).read_text()))
    jobs = []  # (data folder, seed)
    for d in map(Path, args.data):
        sj = d / "scene.json"
        if sj.is_file() and args.seeds:
            own = int(json.loads(sj.read_text()).get("seed", -1))
            for s in args.seeds:
                jobs.append((d if s == own else synth_room(Path(args.rooms), s, d), s))
        else:
            for s in (args.seeds or [0]):
                jobs.append((d, s))
    rows: list[dict] = []
    abl_teacher = args.ablation_teacher or args.teacher[0]
    for views in args.views:
        for data, seed in jobs:
            case = prepare_case(data, seed, views, args.resolution, args.teacher, args.depth_prior, args.init,
                                max_init_points=args.max_init_points, depth_strength=args.depth_strength,
                                init_cache=Path(args.init_cache) if args.init_cache else None)
            print(f"[{case.name} K={views}] init {case.info['init_points']} points "
                  f"({json.dumps(case.info['init_report'])}); depth prior {case.info['depth_prior']} "
                  f"{case.info.get('depth_prior_stats')}; teachers "
                  f"{ {t: (v['teacher'], v['teacher_miou']) for t, v in case.info['teachers'].items()} }", flush=True)
            out = Path(args.out) / f"k{views}"
            if "3dgs" in args.mode:
                rows.append(run_mode(case, "3dgs", args.preset, overrides, out, args.threshold))
                _progress(rows[-1])
            if "aligngs" in args.mode:
                for t in args.teacher:
                    rows.append(run_mode(case, "aligngs", args.preset, overrides, out, args.threshold, teacher=t))
                    _progress(rows[-1])
            if args.ablation and (args.ablation_seeds is None or seed in args.ablation_seeds):
                for name in (args.ablation_terms or ABLATIONS):
                    rows.append(run_mode(case, "aligngs", args.preset, overrides, out, args.threshold,
                                         teacher=abl_teacher, ablation=name))
                    _progress(rows[-1])
            if args.json:  # keep what is done so far
                _write(args.json, rows)
    _tables(rows)
    if args.json:
        _write(args.json, rows)
    return 0


def _tables(rows: list[dict]) -> None:
    cols = ["mode", "teacher", "seed", "views", "depth_prior", "init", "fscore", "accuracy", "completion", "psnr",
            "ssim", "lpips", "miou", "teacher_miou", "wall_s", "peak_mem_mb", "oracle"]
    main_rows = [r for r in rows if not r["ablation"]]
    print_rows(main_rows, cols, "per seed (sparse protocol; timings on a shared, loaded machine: upper bounds)")
    print_rows(mean_rows(main_rows), ["data", "mode", "teacher", "n", "views", "depth_prior", "init", "fscore", "accuracy",
                                      "completion", "psnr", "ssim", "lpips", "miou", "teacher_miou", "wall_s",
                                      "peak_mem_mb", "oracle"], "mean over seeds")
    abl = ablation_rows(rows)
    if abl:
        print_rows(abl, ["variant", "teacher", "n", "fscore", "d_fscore", "psnr", "d_psnr", "miou", "d_miou"],
                   "ablation (AlignGS with one term off; mean over the ablation seeds)")
    lp = next((r.get("lpips_note") for r in rows if r.get("lpips_note")), None)
    if lp:
        print(f"\nLPIPS not computed: {lp}")


def _progress(r: dict) -> None:
    print(f"  {r['mode']:7s} {str(r['teacher']):12s} {r['ablation'] or '':20s} F {_fmt(r['fscore'])} "
          f"acc {_fmt(r['accuracy'])} comp {_fmt(r['completion'])} PSNR {_fmt(r['psnr'])} mIoU {_fmt(r['miou'])} "
          f"(teacher {_fmt(r['teacher_miou'])}) {r['wall_s']:.0f}s", flush=True)


def _write(path: str, rows: list[dict]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    main_rows = [r for r in rows if not r["ablation"]]
    doc = {"protocol": "sparse", "rows": rows, "mean": mean_rows(main_rows), "ablation": ablation_rows(rows)}
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(p)
