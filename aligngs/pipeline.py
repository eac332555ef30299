"""The whole reconstruction, one call: images -> poses -> priors -> init -> train -> extract -> export.

``reconstruct`` is what the CLI, the benchmark and the backend worker call. It writes into ``out_dir``:
``result/`` (manifest + arrays for the backend / add-on), ``gaussians.ply`` (3DGS standard), ``mesh.ply``
(vertex colours + class_id), ``semantic_points.ply``, ``classes/`` (per-class and per-instance PLYs),
``classes.json``, ``cameras.json``, ``checkpoint.pt`` and ``report.json`` (settings, timings, counts, metrics).
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .config import PipelineConfig
from .data.types import Frame, Scene
from .progress import CancelFn, Progress, ProgressFn, check_cancel

log = logging.getLogger(__name__)


class StageTimer:
    def __init__(self, progress: ProgressFn | None, should_cancel: CancelFn | None):
        self.timings: dict[str, float] = {}
        self.progress, self.should_cancel = progress, should_cancel

    @contextmanager
    def stage(self, name: str, message: str = ""):
        check_cancel(self.should_cancel)
        if self.progress:
            self.progress(Progress(name, 0.0, message or name))
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
        if self.progress:
            self.progress(Progress(name, 1.0, message or name))


def load_input(input_path: Path, cfg: PipelineConfig) -> Scene:
    from .data.loaders import load_scene

    scene = load_scene(Path(input_path), cfg.data)
    if cfg.data.poses in ("sfm", "vggt") or not scene.has_poses:
        from .poses import estimate_poses

        scene = estimate_poses(scene, cfg.data.poses)
    return scene


def with_world_up(progress: ProgressFn | None, up: np.ndarray) -> ProgressFn | None:
    """The progress callback with ``up`` stamped on every live point preview (viewers orient it like the result)."""
    if progress is None:
        return None
    up_t = tuple(float(v) for v in up)

    def send(p: Progress) -> None:
        if p.points is not None and p.points.up is None:
            p.points.up = up_t
        progress(p)

    return send


def world_up(scene: Scene) -> np.ndarray:
    """The source's declared up vector, else the mean camera up (-y of OpenCV cameras)."""
    if scene.up is not None:
        up = np.asarray(scene.up, np.float64)
    else:
        up = -np.mean([f.camera.c2w[:3, 1] for f in scene.frames if f.camera is not None], axis=0)
    n = np.linalg.norm(up)
    return up / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


def reconstruct(
    input_path: "str | Path | Scene",
    out_dir: str | Path,
    config: PipelineConfig | None = None,
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    reference_points: np.ndarray | None = None,
    mesh_threshold: float = 0.05,
    eval_initial: bool = False,
) -> dict:
    """Run the full pipeline; returns the report (also written to ``out_dir/report.json``).

    ``input_path`` is a folder (any format ``load_scene`` detects) or an already loaded ``Scene``.
    ``reference_points`` (a dense sample of a reference surface) adds mesh accuracy/completion/F-score at
    ``mesh_threshold``; ``eval_initial`` scores the untrained (iteration-0) model on the test views too.
    """
    from .data.split import split_frames
    from .export.report import write_json_atomic
    from .extract.extent import scene_extent
    from .model.gaussians import GaussianModel
    from .model.init import initial_points
    from .train.trainer import Trainer, resolve_device

    cfg = config or PipelineConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timer = StageTimer(progress, should_cancel)
    t_start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    semantic = cfg.mode == "aligngs" and cfg.train.semantics.enabled

    with timer.stage("load", f"loading {input_path}"):
        scene = input_path if isinstance(input_path, Scene) else load_input(Path(input_path), cfg)
        train, test = split_frames(scene, cfg.data)
        cams = [f.camera for f in scene.frames]
        extent = scene_extent(cams, scene.points)
    log.info("%d train / %d test views, extent %.3f, device %s", len(train), len(test), extent, device)

    priors = None
    if cfg.mode == "aligngs":
        with timer.stage("priors", "teachers (cached)"):
            priors = compute_view_priors(train, cfg, out, device, should_cancel)

    with timer.stage("init"):
        if cfg.data.dense_init and scene.meta.get("point_observations") is not None:
            from .model.dense_init import densify_scene

            scene = densify_scene(scene, train, priors, seed=cfg.train.seed)
        pts, cols, init_source = initial_points(scene, train, cfg.train.max_init_points, cfg.train.seed, extent)
        sem_dim = 0
        decoder = None
        if semantic:
            sc = cfg.train.semantics
            sem_dim = sc.compact_dim or sc.num_classes
            if sc.compact_dim:
                from .model.semantic_decoder import CompactSemanticDecoder

                decoder = CompactSemanticDecoder(sc.compact_dim, sc.num_classes).to(device)
        model = GaussianModel.from_points(pts, cols, sh_degree=cfg.train.sh_degree, init_opacity=cfg.train.init_opacity,
                                          semantic_dim=sem_dim, device=device, orientation=cfg.train.init_orientation)

    from .extract.views import evaluate_views, extract_outputs

    initial_metrics = evaluate_views(model, test, cfg, decoder=decoder) if (eval_initial and test) else None

    terms, normal_source = [], None
    if cfg.mode == "aligngs":
        from .train.terms import aligngs_terms, gaussian_camera_normals

        loss_cfg = cfg.train.loss
        if not semantic:
            from dataclasses import replace

            loss_cfg = replace(loss_cfg, semantic_kl=0.0, semantic_ce=0.0)
        terms = aligngs_terms(loss_cfg, cfg.train.semantics, decoder)
        normal_source = gaussian_camera_normals
    # Gaussian Grouping identities (adds model.params["identities"]) and SSR-2D virtual views (issue 13)
    from .train.objects import ObjectsSetup, setup_objects

    objects = setup_objects(cfg, model, train, priors, scene, extent, device, decoder,
                            resolve_teachers(train, cfg)[0]) if cfg.mode == "aligngs" else ObjectsSetup()
    terms = list(terms) + objects.terms

    with timer.stage("train"):
        trainer = Trainer(model, train, cfg.train, extent=extent, priors=priors, terms=terms, normal_source=normal_source,
                          extra_modules=([decoder] if decoder is not None else []) + objects.modules,
                          progress=with_world_up(progress, world_up(scene)), should_cancel=should_cancel)
        trainer.train(checkpoint_path=out / "checkpoint.pt")

    with timer.stage("mesh", "TSDF fusion of rendered depth"):
        outputs = extract_outputs(model, train, cfg, extent, decoder=decoder, device=device, should_cancel=should_cancel,
                                  identity=objects.classifier)

    with timer.stage("export"):
        from .export.writer import write_all

        files = write_all(out, scene, model, outputs, cfg, up=world_up(scene))

    metrics = evaluate_views(model, test, cfg, decoder=decoder)
    if initial_metrics is not None:
        metrics["psnr_initial"] = initial_metrics["psnr"]
    if reference_points is not None and outputs.mesh is not None:
        from .metrics.mesh import mesh_metrics, sample_mesh

        pred = sample_mesh(outputs.mesh, 200_000, seed=cfg.train.seed)
        metrics["mesh"] = mesh_metrics(pred, reference_points, threshold=mesh_threshold)

    report = {
        "input": str(scene.root if isinstance(input_path, Scene) else input_path),
        "mode": cfg.mode,
        "config": cfg.to_dict(),
        "device": str(device),
        "views": {"train": [f.name for f in train], "test": [f.name for f in test]},
        "init": {"source": init_source, "points": int(len(pts)), "poses": scene.meta.get("poses"),
                 "dense_align": scene.meta.get("dense_align")},
        "counts": {
            "gaussians": model.n,
            "mesh_vertices": 0 if outputs.mesh is None else int(len(outputs.mesh.vertices)),
            "mesh_faces": 0 if outputs.mesh is None else int(len(outputs.mesh.faces)),
            "classes": len(outputs.splits),
        },
        "objects": objects.info,
        "timings": timer.timings | {"total": time.perf_counter() - t_start},
        "metrics": metrics,
        "final_losses": trainer.history[-1] if trainer.history else {},
        "files": files,
    }
    write_json_atomic(out / "report.json", report)
    return report


def resolve_teachers(frames: list[Frame], cfg: PipelineConfig) -> tuple[str, str]:
    """The semantic and depth teacher names a run uses: ``auto`` picks what the input carries (label maps ->
    ``provided``, sensor depth -> ``sensor``) and the default network teacher otherwise (``eomt``, ``dpt``)."""
    sc = cfg.train.semantics
    sem = sc.teacher if sc.enabled else "none"
    if sem == "auto":
        sem = "provided" if frames and all(f.labels is not None for f in frames) else "eomt"
    depth = sc.depth_teacher if cfg.train.loss.depth_pearson > 0 else "none"
    if depth == "auto":
        depth = "sensor" if frames and all(f.depth is not None for f in frames) else "dpt"
    return sem, depth


def compute_view_priors(frames: list[Frame], cfg: PipelineConfig, out: Path, device, should_cancel: CancelFn | None):
    """Teacher scores / labels / depth priors per training view, through the on-disk cache."""
    from .priors.cache import PriorCache, compute_priors
    from .priors.teachers import make_depth_teacher, make_semantic_teacher

    sc = cfg.train.semantics
    sem_name, depth_name = resolve_teachers(frames, cfg)
    log.info("teachers: semantic %s, depth %s", sem_name, depth_name)
    sem_teacher = make_semantic_teacher(sem_name, sc.teacher_model, str(device))
    depth_teacher = make_depth_teacher(depth_name, sc.depth_model, str(device))
    cache = PriorCache(out / "priors")
    return compute_priors(frames, sem_teacher, depth_teacher, cache, should_cancel=should_cancel)
