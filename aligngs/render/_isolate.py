"""Run a differentiable sub-computation whose backward is single-threaded with flush-to-zero.

On a 2-core machine shared with other processes, torch's OpenMP intra-op parallelism stalls
badly whenever another process holds a core (every parallel op waits for a descheduled thread),
and exp/cumsum producing denormals are ~100x slower. The forward of the CPU rasterizer already
runs inside ``single_threaded_torch()`` and ``flush_denormal()``; this wrapper gives the
autograd backward of plain-torch parts (projection, SH, pair coefficients) the same treatment,
instead of leaving it to whatever thread settings the caller's ``loss.backward()`` runs with.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import torch
from torch import Tensor

from ._composite import flush_denormal, single_threaded_torch


class _Isolated(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn: Callable[..., Tuple[Tensor, ...]], *inputs: Any):  # type: ignore[override]
        leaves = tuple(
            x.detach().requires_grad_(x.requires_grad)
            if torch.is_tensor(x) and x.is_floating_point() else x
            for x in inputs
        )
        with torch.enable_grad():
            outs = tuple(fn(*leaves))
        ctx.leaves = leaves
        ctx.outs = outs
        ctx.mark_non_differentiable(*[o for o in outs if not o.is_floating_point()])
        return tuple(o.detach() if o.is_floating_point() else o for o in outs)

    @staticmethod
    def backward(ctx, *grads: Tensor):  # type: ignore[override]
        pairs = [(o, g) for o, g in zip(ctx.outs, grads) if o.requires_grad and g is not None]
        want = [
            i for i, x in enumerate(ctx.leaves)
            if torch.is_tensor(x) and x.requires_grad and ctx.needs_input_grad[i + 1]
        ]
        result = [None] * len(ctx.leaves)
        if pairs and want:
            with single_threaded_torch(), flush_denormal():
                got = torch.autograd.grad(
                    [o for o, _ in pairs], [ctx.leaves[i] for i in want], [g for _, g in pairs],
                    allow_unused=True, retain_graph=True,
                )
            for i, g in zip(want, got):
                result[i] = g
        return (None, *result)


def isolated(fn: Callable[..., Tuple[Tensor, ...]], *inputs: Any) -> Tuple[Tensor, ...]:
    """``fn(*inputs)`` (a tuple of tensors); float outputs are differentiable w.r.t. the float
    tensor inputs, and their backward runs single-threaded with flush-to-zero."""
    if not torch.is_grad_enabled() or not any(
        torch.is_tensor(x) and x.requires_grad for x in inputs
    ):
        with torch.no_grad():
            return tuple(fn(*inputs))
    return _Isolated.apply(fn, *inputs)
