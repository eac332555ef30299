"""CPU rasterizer benchmark: forward + backward time of ``aligngs.render.rasterization`` vs the
brute-force reference on a room-like scene.

    python -m benchmarks raster [--n 20000 --width 160 --height 120 --features 16 --repeats 7
                                    --sh-degree 0 --mode RGB+ED --skip-reference --json PATH]

Scene: Gaussians on the walls, floor, ceiling and a few boxes of a 5 x 3 x 6 m room seen from
inside (OpenCV camera at the origin looking +z), plus a sprinkle of free-floating ones; log-normal
scales (flattened on surfaces), mixed opacities. Colours are 3 RGB + ``--features`` extra channels
(or SH with ``--sh-degree``); ``--mode RGB+ED`` appends expected depth. Timings are medians over
``--repeats`` runs after one warm-up; the load average is printed because the machine is shared.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch

from aligngs.render import rasterization
from aligngs.render.reference import rasterization_reference


@dataclass
class RasterScene:
    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    width: int
    height: int
    sh_degree: Optional[int]


def make_room_scene(
    n: int, width: int, height: int, features: int, sh_degree: Optional[int] = None, seed: int = 0
) -> RasterScene:
    """Room-like scene: most Gaussians lie on the room's surfaces, the rest float inside."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    hx, hy, z0, z1 = 2.5, 1.5, 0.5, 6.0
    n_surf = int(n * 0.85)
    n_box = int(n * 0.10)
    n_free = n - n_surf - n_box
    # surfaces: back wall, floor, ceiling, left/right walls (weights ~ visible area)
    which = torch.multinomial(torch.tensor([0.3, 0.2, 0.15, 0.175, 0.175]), n_surf, True, generator=g)
    u, v = rand(n_surf), rand(n_surf)
    x = (u * 2 - 1) * hx
    y = (v * 2 - 1) * hy
    z = z0 + rand(n_surf) * (z1 - z0)
    pts = torch.stack([x, y, torch.full_like(x, z1)], -1)
    normal_axis = torch.full((n_surf,), 2, dtype=torch.long)
    floor = which == 1
    pts[floor] = torch.stack([x[floor], torch.full_like(x[floor], hy), z[floor]], -1)
    normal_axis[floor] = 1
    ceil = which == 2
    pts[ceil] = torch.stack([x[ceil], torch.full_like(x[ceil], -hy), z[ceil]], -1)
    normal_axis[ceil] = 1
    for k, sx in ((3, -hx), (4, hx)):
        m = which == k
        pts[m] = torch.stack([torch.full_like(x[m], sx), y[m], z[m]], -1)
        normal_axis[m] = 0
    # boxes (furniture): points on the faces of 4 boxes standing on the floor
    centers = torch.tensor([[-1.5, 1.0, 3.0], [1.2, 1.1, 4.0], [0.0, 1.2, 2.5], [1.8, 0.9, 5.2]])
    sizes = torch.tensor([[0.8, 0.5, 0.8], [1.0, 0.4, 0.6], [0.6, 0.3, 0.6], [0.5, 0.6, 0.5]])
    b = torch.randint(0, 4, (n_box,), generator=g)
    face_axis = torch.randint(0, 3, (n_box,), generator=g)
    p = (rand(n_box, 3) * 2 - 1)
    sign = torch.where(rand(n_box) < 0.5, -1.0, 1.0)
    p[torch.arange(n_box), face_axis] = sign
    box_pts = centers[b] + p * sizes[b]
    free_pts = torch.stack(
        [(rand(n_free) * 2 - 1) * hx, (rand(n_free) * 2 - 1) * hy, z0 + rand(n_free) * (z1 - z0)], -1
    )
    means = torch.cat([pts, box_pts, free_pts])
    axis = torch.cat([normal_axis, face_axis, torch.randint(0, 3, (n_free,), generator=g)])

    # world-space scales: log-normal around 4 cm, flattened along the surface normal
    scales = 0.04 * torch.exp(0.6 * torch.randn(n, 3, generator=g))
    flat = torch.ones(n, 3)
    flat[torch.arange(n_surf + n_box), axis[: n_surf + n_box]] = 0.15
    scales = scales * flat
    quats = torch.randn(n, 4, generator=g) * torch.tensor([1.0, 0.15, 0.15, 0.15])
    opacities = torch.where(rand(n) < 0.5, 0.6 + 0.4 * rand(n), 0.05 + 0.55 * rand(n))

    if sh_degree is None:
        colors = rand(n, 3 + features)
    else:
        k = (sh_degree + 1) ** 2
        colors = 0.3 * torch.randn(n, k, 3, generator=g)
        colors[:, 0] = (rand(n, 3) - 0.5) / 0.2820947917738781

    f = 0.85 * width  # ~60 degree horizontal field of view
    Ks = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])[None]
    viewmats = torch.eye(4)[None]
    viewmats[0, 2, 3] = 0.6  # step back a little so the nearest surfaces are ~1 m away
    return RasterScene(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree)


def _fwd_bwd(fn: Callable, scene: RasterScene, mode: str, detach_geometry: bool = False) -> float:
    params = [t.detach().clone().requires_grad_(not detach_geometry or i == 4)
              for i, t in enumerate((scene.means, scene.quats, scene.scales, scene.opacities, scene.colors))]
    t0 = time.perf_counter()
    renders, alphas, _ = fn(
        *params, scene.viewmats, scene.Ks, scene.width, scene.height,
        sh_degree=scene.sh_degree, render_mode=mode,
    )
    loss = renders.square().mean() + alphas.mean()
    loss.backward()
    return time.perf_counter() - t0


def _cpu_jiffies() -> tuple:
    """(busy jiffies of all CPUs, total jiffies of all CPUs, this process's jiffies)."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(vals) - idle, sum(vals), int(fields[11]) + int(fields[12])


def _others_cpu_fraction(before: tuple, after: tuple) -> float:
    """Share of the machine's CPU time used by other processes between two _cpu_jiffies()."""
    busy, total, own = (a - b for a, b in zip(after, before))
    return max(0.0, (busy - own) / total) if total > 0 else 0.0


def _time_semantic(scene: RasterScene, mode: str, d: int, repeats: int, workers: Optional[int]):
    """Median time of one AlignGS training step's rendering: the first pass (all grads) plus a
    d-channel pass with detached geometry, done as two calls or with render_features."""
    from aligngs.render import render_features

    feats = torch.rand(scene.means.shape[0], d, generator=torch.Generator().manual_seed(1))
    kept_mb = [0.0]

    def step(reuse: bool) -> float:
        params = [t.detach().clone().requires_grad_(True)
                  for t in (scene.means, scene.quats, scene.scales, scene.opacities, scene.colors)]
        f = feats.clone().requires_grad_(True)
        t0 = time.perf_counter()
        r, a, meta = rasterization(*params, scene.viewmats, scene.Ks, scene.width, scene.height,
                                   sh_degree=scene.sh_degree, render_mode=mode, cpu_workers=workers,
                                   cpu_keep_weights=reuse)
        if reuse:
            kept_mb[0] = meta["feature_weights"].nbytes / 2**20
            sem, _ = render_features(meta, f)
        else:
            sem, _, _ = rasterization(scene.means, scene.quats, scene.scales, scene.opacities, f,
                                      scene.viewmats, scene.Ks, scene.width, scene.height,
                                      cpu_workers=workers)
        loss = r.square().mean() + a.mean() + sem.square().mean()
        loss.backward()
        return time.perf_counter() - t0

    out = {}
    for key, reuse in (("step_two_calls_s", False), ("step_reuse_s", True)):
        step(reuse)
        out[key] = statistics.median(step(reuse) for _ in range(repeats))
    out["semantic_channels"] = d
    out["kept_weights_mb"] = kept_mb[0]
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks raster", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="number of Gaussians")
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--features", type=int, default=16, help="extra feature channels besides RGB")
    ap.add_argument("--sh-degree", type=int, default=None, help="render SH colours instead of features")
    ap.add_argument("--mode", default="RGB+ED", help="render_mode")
    ap.add_argument("--detach-geometry", action="store_true",
                    help="only the colours/features require grad (AlignGS's semantic pass)")
    ap.add_argument("--cpu-workers", type=int, default=None, help="rasterization(cpu_workers=...)")
    ap.add_argument("--semantic", type=int, default=0, metavar="D",
                    help="also time an AlignGS-style second pass of D detached-geometry features: "
                         "a second rasterization call vs render_features on kept weights")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--reference-repeats", type=int, default=1)
    ap.add_argument("--skip-reference", action="store_true", help="do not time the brute-force reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    scene = make_room_scene(args.n, args.width, args.height, args.features, args.sh_degree, args.seed)
    fast_fn = functools.partial(rasterization, cpu_workers=args.cpu_workers)
    load_before = os.getloadavg()
    rss0 = _rss_mb()
    _fwd_bwd(fast_fn, scene, args.mode, args.detach_geometry)  # warm-up
    jiffies0 = _cpu_jiffies()
    times = [_fwd_bwd(fast_fn, scene, args.mode, args.detach_geometry) for _ in range(args.repeats)]
    others = _others_cpu_fraction(jiffies0, _cpu_jiffies())
    peak = _peak_rss_mb()
    fast = statistics.median(times)
    with torch.no_grad():
        r, a, meta = rasterization(
            scene.means, scene.quats, scene.scales, scene.opacities, scene.colors, scene.viewmats,
            scene.Ks, scene.width, scene.height, sh_degree=scene.sh_degree, render_mode=args.mode,
        )
    visible = int((meta["radii"] > 0).all(-1).sum())
    radii = meta["radii"][(meta["radii"] > 0).all(-1)].float().max(-1).values
    pairs = int(meta["flatten_ids"].numel())

    semantic: Dict[str, object] = {}
    if args.semantic > 0:
        semantic = _time_semantic(scene, args.mode, args.semantic, args.repeats, args.cpu_workers)

    ref: Optional[float] = None
    if not args.skip_reference:
        ref_times = [_fwd_bwd(rasterization_reference, scene, args.mode, args.detach_geometry)
                     for _ in range(args.reference_repeats)]
        ref = statistics.median(ref_times)
    load_after = os.getloadavg()

    channels = int(r.shape[-1])
    out: Dict[str, object] = {
        "fwd_bwd_s": fast,
        "fwd_bwd_runs_s": times,
        "bruteforce_fwd_bwd_s": ref,
        "speedup": (ref / fast) if ref is not None else None,
        "n_gaussians": args.n,
        "visible_gaussians": visible,
        "tile_gaussian_pairs": pairs,
        "median_radius_px": float(radii.median()) if radii.numel() else 0.0,
        "mean_alpha": float(a.mean()),
        "width": args.width,
        "height": args.height,
        "channels": channels,
        "render_mode": args.mode,
        "detach_geometry": args.detach_geometry,
        "peak_mem_mb": peak,
        "rss_before_mb": rss0,
        "torch_threads": torch.get_num_threads(),
        "cpu_workers": args.cpu_workers,
        **semantic,
        "others_cpu_fraction": others,
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
    }
    print(
        f"raster: N={args.n} ({visible} visible, {pairs} tile pairs, median radius "
        f"{out['median_radius_px']:.1f}px, mean alpha {out['mean_alpha']:.2f}) "
        f"{args.width}x{args.height} x {channels} ch ({args.mode}"
        f"{', detached geometry' if args.detach_geometry else ''}), torch threads {torch.get_num_threads()}"
    )
    print(f"  tile rasterizer fwd+bwd: {fast:.4f} s median of {args.repeats} "
          f"(min {min(times):.4f}, max {max(times):.4f})")
    if ref is not None:
        print(f"  brute-force reference fwd+bwd: {ref:.2f} s  -> speedup {ref / fast:.1f}x")
    if semantic:
        print(f"  AlignGS step ({args.mode} pass + {args.semantic}-ch detached-geometry pass): "
              f"two rasterization calls {semantic['step_two_calls_s']:.4f} s, with kept weights + "
              f"render_features {semantic['step_reuse_s']:.4f} s (weights {semantic['kept_weights_mb']:.0f} MB)")
    print(f"  peak RSS {peak:.0f} MB (process, {rss0:.0f} MB before rendering)")
    print(f"  machine load: other processes used {100 * others:.0f}% of the {os.cpu_count()} cores "
          f"while the tile rasterizer was timed; load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())


