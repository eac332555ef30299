"""After training: render the views, fuse the mesh, label it, build the semantic point cloud and class splits,
and score test views."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import PipelineConfig
from ..data.types import Frame, TriMesh
from ..model.gaussians import GaussianModel, sh_to_rgb
from ..progress import CancelFn, check_cancel
from ..render import WorkerPool, default_workers
from ..render.view import ViewTensors, render, render_semantics

log = logging.getLogger(__name__)


@dataclass
class ViewRender:
    rgb: np.ndarray  # [H,W,3] float32
    depth: np.ndarray  # [H,W] float32: MeshConfig.depth (median: 0 where T never reaches 0.5; expected: 0 where alpha < 0.5)
    alpha: np.ndarray  # [H,W]
    labels: np.ndarray | None = None  # [H,W] int32
    confidence: np.ndarray | None = None  # [H,W] float32


@dataclass
class Outputs:
    mesh: TriMesh | None
    points: dict[str, np.ndarray]  # positions, colors (u8), class_id, confidence
    splits: list = field(default_factory=list)  # aligngs.extract.splits.ClassSplit
    gaussian_class: np.ndarray | None = None
    gaussian_conf: np.ndarray | None = None
    gaussian_object: np.ndarray | None = None  # identity object id per Gaussian (aligngs.extract.instances)


@torch.no_grad()
def render_view(model: GaussianModel, frame: Frame, cfg: PipelineConfig, decoder=None,
                alpha_min: float | None = None, workers=None) -> ViewRender:
    """``workers``: the CPU rasterizer's threads (``rasterization``'s ``cpu_workers``)."""
    alpha_min = cfg.mesh.alpha_min if alpha_min is None else alpha_min
    view = ViewTensors.of(frame.camera, model.device)
    bg = torch.tensor(cfg.train.background, dtype=torch.float32, device=model.device)
    out, _ = render(model, view, model.sh_degree, bg, median_depth=cfg.mesh.depth == "median", workers=workers)
    rgb = out["rgb"].clamp(0, 1).cpu().numpy()
    alpha = out["alpha"].cpu().numpy()
    if "median_depth" in out:  # the surface where the transmittance reaches 0.5 (0 where it never does)
        depth = out["median_depth"].cpu().numpy().astype(np.float32)
    else:
        depth = out["depth"].cpu().numpy()
        depth = np.where(alpha >= alpha_min, depth, 0.0).astype(np.float32)
    vr = ViewRender(rgb, depth, alpha)
    if "semantics" in model.params:
        sem = render_semantics(model, view, workers)
        if decoder is not None:
            sem = decoder(sem)
        prob = torch.softmax(sem, dim=0)
        conf, lab = prob.max(dim=0)
        lab = lab.int().cpu().numpy()
        lab[alpha < alpha_min] = -1
        vr.labels, vr.confidence = lab, conf.cpu().numpy()
    return vr


def extract_outputs(model: GaussianModel, frames: list[Frame], cfg: PipelineConfig, extent: float, *, decoder=None,
                    device=None, should_cancel: CancelFn | None = None, identity=None) -> Outputs:
    from .tsdf import fuse_tsdf
    from . import labeling, splits

    renders = []
    with WorkerPool(default_workers() if torch.device(model.device).type == "cpu" else 1) as workers:
        for f in frames:
            check_cancel(should_cancel)
            renders.append(render_view(model, f, cfg, decoder, workers=workers))
    cams = [f.camera for f in frames]
    mesh = None
    if cfg.mesh.enabled:
        mesh = fuse_tsdf([r.depth for r in renders], [r.rgb for r in renders], cams, cfg.mesh, extent,
                         device="cuda:0" if str(model.device).startswith("cuda") else "cpu")
    # Semantic point cloud from the Gaussians (opaque ones), coloured by their DC colour.
    p = model.params
    opac = torch.sigmoid(p["opacities"]).detach().cpu().numpy()
    keep = opac > 0.1
    pos = p["means"].detach().cpu().numpy()[keep].astype(np.float32)
    rgb = (np.clip(sh_to_rgb(p["sh0"][:, 0]).detach().cpu().numpy()[keep], 0, 1) * 255).round().astype(np.uint8)
    points = {"positions": pos, "colors": rgb}
    out = Outputs(mesh, points)
    if "semantics" in p:
        logits = p["semantics"].detach()
        if decoder is not None:
            with torch.no_grad():
                logits = decoder(logits.T[:, :, None]).squeeze(-1).T
        g_cls, g_conf = labeling.gaussian_classes(logits.cpu().numpy())
        out.gaussian_class, out.gaussian_conf = g_cls, g_conf
        points["class_id"], points["confidence"] = g_cls[keep], g_conf[keep]
        if mesh is not None:
            depth_tol = max(0.02 * extent, 1e-3)
            cls, conf = labeling.label_vertices_by_views(
                mesh.vertices, cams, [r.labels for r in renders], [r.depth for r in renders],
                [r.confidence for r in renders], depth_tol)
            mesh.vertex_attrs["class_id"] = cls.astype(np.int32)
            mesh.vertex_attrs["confidence"] = conf.astype(np.float32)
        if identity is not None and "identities" in p:  # instances from the learned identities (issue 13)
            from .instances import object_splits

            out.splits, out.gaussian_object = object_splits(model, identity, frames, renders, mesh, points, keep,
                                                            cfg.mesh.min_instance_points, extent)
        else:
            out.splits = splits.split_by_class(mesh, points, min_instance_points=cfg.mesh.min_instance_points)
    return out


@torch.no_grad()
def evaluate_views(model: GaussianModel, frames: list[Frame], cfg: PipelineConfig, decoder=None) -> dict:
    """PSNR / SSIM / LPIPS (VGG) on held-out views, and semantic mIoU when the views carry labels.

    LPIPS needs its weights on disk (:mod:`aligngs.metrics.lpips_vgg`); without them ``lpips`` is None and
    ``lpips_note`` says which file is missing (never a placeholder number)."""
    from ..metrics.image import psnr, ssim
    from ..metrics.lpips_vgg import LPIPSUnavailable, load_lpips

    from ..metrics.semantic import miou

    if not frames:
        return {}
    try:
        lp_model, lp_note = load_lpips(), None
    except LPIPSUnavailable as e:
        lp_model, lp_note = None, str(e)
    ps, ss, lp, preds, gts = [], [], [], [], []
    for f in frames:
        vr = render_view(model, f, cfg, decoder)
        pred = torch.from_numpy(vr.rgb)
        gt = torch.from_numpy(np.ascontiguousarray(f.image)).float()
        ps.append(float(psnr(pred, gt)))
        ss.append(float(ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])))
        if lp_model is not None:
            lp.append(float(lp_model(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])[0]))
        if vr.labels is not None and f.labels is not None:
            preds.append(vr.labels.ravel())
            gts.append(f.labels.ravel())
    res = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "per_view_psnr": ps,
           "lpips": float(np.mean(lp)) if lp else None}
    if lp_note:
        res["lpips_note"] = lp_note
    if preds:
        m, per_class = miou(np.concatenate(preds), np.concatenate(gts), cfg.train.semantics.num_classes)
        res["miou"] = float(m)
        res["per_class_iou"] = per_class
    return res
