"""Run a differentiable sub-computation single-threaded with flush-to-zero, forward and backward,
optionally split into parts along the Gaussians that run on parallel threads, forward and backward.

On a 2-core machine shared with other processes, torch's OpenMP intra-op parallelism stalls
badly whenever another process holds a core (every parallel op waits for a descheduled thread),
and exp/cumsum producing denormals are ~100x slower. The forward of the CPU rasterizer already
runs inside ``single_threaded_torch()`` and ``flush_denormal()``; this wrapper gives plain-torch parts
(projection, SH, pair coefficients; the trainer's photometric loss and image-space terms, whose small ops
otherwise each wake torch's second thread) the same treatment in their forward and in their autograd backward,
instead of leaving it to whatever thread settings the caller's ``loss.backward()`` runs with.

The projection and SH evaluation are per-Gaussian, so with a :class:`Split` they run as ``parts``
independent sub-graphs over slices of the Gaussians, spread over the calling thread and ``workers - 1``
pool threads (as the compositing chunks are), and each part's backward is its own ``autograd.grad`` on its
own thread. The number of parts does not depend on ``workers``, so results are bit-identical for any worker
count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ._threads import Workers, flush_denormal, for_each_parallel, single_threaded_torch, spans


@dataclass(frozen=True)
class Split:
    """How ``fn``'s inputs and outputs are sliced into independent parts.

    ``in_dims[i]``: the dimension of input i that indexes the Gaussians (None: the input is shared by every
    part, e.g. the cameras; its gradient is the sum over parts). ``out_dims[k]``: the Gaussian dimension of
    output k (the parts' outputs are concatenated along it)."""

    n: int  # number of Gaussians
    in_dims: Tuple[Optional[int], ...]
    out_dims: Tuple[int, ...]
    parts: int = 2
    workers: Workers = 1

    def bounds(self) -> List[Tuple[int, int]]:
        return spans(self.n, self.parts)


def _leaf(x: Any, dim: Optional[int], start: int, length: int) -> Any:
    if not (torch.is_tensor(x) and x.is_floating_point()):
        return x if dim is None or not torch.is_tensor(x) else x.narrow(dim, start, length)
    v = x.detach() if dim is None else x.detach().narrow(dim, start, length)
    return v.requires_grad_(x.requires_grad)


def _run_parts(
    fn: Callable[..., Tuple[Tensor, ...]], inputs: Sequence[Any], split: Optional[Split], grad: bool
) -> Tuple[List[tuple], List[tuple], Tuple[Tensor, ...]]:
    """``fn`` on each part's slices of the inputs (detached leaves) on the workers, with grad recording on or
    off -> (each part's leaves, each part's outputs, the outputs joined along ``split.out_dims``)."""
    spans = split.bounds() if split is not None else [(0, 0)]
    dims = split.in_dims if split is not None else (None,) * len(inputs)
    leaves: List[tuple] = [tuple(_leaf(x, d, s, n) for x, d in zip(inputs, dims)) for s, n in spans]
    outs: List[Optional[tuple]] = [None] * len(spans)

    def run(p: int) -> None:
        with torch.set_grad_enabled(grad):  # grad mode is thread-local
            outs[p] = tuple(fn(*leaves[p]))

    for_each_parallel(run, len(spans), split.workers if split is not None else 1)
    if split is None:
        return leaves, outs, outs[0]
    return leaves, outs, tuple(torch.cat([o[k] for o in outs], dim=d) for k, d in enumerate(split.out_dims))


class _Isolated(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn: Callable[..., Tuple[Tensor, ...]], split: Optional[Split], *inputs: Any):  # type: ignore[override]
        leaves, outs, joined = _run_parts(fn, inputs, split, grad=True)
        ctx.split, ctx.leaves, ctx.outs = split, leaves, outs
        ctx.mark_non_differentiable(*[o for o in joined if not o.is_floating_point()])
        return tuple(o.detach() if o.is_floating_point() else o for o in joined)

    @staticmethod
    def backward(ctx, *grads: Tensor):  # type: ignore[override]
        split: Optional[Split] = ctx.split
        leaves: List[tuple] = ctx.leaves
        n_in = len(leaves[0])
        want = [
            i for i in range(n_in)
            if torch.is_tensor(leaves[0][i]) and leaves[0][i].requires_grad and ctx.needs_input_grad[i + 2]
        ]
        result: List[Optional[Tensor]] = [None] * n_in
        if not want:
            return (None, None, *result)
        spans = split.bounds() if split is not None else [(0, 0)]
        got: List[Optional[Sequence[Optional[Tensor]]]] = [None] * len(spans)

        def run(p: int) -> None:
            outs = ctx.outs[p]
            pairs = []
            for k, (o, g) in enumerate(zip(outs, grads)):
                if o.requires_grad and g is not None:
                    s, n = spans[p]
                    pairs.append((o, g if split is None else g.narrow(split.out_dims[k], s, n)))
            if not pairs:
                got[p] = [None] * len(want)
                return
            got[p] = torch.autograd.grad(
                [o for o, _ in pairs], [leaves[p][i] for i in want], [g for _, g in pairs],
                allow_unused=True, retain_graph=True,
            )

        with single_threaded_torch(), flush_denormal():
            for_each_parallel(run, len(spans), split.workers if split is not None else 1)
            for j, i in enumerate(want):
                per_part = [g[j] for g in got]
                dim = split.in_dims[i] if split is not None else None
                if split is None:
                    result[i] = per_part[0]
                elif dim is None:
                    present = [g for g in per_part if g is not None]
                    result[i] = None if not present else sum(present[1:], present[0])
                elif any(g is not None for g in per_part):
                    result[i] = torch.cat(
                        [g if g is not None else torch.zeros_like(leaves[p][i]) for p, g in enumerate(per_part)],
                        dim=dim,
                    )
        return (None, None, *result)


def isolated(fn: Callable[..., Tuple[Tensor, ...]], *inputs: Any, split: Optional[Split] = None) -> Tuple[Tensor, ...]:
    """``fn(*inputs)`` (a tuple of tensors); float outputs are differentiable w.r.t. the float
    tensor inputs, and forward and backward run single-threaded with flush-to-zero. With ``split``, ``fn`` runs
    on ``split.parts`` slices of the Gaussians (``fn`` must treat Gaussians independently), on parallel
    threads, forward and backward."""
    if split is not None and (split.parts < 2 or split.n < split.parts):
        split = None
    with single_threaded_torch(), flush_denormal():
        if not torch.is_grad_enabled() or not any(torch.is_tensor(x) and x.requires_grad for x in inputs):
            with torch.no_grad():
                return _run_parts(fn, inputs, split, grad=False)[2]
        return _Isolated.apply(fn, split, *inputs)
