"""Tile binning for the CPU rasterizer (no gradients).

Every visible (camera, Gaussian) is assigned to the tiles its opacity-aware box overlaps (gsplat's
``isect_tiles`` rule: tiles ``floor((m - r) / ts) .. ceil((m + r) / ts)``), minus the tiles whose pixel centres
it never reaches, the (tile, Gaussian) pairs are ordered by tile, then front to back by camera-space depth, and
the non-empty tiles are grouped into chunks of similar Gaussian count so that one chunk's work stays cache-sized.

The binning is done by the C++ kernel (``csrc/tiles.cpp``) when one is given, else by the torch code below (same
rules, same float32 arithmetic). The padded [tiles, Gaussians] index matrices of the chunks, which only the
pure-torch compositing kernels read, are built on first use (``TilePlan.padded_chunks``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ._threads import Workers, for_each_parallel, gaussian_parts, spans, worker_count

# (tile, Gaussian) pairs from which per-pair work (the culling test, the pair coefficients and their gradients)
# runs as two halves on the workers
SPLIT_MIN_PAIRS = 8192


def pair_halves(m: int) -> List[Tuple[int, int]]:
    """(start, length) of the parts ``m`` pairs are processed in: two halves from ``2 * SPLIT_MIN_PAIRS`` on."""
    return spans(m, 2 if m >= 2 * SPLIT_MIN_PAIRS else 1)

@dataclass
class Chunk:
    tile_ids: Tensor  # [B] int64, global tile ids (camera * tiles_per_image + tile)
    where: Tuple[Tensor, Tensor, Tensor]  # (camera, tile row, tile column) of each tile, [B] each
    n_gauss: int  # G, the padded Gaussian count of the chunk (its first tile's)
    # built by TilePlan.padded_chunks() for the pure-torch kernels:
    pair_idx: Optional[Tensor] = None  # [B, G] int64 into the pair arrays; padding -> n_pairs (a dummy row)
    color_idx: Optional[Tensor] = None  # [B, G] int64 rows of the flattened colour table (padding -> 0)

    @property
    def padded_pairs(self) -> int:
        return int(self.tile_ids.shape[0]) * self.n_gauss


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
    tile_starts: Tensor  # [C * T] int64: first pair of each tile
    tiles_per_gauss: Tensor  # [C, N] int32
    colors_per_camera: bool = False  # colour table rows are camera * N + gaussian (else gaussian)
    chunks: List[Chunk] = field(default_factory=list)
    empty: Optional[Tuple[Tensor, Tensor, Tensor]] = None  # (camera, row, column) of empty tiles
    # gsplat's meta["isect_ids"] / ["flatten_ids"] when the C++ binning wrote them as it went (else computed by
    # gsplat_isect_meta from the pairs)
    isect_ids: Optional[Tensor] = None  # [M] int64
    flatten_ids: Optional[Tensor] = None  # [M] int32

    @property
    def n_pairs(self) -> int:
        return int(self.pair_flat_ids.shape[0])

    @property
    def tiles_per_image(self) -> int:
        return self.tile_width * self.tile_height

    def pair_color_rows(self) -> Tensor:
        """[M] int64: the colour-table row of each pair."""
        if self.colors_per_camera or self.n_cameras == 1:  # one camera: flat id == Gaussian id
            return self.pair_flat_ids
        return self.pair_flat_ids % self.n_gaussians

    def padded_chunks(self) -> List[Chunk]:
        """The chunks with their padded index matrices (``pair_idx``, ``color_idx``), built for all chunks at once
        on the first call."""
        if self.chunks and self.chunks[0].pair_idx is None:
            _pad_chunks(self)
        return self.chunks


@torch.no_grad()
def plan_tiles(
    means2d: Tensor,  # [C, N, 2]
    radii: Tensor,  # [C, N, 2] int32
    depths: Tensor,  # [C, N]
    conics: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N]
    width: int,
    height: int,
    tile_size: int,
    n_channels: int,
    colors_per_camera: bool,
    chunk_elems: int = 1 << 17,
    workers: Workers = 1,
    binner: Optional[ModuleType] = None,
) -> TilePlan:
    """``binner``: the C++ kernel module (``_cpp.kernel``) to bin with, or None for the torch code."""
    C, N = depths.shape
    tw = math.ceil(width / tile_size)
    th = math.ceil(height / tile_size)
    T = tw * th
    P = tile_size * tile_size
    isect_ids = flatten_ids = None
    if binner is not None:
        pair_flat, tile, tile_counts, tile_starts, tiles_per_gauss, isect_ids, flatten_ids = binner.bin_tiles(
            means2d.detach().contiguous(), radii.contiguous(), depths.detach().contiguous(),
            conics.detach().contiguous(), opacities.detach().contiguous(), width, height, tile_size,
            worker_count(workers) if gaussian_parts(N) > 1 else 1)
    else:
        pair_flat, tile, tile_counts, tile_starts, tiles_per_gauss = _bin_torch(
            means2d, radii, depths, conics, opacities, width, height, tile_size, workers)

    # chunks: non-empty tiles by decreasing count, each chunk padded to its first tile's count
    nonempty = torch.nonzero(tile_counts).squeeze(1)
    cnt_sorted, idx_sorted = torch.sort(tile_counts[nonempty], descending=True, stable=True)
    tiles_sorted = nonempty[idx_sorted]
    cnt_list = cnt_sorted.tolist()
    chunks: List[Chunk] = []
    i = 0
    per_pair = P + n_channels // 4  # the alpha arrays dominate; the colour gather counts less
    cam_s, row_s, col_s = _tile_where(tiles_sorted, T, tw)
    while i < len(cnt_list):
        g = cnt_list[i]
        j = min(len(cnt_list), i + max(1, chunk_elems // max(1, g * per_pair)))
        chunks.append(Chunk(tile_ids=tiles_sorted[i:j], where=(cam_s[i:j], row_s[i:j], col_s[i:j]), n_gauss=g))
        i = j

    empty = torch.nonzero(tile_counts == 0).squeeze(1)
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
        tile_starts=tile_starts,
        tiles_per_gauss=tiles_per_gauss.reshape(C, N),
        colors_per_camera=colors_per_camera,
        chunks=chunks,
        empty=_tile_where(empty, T, tw) if empty.numel() else None,
        isect_ids=isect_ids,
        flatten_ids=flatten_ids,
    )


def _pad_chunks(plan: TilePlan) -> None:
    """Fill every chunk's padded [tiles, Gaussians] index matrices, all chunks in one pass of tensor ops."""
    dev = plan.tile_counts.device
    M, N = plan.n_pairs, plan.n_gaussians
    tiles_sorted = torch.cat([ch.tile_ids for ch in plan.chunks])
    padded = torch.cat([torch.full((int(ch.tile_ids.shape[0]),), ch.n_gauss, dtype=torch.int64, device=dev)
                        for ch in plan.chunks])
    rep = torch.repeat_interleave(torch.arange(tiles_sorted.shape[0], device=dev), padded)
    seg_start = torch.cumsum(padded, 0) - padded
    local = torch.arange(int(padded.sum()), device=dev) - seg_start.index_select(0, rep)
    real = local < plan.tile_counts.index_select(0, tiles_sorted).index_select(0, rep)
    pidx_all = torch.where(
        real, plan.tile_starts.index_select(0, tiles_sorted).index_select(0, rep) + local, torch.full_like(local, M)
    )
    flat = plan.pair_flat_ids.index_select(0, torch.where(real, pidx_all, torch.zeros_like(pidx_all)))
    cidx_all = flat if plan.colors_per_camera else flat % N
    cidx_all = torch.where(real, cidx_all, torch.zeros_like(cidx_all))
    a = 0
    for ch in plan.chunks:
        b = a + ch.padded_pairs
        ch.pair_idx = pidx_all[a:b].view(-1, ch.n_gauss)
        ch.color_idx = cidx_all[a:b].view(-1, ch.n_gauss)
        a = b


def _bin_torch(
    means2d: Tensor, radii: Tensor, depths: Tensor, conics: Tensor, opacities: Tensor, width: int, height: int,
    tile_size: int, workers: Workers,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The pairs in torch ops -> (pair_flat_ids, pair_tiles, tile_counts, tile_starts, tiles_per_gauss [C * N])."""
    C, N = depths.shape
    dev = means2d.device
    tw = math.ceil(width / tile_size)
    th = math.ceil(height / tile_size)
    T = tw * th

    visible = (radii > 0).all(dim=-1).reshape(C * N)
    vid = torch.nonzero(visible).squeeze(1)  # flat ids of visible Gaussians
    # front to back within each camera: sort by depth, then stably by camera
    dv = depths.detach().reshape(C * N).index_select(0, vid)
    order = torch.argsort(dv, stable=True)
    vid = vid.index_select(0, order)
    if C > 1:
        vid = vid.index_select(0, torch.argsort(torch.div(vid, N, rounding_mode="floor"), stable=True))
    cam = torch.div(vid, N, rounding_mode="floor")

    # mean (2), conic (3) and opacity of each visible Gaussian in one table: one gather per pair below
    gv = torch.cat([means2d.detach().reshape(C * N, 2).float(), conics.detach().reshape(C * N, 3).float(),
                    opacities.detach().reshape(C * N, 1).float()], dim=1).index_select(0, vid)
    mv = gv[:, :2] / tile_size
    rv = radii.reshape(C * N, 2).index_select(0, vid).float() / tile_size
    x0 = torch.floor(mv[:, 0] - rv[:, 0]).clamp_(0, tw)
    x1 = torch.ceil(mv[:, 0] + rv[:, 0]).clamp_(0, tw)
    y0 = torch.floor(mv[:, 1] - rv[:, 1]).clamp_(0, th)
    y1 = torch.ceil(mv[:, 1] + rv[:, 1]).clamp_(0, th)
    nx = x1 - x0  # small exact integers in float32
    count = (nx * (y1 - y0)).long()

    M = int(count.sum().item())
    rep = torch.repeat_interleave(torch.arange(vid.shape[0], device=dev), count)
    start = torch.cumsum(count, 0) - count
    k = (torch.arange(M, device=dev) - start.index_select(0, rep)).float()
    nxr = nx.clamp(min=1).index_select(0, rep)
    ky = torch.floor(k / nxr)
    kx = k - ky * nxr
    tx = x0.index_select(0, rep) + kx
    ty = y0.index_select(0, rep) + ky

    # Drop pairs whose tile has no pixel centre with alpha >= 1/255 (~30% of the box tiles):
    # the minimum of the Gaussian's exponent over the tile's rectangle of pixel centres. Per candidate pair, so
    # the candidates are split in halves over the workers; the per-pair rows are made contiguous first (strided
    # columns turn every elementwise op into a scalar loop).
    keep = torch.empty(M, dtype=torch.bool, device=dev)
    halves = pair_halves(M)

    def cull(h: int) -> None:
        s, n = halves[h]
        rows = gv.index_select(0, rep.narrow(0, s, n)).t().contiguous()  # [6, n]: x, y, a, b, c, opacity
        keep.narrow(0, s, n).copy_(
            _ellipse_hits_tiles(rows, tx.narrow(0, s, n), ty.narrow(0, s, n), tile_size, width, height)
        )

    for_each_parallel(cull, len(halves), workers)
    kept = torch.nonzero(keep).squeeze(1)
    rep = rep.index_select(0, kept)
    tile = cam.index_select(0, rep) * T + (ty.index_select(0, kept) * tw + tx.index_select(0, kept)).long()
    M = int(rep.shape[0])
    tiles_per_gauss = torch.bincount(vid.index_select(0, rep), minlength=C * N).to(torch.int32)

    # stable sort by tile keeps the depth order inside each tile; narrow keys sort much faster
    key_dtype = torch.int16 if C * T < 2**15 else torch.int32
    _, perm = torch.sort(tile.to(key_dtype), stable=True)
    tile = tile.index_select(0, perm)
    pair_flat = vid.index_select(0, rep.index_select(0, perm))

    tile_counts = torch.bincount(tile, minlength=C * T)
    tile_starts = torch.cumsum(tile_counts, 0) - tile_counts
    return pair_flat, tile, tile_counts, tile_starts, tiles_per_gauss


def _tile_where(t_ids: Tensor, T: int, tw: int) -> Tuple[Tensor, Tensor, Tensor]:
    local = t_ids % T
    return (
        torch.div(t_ids, T, rounding_mode="floor"),
        torch.div(local, tw, rounding_mode="floor"),
        local % tw,
    )


# exponents within this margin of the cut-off are kept (rounding of the per-pixel evaluation)
_CULL_MARGIN = 1e-3


def _ellipse_hits_tiles(
    rows: Tensor,  # [6, M]: projected mean x, y, conic xx, xy, yy, opacity
    tx: Tensor,  # [M] tile column (float)
    ty: Tensor,  # [M] tile row (float)
    ts: int,
    width: int,
    height: int,
) -> Tensor:
    """True where some point of the tile's rectangle of pixel centres (clipped to the image) has
    ``o * exp(-sigma) >= 1/255``; conservative (the rectangle contains all the pixel centres)."""
    mx, my, a, b, c, o = rows.unbind(0)
    xlo = (tx * ts + 0.5) - mx
    xhi = torch.clamp(tx * ts + (ts - 0.5), max=width - 0.5) - mx
    ylo = (ty * ts + 0.5) - my
    yhi = torch.clamp(ty * ts + (ts - 0.5), max=height - 0.5) - my

    def q(dx: Tensor, dy: Tensor) -> Tensor:
        return 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy

    # minimum on each edge: the 1D quadratic's vertex clamped to the edge
    best = None
    for dx in (xlo, xhi):
        dy = torch.maximum(torch.minimum(-b * dx / c, yhi), ylo)
        v = q(dx, dy)
        best = v if best is None else torch.minimum(best, v)
    for dy in (ylo, yhi):
        dx = torch.maximum(torch.minimum(-b * dy / a, xhi), xlo)
        best = torch.minimum(best, q(dx, dy))
    inside = (xlo <= 0) & (xhi >= 0) & (ylo <= 0) & (yhi >= 0)
    best = torch.where(inside, torch.zeros_like(best), best)
    return best <= torch.log(o * 255.0) + _CULL_MARGIN


@torch.no_grad()
def gsplat_isect_meta(plan: TilePlan, depths: Tensor) -> dict:
    """gsplat-style intersection meta (isect_ids, flatten_ids, isect_offsets) for this plan."""
    C, T = plan.n_cameras, plan.tiles_per_image
    offsets = plan.tile_starts.to(torch.int32).reshape(C, plan.tile_height, plan.tile_width)
    if plan.isect_ids is not None:
        return {"isect_ids": plan.isect_ids, "flatten_ids": plan.flatten_ids, "isect_offsets": offsets}
    tile_bits = T.bit_length()
    cam = plan.pair_tiles // T
    local_tile = plan.pair_tiles % T
    d = depths.detach().reshape(-1)[plan.pair_flat_ids].float().contiguous()
    depth_bits = d.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    isect_ids = (cam << (tile_bits + 32)) | (local_tile << 32) | depth_bits
    return {"isect_ids": isect_ids, "flatten_ids": plan.pair_flat_ids.to(torch.int32), "isect_offsets": offsets}
