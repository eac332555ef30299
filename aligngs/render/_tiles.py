"""Tile binning for the CPU rasterizer (no gradients).

Every visible (camera, Gaussian) is assigned to the tiles its opacity-aware box overlaps (gsplat's
``isect_tiles`` rule: tiles ``floor((m - r) / ts) .. ceil((m + r) / ts)``), the (tile, Gaussian)
pairs are ordered by tile, then front to back by camera-space depth, and the non-empty tiles are
grouped into chunks of similar Gaussian count so that one chunk's [tiles, pixels, Gaussians] work
arrays stay cache-sized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

import torch
from torch import Tensor


@dataclass
class Chunk:
    tile_ids: Tensor  # [B] int64, global tile ids (camera * tiles_per_image + tile)
    pair_idx: Tensor  # [B, G] int64 into the pair arrays; padding -> n_pairs (a dummy row)
    color_idx: Tensor  # [B, G] int64 rows of the flattened colour table (padding -> 0)
    cams: Tensor  # [B] int64 camera of each tile
    n_gauss: int  # G, the padded Gaussian count of the chunk


@dataclass
class TilePlan:
    n_cameras: int
    n_gaussians: int
    width: int
    height: int
    tile_size: int
    tile_width: int
    tile_height: int
    pair_flat_ids: Tensor  # [M] int64 camera * N + gaussian, sorted by (camera, tile, depth)
    pair_tiles: Tensor  # [M] int64 global tile id of each pair
    tile_counts: Tensor  # [C * T] int64
    tiles_per_gauss: Tensor  # [C, N] int32
    chunks: List[Chunk] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return int(self.pair_flat_ids.shape[0])

    @property
    def tiles_per_image(self) -> int:
        return self.tile_width * self.tile_height


@torch.no_grad()
def plan_tiles(
    means2d: Tensor,  # [C, N, 2]
    radii: Tensor,  # [C, N, 2] int32
    depths: Tensor,  # [C, N]
    width: int,
    height: int,
    tile_size: int,
    n_channels: int,
    colors_per_camera: bool,
    chunk_elems: int = 1 << 17,
) -> TilePlan:
    C, N = depths.shape
    dev = means2d.device
    tw = math.ceil(width / tile_size)
    th = math.ceil(height / tile_size)
    T = tw * th
    P = tile_size * tile_size

    m = means2d.detach().reshape(C * N, 2).float()
    r = radii.reshape(C * N, 2).float()
    visible = (radii > 0).all(dim=-1).reshape(C * N)
    vid = torch.nonzero(visible).squeeze(1)  # flat ids of visible Gaussians
    mv = m[vid] / tile_size
    rv = r[vid] / tile_size
    x0 = torch.floor(mv[:, 0] - rv[:, 0]).clamp(0, tw).long()
    x1 = torch.ceil(mv[:, 0] + rv[:, 0]).clamp(0, tw).long()
    y0 = torch.floor(mv[:, 1] - rv[:, 1]).clamp(0, th).long()
    y1 = torch.ceil(mv[:, 1] + rv[:, 1]).clamp(0, th).long()
    nx = x1 - x0
    ny = y1 - y0
    count = nx * ny

    tiles_per_gauss = torch.zeros(C * N, dtype=torch.int32, device=dev)
    tiles_per_gauss[vid] = count.to(torch.int32)

    # front to back within each camera: sort by depth, then stably by camera
    dv = depths.detach().reshape(C * N)[vid]
    order = torch.argsort(dv, stable=True)
    cam = vid // N
    order = order[torch.argsort(cam[order], stable=True)]
    vid, x0, y0, nx, count, cam = vid[order], x0[order], y0[order], nx[order], count[order], cam[order]

    M = int(count.sum().item())
    rep = torch.repeat_interleave(torch.arange(vid.shape[0], device=dev), count)
    start = torch.cumsum(count, 0) - count
    k = torch.arange(M, device=dev) - start[rep]
    nxr = nx[rep]
    tx = x0[rep] + k % nxr.clamp(min=1)
    ty = y0[rep] + torch.div(k, nxr.clamp(min=1), rounding_mode="floor")
    tile = cam[rep] * T + ty * tw + tx
    tile, perm = torch.sort(tile, stable=True)
    pair_flat = vid[rep][perm]

    tile_counts = torch.bincount(tile, minlength=C * T)
    tile_starts = torch.cumsum(tile_counts, 0) - tile_counts

    # chunks: non-empty tiles by decreasing count, each chunk padded to its first tile's count
    nonempty = torch.nonzero(tile_counts).squeeze(1)
    cnt_sorted, idx_sorted = torch.sort(tile_counts[nonempty], descending=True, stable=True)
    tiles_sorted = nonempty[idx_sorted]
    cnt_list = cnt_sorted.tolist()
    chunks: List[Chunk] = []
    i = 0
    n_tiles = len(cnt_list)
    per_pair = P + n_channels
    while i < n_tiles:
        g = cnt_list[i]
        b = max(1, chunk_elems // max(1, g * per_pair))
        j = min(n_tiles, i + b)
        t_ids = tiles_sorted[i:j]
        ar = torch.arange(g, device=dev)
        pidx = tile_starts[t_ids][:, None] + ar[None, :]
        pad = ar[None, :] >= tile_counts[t_ids][:, None]
        pidx = torch.where(pad, torch.full_like(pidx, M), pidx)
        flat = pair_flat[pidx.clamp(max=max(M - 1, 0))]
        cidx = flat if colors_per_camera else flat % N
        cidx = torch.where(pad, torch.zeros_like(cidx), cidx)
        chunks.append(
            Chunk(tile_ids=t_ids, pair_idx=pidx, color_idx=cidx, cams=t_ids // T, n_gauss=g)
        )
        i = j

    return TilePlan(
        n_cameras=C,
        n_gaussians=N,
        width=width,
        height=height,
        tile_size=tile_size,
        tile_width=tw,
        tile_height=th,
        pair_flat_ids=pair_flat,
        pair_tiles=tile,
        tile_counts=tile_counts,
        tiles_per_gauss=tiles_per_gauss.reshape(C, N),
        chunks=chunks,
    )


@torch.no_grad()
def gsplat_isect_meta(plan: TilePlan, depths: Tensor) -> dict:
    """gsplat-style intersection meta (isect_ids, flatten_ids, isect_offsets) for this plan."""
    C, T = plan.n_cameras, plan.tiles_per_image
    tile_bits = T.bit_length()
    cam = plan.pair_tiles // T
    local_tile = plan.pair_tiles % T
    d = depths.detach().reshape(-1)[plan.pair_flat_ids].float().contiguous()
    depth_bits = d.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    isect_ids = (cam << (tile_bits + 32)) | (local_tile << 32) | depth_bits
    offsets = (torch.cumsum(plan.tile_counts, 0) - plan.tile_counts).to(torch.int32)
    return {
        "isect_ids": isect_ids,
        "flatten_ids": plan.pair_flat_ids.to(torch.int32),
        "isect_offsets": offsets.reshape(C, plan.tile_height, plan.tile_width),
    }
