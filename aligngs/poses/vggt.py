"""VGGT (facebookresearch/vggt): cameras + dense points feed-forward, no SfM -- the AlignGS initialisation.

The ``vggt`` package is optional (not on PyPI; ``pip install git+<vggt repository>``) and the checkpoint
``facebook/VGGT-1B`` is CC BY-NC 4.0 (non-commercial; a gated ``facebook/VGGT-1B-Commercial`` exists).
Reference settings (VGGT's demo_colmap.py, feed-forward): images 518 px wide ("crop" mode, height a multiple of 14),
keep points with depth_conf >= 5, cap at 100,000 at random, unproject the depth map with the predicted cameras,
principal point reset to the image centre, intrinsics rescaled to the original resolution, PINHOLE cameras.

Everything after the network (``adapt_outputs``) is plain numpy and unit-tested on arrays of the documented shapes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..data.types import Camera, Frame
from ..progress import CancelFn, check_cancel
from .sfm import PoseResult

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "facebook/VGGT-1B"
# Measured on an H100 (aggregator, bf16): frames -> GB of GPU memory (method notes §1).
MEMORY_GB = ((20, 5.6), (50, 11.4), (100, 21.0))


@dataclass
class VGGTConfig:
    checkpoint: str = DEFAULT_CHECKPOINT
    width: int = 518
    conf_threshold: float = 5.0
    max_points: int = 100_000
    seed: int = 0
    device: str = "cuda"


def expected_memory_gb(n_frames: int) -> float:
    """Linear inter/extrapolation of the measured aggregator memory."""
    xs, ys = zip(*MEMORY_GB)
    if n_frames <= xs[-1]:
        return float(np.interp(n_frames, xs, ys))
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return float(ys[-1] + slope * (n_frames - xs[-1]))


def quat_xyzw_to_mat(q: np.ndarray) -> np.ndarray:
    """Scalar-last unit quaternions [...,4] -> rotation matrices [...,3,3] (VGGT's convention)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], -1).reshape(q.shape[:-1] + (3, 3))


def pose_encoding_to_extri_intri(pose_enc: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``absT_quaR_FoV`` [S,9] (T, quaternion xyzw, fov_h, fov_w) -> camera-from-world [S,3,4] and K [S,3,3]."""
    pose_enc = np.asarray(pose_enc, np.float64)
    T, quat, fov_h, fov_w = pose_enc[..., :3], pose_enc[..., 3:7], pose_enc[..., 7], pose_enc[..., 8]
    extri = np.concatenate([quat_xyzw_to_mat(quat), T[..., None]], -1)
    H, W = hw
    K = np.zeros(pose_enc.shape[:-1] + (3, 3))
    K[..., 0, 0] = (W / 2) / np.tan(fov_w / 2)
    K[..., 1, 1] = (H / 2) / np.tan(fov_h / 2)
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = W / 2, H / 2, 1.0
    return extri, K


def adapt_outputs(
    pose_enc: np.ndarray,  # [S,9]
    depth: np.ndarray,  # [S,h,w,1] or [S,h,w]
    depth_conf: np.ndarray,  # [S,h,w]
    images: np.ndarray,  # [S,3,h,w] 0..1 (the network input)
    frames: list[Frame],
    cfg: VGGTConfig,
) -> PoseResult:
    """Network outputs at the network resolution -> cameras at each frame's resolution + filtered coloured points."""
    S, h, w = depth_conf.shape
    depth = depth.reshape(S, h, w)
    extri, K = pose_encoding_to_extri_intri(pose_enc, (h, w))
    pts, cols, confs, cameras = [], [], [], {}
    v, u = np.mgrid[0:h, 0:w]
    for i, f in enumerate(frames):
        w2c = np.eye(4)
        w2c[:3] = extri[i]
        c2w = np.linalg.inv(w2c)
        keep = (depth_conf[i] >= cfg.conf_threshold) & (depth[i] > 0)
        z = depth[i][keep]
        x = (u[keep] - K[i, 0, 2]) / K[i, 0, 0] * z
        y = (v[keep] - K[i, 1, 2]) / K[i, 1, 1] * z
        pts.append(np.stack([x, y, z], 1) @ c2w[:3, :3].T + c2w[:3, 3])
        cols.append(images[i][:, keep].T)
        confs.append(depth_conf[i][keep])
        # Rescale intrinsics to the frame's own resolution, principal point at the image centre (PINHOLE).
        W0, H0 = (f.image.shape[1], f.image.shape[0]) if f.image is not None else (w, h)
        Ki = np.array([[K[i, 0, 0] * W0 / w, 0, W0 / 2], [0, K[i, 1, 1] * H0 / h, H0 / 2], [0, 0, 1]])
        cameras[f.name] = Camera(c2w, Ki, W0, H0)
    P, C, F = (np.concatenate(a) if a else np.zeros((0,)) for a in (pts, cols, confs))
    P = P.reshape(-1, 3).astype(np.float32)
    C = C.reshape(-1, 3).astype(np.float32)
    F = F.reshape(-1).astype(np.float32)
    if len(P) > cfg.max_points:
        idx = np.random.default_rng(cfg.seed).choice(len(P), cfg.max_points, replace=False)
        P, C, F = P[idx], C[idx], F[idx]
    return PoseResult(cameras, P, C, F, "vggt", [],
                      {"registered": len(cameras), "total": len(frames), "points": len(P),
                       "conf_threshold": cfg.conf_threshold, "checkpoint": cfg.checkpoint})


def preprocess(frames: list[Frame], width: int = 518) -> np.ndarray:
    """VGGT "crop" mode: resize to ``width`` px wide, height rounded to a multiple of 14, centre-crop taller images
    to ``width``. Returns [S,3,h,w] float32 0..1 (all frames must share one size)."""
    from PIL import Image

    out = []
    for f in frames:
        H0, W0 = f.image.shape[:2]
        h = int(round(H0 * width / W0 / 14)) * 14
        img = Image.fromarray((np.clip(f.image, 0, 1) * 255).astype(np.uint8)).resize((width, h), Image.BICUBIC)
        a = np.asarray(img, np.float32) / 255.0
        if h > width:
            top = (h - width) // 2
            a = a[top:top + width]
        out.append(a.transpose(2, 0, 1))
    shapes = {a.shape for a in out}
    if len(shapes) != 1:
        raise ValueError(f"VGGT needs images of one size; got {sorted(shapes)}")
    return np.stack(out)


def run_vggt(frames: list[Frame], cfg: VGGTConfig | None = None, should_cancel: CancelFn | None = None) -> PoseResult:
    from . import MethodUnavailable

    cfg = cfg or VGGTConfig()
    try:
        import torch
        from vggt.models.vggt import VGGT
    except ImportError as e:
        raise MethodUnavailable("the optional 'vggt' package is not installed "
                                "(pip install 'vggt @ git+<facebookresearch/vggt repository>')") from e
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise MethodUnavailable("VGGT-1B needs a CUDA GPU (about 5.6 GB for 20 views, 21 GB for 100)")
    need = expected_memory_gb(len(frames))
    if cfg.device.startswith("cuda"):
        free = torch.cuda.mem_get_info()[0] / 1e9
        log.info("VGGT on %d frames: expect about %.1f GB of GPU memory (%.1f GB free)", len(frames), need, free)
        if need > free:
            raise MethodUnavailable(f"VGGT on {len(frames)} frames needs about {need:.1f} GB, {free:.1f} GB free: "
                                    "use fewer images or SfM")
    if "VGGT-1B" in cfg.checkpoint and "Commercial" not in cfg.checkpoint:
        log.warning("%s is licensed CC BY-NC 4.0 (non-commercial use only)", cfg.checkpoint)
    try:
        model = VGGT.from_pretrained(cfg.checkpoint).to(cfg.device).eval()
    except OSError as e:
        raise MethodUnavailable(f"VGGT checkpoint {cfg.checkpoint!r} not found locally: run "
                                f"'aligngs models download {cfg.checkpoint}' on a machine with internet") from e
    check_cancel(should_cancel)
    images = preprocess(frames, cfg.width)
    x = torch.from_numpy(images).to(cfg.device)[None]
    dtype = torch.bfloat16 if torch.cuda.get_device_capability()[0] >= 8 else torch.float16
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        pred = model(x)
    to_np = lambda t: t[0].float().cpu().numpy()
    return adapt_outputs(to_np(pred["pose_enc"]), to_np(pred["depth"]), to_np(pred["depth_conf"]), images, frames, cfg)
