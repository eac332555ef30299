"""VGGT (facebookresearch/vggt): cameras + dense points feed-forward, no SfM -- the AlignGS initialisation.

The ``vggt`` package is optional (not on PyPI; ``pip install git+<vggt repository>``) and the checkpoint
``facebook/VGGT-1B`` is CC BY-NC 4.0 (non-commercial; a gated ``facebook/VGGT-1B-Commercial`` exists).
Reference settings (VGGT's demo_colmap.py, feed-forward): images 518 px wide ("crop" mode, height a multiple of 14),
keep points with depth_conf >= 5, cap at 100,000 at random, unproject the depth map with the predicted cameras,
principal point reset to the image centre, intrinsics rescaled to the original resolution, PINHOLE cameras.

Long image lists are processed in chunks that fit the GPU (``plan_chunks``; the expected memory per chunk is logged
from the H100 figures in ``MEMORY_GB``). VGGT puts the world frame at the first camera of its input with a
per-run scale, so every chunk starts with the same anchor frames and is mapped into chunk 0's frame by a Sim3
(Umeyama) between the anchors' unprojected depth points (``merge_chunks``).

Everything after the network (``adapt_outputs``, ``merge_chunks``) is plain numpy and unit-tested on arrays of the
documented shapes.
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
# Measured on an H100 (aggregator, bf16): frames -> GB of GPU memory (docs/method.md §1).
MEMORY_GB = ((20, 5.6), (50, 11.4), (100, 21.0))


@dataclass
class VGGTConfig:
    checkpoint: str = DEFAULT_CHECKPOINT
    width: int = 518
    conf_threshold: float = 5.0
    max_points: int = 100_000
    seed: int = 0
    device: str = "cuda"
    chunk_size: int | None = None  # frames per forward pass (None = as many as the free GPU memory allows)
    anchors: int = 2  # frames shared by every chunk (to merge chunks into one frame)


def expected_memory_gb(n_frames: int) -> float:
    """Linear inter/extrapolation of the measured aggregator memory."""
    xs, ys = zip(*MEMORY_GB)
    if n_frames <= xs[-1]:
        return float(np.interp(n_frames, xs, ys))
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return float(ys[-1] + slope * (n_frames - xs[-1]))


def frames_that_fit(free_gb: float, headroom: float = 0.85) -> int:
    """The largest frame count whose expected memory stays under ``headroom * free_gb`` (at least 2)."""
    n = 2
    while expected_memory_gb(n + 1) <= headroom * free_gb and n < 10_000:
        n += 1
    return n


def plan_chunks(n: int, chunk_size: int, anchors: int = 2) -> list[list[int]]:
    """Frame indices per forward pass: chunk 0 is the first ``chunk_size`` frames; every later chunk starts with the
    first ``anchors`` frames (shared, to merge the chunks) followed by ``chunk_size - anchors`` new ones."""
    if n <= chunk_size:
        return [list(range(n))]
    anchors = max(1, min(anchors, chunk_size - 1))
    chunks = [list(range(chunk_size))]
    step = chunk_size - anchors
    for start in range(chunk_size, n, step):
        chunks.append(list(range(anchors)) + list(range(start, min(start + step, n))))
    return chunks


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
    resized_hw: list[tuple[int, int]] | None = None,
) -> PoseResult:
    """Network outputs at the network resolution -> cameras at each frame's resolution + filtered coloured points.

    ``resized_hw``: per frame, the size the image was resized to before any centre crop (``preprocess``); it sets
    the intrinsics' scale back to the frame's size (default: the network size, i.e. no crop)."""
    S, h, w = depth_conf.shape
    extri, K = pose_encoding_to_extri_intri(pose_enc, (h, w))
    return adapt_cameras(extri, K, depth, depth_conf, images, frames, cfg, resized_hw)


def adapt_cameras(extri: np.ndarray, K: np.ndarray, depth: np.ndarray, depth_conf: np.ndarray, images: np.ndarray,
                  frames: list[Frame], cfg: VGGTConfig, resized_hw: list[tuple[int, int]] | None = None) -> PoseResult:
    """``adapt_outputs`` after the pose decoding: extrinsics [S,3,4] (camera-from-world), K [S,3,3]."""
    S, h, w = depth_conf.shape
    if len(frames) != S:
        raise ValueError(f"VGGT outputs hold {S} views but {len(frames)} frames were given")
    depth = np.asarray(depth).reshape(S, h, w)
    pts, cols, confs, cameras = [], [], [], {}
    for i, f in enumerate(frames):
        c2w = _c2w(extri[i])
        keep = (depth_conf[i] >= cfg.conf_threshold) & (depth[i] > 0)
        p, c = _unproject(extri[i], K[i], depth[i], keep)
        pts.append(p)
        cols.append(images[i][:, keep].T)
        confs.append(depth_conf[i][keep])
        # Rescale intrinsics to the frame's own resolution, principal point at the image centre (PINHOLE).
        W0, H0 = (f.image.shape[1], f.image.shape[0]) if f.image is not None else (w, h)
        rh, rw = resized_hw[i] if resized_hw is not None else (h, w)
        Ki = np.array([[K[i, 0, 0] * W0 / rw, 0, W0 / 2], [0, K[i, 1, 1] * H0 / rh, H0 / 2], [0, 0, 1]])
        cameras[f.name] = Camera(c2w, Ki, W0, H0)
    P = np.concatenate(pts).reshape(-1, 3).astype(np.float32)
    C = np.concatenate(cols).reshape(-1, 3).astype(np.float32)
    F = np.concatenate(confs).reshape(-1).astype(np.float32)
    kept = len(P)
    if len(P) > cfg.max_points:
        idx = np.random.default_rng(cfg.seed).choice(len(P), cfg.max_points, replace=False)
        P, C, F = P[idx], C[idx], F[idx]
    return PoseResult(cameras, P, C, F, "vggt", [],
                      {"registered": len(cameras), "total": len(frames), "points": len(P), "points_confident": kept,
                       "conf_threshold": cfg.conf_threshold, "checkpoint": cfg.checkpoint})


def _c2w(extri: np.ndarray) -> np.ndarray:
    w2c = np.eye(4)
    w2c[:3] = extri
    return np.linalg.inv(w2c)


def _unproject(extri: np.ndarray, K: np.ndarray, depth: np.ndarray, keep: np.ndarray):
    """World points of the pixels ``keep`` of one depth map (pixel centres at integer coordinates)."""
    v, u = np.nonzero(keep)
    z = depth[v, u].astype(np.float64)
    pc = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], 1)
    c2w = _c2w(extri)
    return pc @ c2w[:3, :3].T + c2w[:3, 3], (v, u)


def merge_chunks(chunks: list[list[int]], outputs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                 n: int, conf_threshold: float, anchors: int):
    """Per-chunk (extrinsics [s,3,4], K [s,3,3], depth [s,h,w], conf [s,h,w]) -> the same for all ``n`` frames in
    chunk 0's frame and scale. Each later chunk's first ``anchors`` views are frames of chunk 0; the Sim3 between
    their unprojected confident depth points (same pixels in both runs) maps the chunk over (depth scales by s)."""
    from .align import umeyama

    e0, k0, d0, c0 = outputs[0]
    h, w = d0.shape[1:]
    E, Kall = np.zeros((n, 3, 4)), np.zeros((n, 3, 3))
    D, C = np.zeros((n, h, w), np.float32), np.zeros((n, h, w), np.float32)
    for idx, (e, k, d, c) in zip(chunks, outputs):
        if idx is chunks[0]:
            sim = None
        else:
            src, dst = [], []
            for a in range(anchors):
                keep = (c[a] >= conf_threshold) & (c0[idx[a]] >= conf_threshold) & (d[a] > 0) & (d0[idx[a]] > 0)
                src.append(_unproject(e[a], k[a], d[a], keep)[0])
                dst.append(_unproject(e0[idx[a]], k0[idx[a]], d0[idx[a]], keep)[0])
            src, dst = np.concatenate(src), np.concatenate(dst)
            if len(src) < 3:
                raise ValueError("VGGT chunks share too few confident anchor pixels to be merged: "
                                 "lower conf_threshold or use larger chunks")
            sim = umeyama(src, dst)
        for j, fi in enumerate(idx):
            if sim is not None and j < anchors:
                continue  # anchors keep chunk 0's prediction
            if sim is None:
                E[fi], D[fi] = e[j], d[j]
            else:
                c2w = sim.apply_c2w(_c2w(e[j]))
                E[fi] = np.linalg.inv(c2w)[:3]
                D[fi] = d[j] * sim.s
            Kall[fi], C[fi] = k[j], c[j]
    return E, Kall, D, C


def preprocess(frames: list[Frame], width: int = 518) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """VGGT "crop" mode: resize to ``width`` px wide, height rounded to a multiple of 14, centre-crop taller images
    to ``width``. Returns ([S,3,h,w] float32 0..1, per frame the resized (h, w) before the crop); all frames must
    share one size."""
    from PIL import Image

    out, resized = [], []
    for f in frames:
        if f.image is None:
            raise ValueError(f"frame {f.name!r} has no image loaded")
        H0, W0 = f.image.shape[:2]
        h = int(round(H0 * width / W0 / 14)) * 14
        img = Image.fromarray((np.clip(f.image, 0, 1) * 255).astype(np.uint8)).resize((width, h), Image.BICUBIC)
        a = np.asarray(img, np.float32) / 255.0
        resized.append((h, width))
        if h > width:
            top = (h - width) // 2
            a = a[top:top + width]
        out.append(a.transpose(2, 0, 1))
    shapes = {a.shape for a in out}
    if len(shapes) != 1:
        raise ValueError(f"VGGT needs images of one size; got {sorted(shapes)}")
    return np.stack(out), resized


def run_vggt(frames: list[Frame], cfg: VGGTConfig | None = None, should_cancel: CancelFn | None = None) -> PoseResult:
    """Cameras + confident dense points for all frames (see the module doc). Raises ``MethodUnavailable`` with what
    to do when the package, the checkpoint or a GPU is missing."""
    from . import MethodUnavailable

    cfg = cfg or VGGTConfig()
    try:
        import torch
        from vggt.models.vggt import VGGT
    except ImportError as e:
        raise MethodUnavailable("the optional 'vggt' package is not installed (it is not on PyPI: "
                                "pip install 'vggt @ git+https://github.com/facebookresearch/vggt'); "
                                "or use poses='sfm' (CPU) or known poses") from e
    if len(frames) < 2:
        raise MethodUnavailable(f"VGGT needs at least 2 images, got {len(frames)}")
    cuda = cfg.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise MethodUnavailable("VGGT-1B needs a CUDA GPU (about 5.6 GB for 20 views, 21 GB for 100)")
    if cuda:
        free = torch.cuda.mem_get_info()[0] / 1e9
        chunk = cfg.chunk_size or frames_that_fit(free)
    else:
        free, chunk = float("nan"), cfg.chunk_size or len(frames)
    chunks = plan_chunks(len(frames), max(chunk, 2), cfg.anchors)
    log.info("VGGT on %d frames in %d chunk(s) of <= %d: expect about %.1f GB of GPU memory per chunk (%.1f GB free)",
             len(frames), len(chunks), max(len(c) for c in chunks), expected_memory_gb(max(len(c) for c in chunks)),
             free)
    if "VGGT-1B" in cfg.checkpoint and "Commercial" not in cfg.checkpoint:
        log.warning("%s is licensed CC BY-NC 4.0 (non-commercial use only; facebook/VGGT-1B-Commercial is the "
                    "gated commercial checkpoint)", cfg.checkpoint)
    try:
        model = VGGT.from_pretrained(cfg.checkpoint).to(cfg.device).eval()
    except OSError as e:
        raise MethodUnavailable(f"VGGT checkpoint {cfg.checkpoint!r} not found (an HF id in the local cache or a "
                                "local folder): download it on a machine with internet, or use poses='sfm'") from e
    check_cancel(should_cancel)
    images, resized = preprocess(frames, cfg.width)
    dtype = torch.bfloat16 if (cuda and torch.cuda.get_device_capability()[0] >= 8) else torch.float16
    outputs = []
    for idx in chunks:
        check_cancel(should_cancel)
        x = torch.from_numpy(images[idx]).to(cfg.device)[None]
        with torch.no_grad(), torch.autocast("cuda" if cuda else "cpu", dtype=dtype, enabled=cuda):
            pred = model(x)
        to_np = lambda t: t[0].float().cpu().numpy()
        e, k = pose_encoding_to_extri_intri(to_np(pred["pose_enc"]), images.shape[2:])
        d = to_np(pred["depth"]).reshape(len(idx), *images.shape[2:])
        outputs.append((e, k, d, to_np(pred["depth_conf"])))
        del pred, x
    E, K, D, C = merge_chunks(chunks, outputs, len(frames), cfg.conf_threshold, max(1, min(cfg.anchors, len(chunks[0]) - 1))) \
        if len(chunks) > 1 else outputs[0]
    result = adapt_cameras(E, K, D, C, images, frames, cfg, resized)
    result.report["chunks"] = len(chunks)
    return result
