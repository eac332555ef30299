"""Threading for the CPU rasterizer: single-threaded torch ops with flush-to-zero on every thread that runs
them, and a small pool that spreads independent pieces of work (tile chunks, halves of the Gaussians, halves of
the tile-pair candidates) over the calling thread and ``workers - 1`` more.

On the 2-core machines this project runs on, shared with other processes, torch's OpenMP intra-op threads stall
whenever another process holds a core, and exp/cumsum producing denormals are ~100x slower; so each thread runs
its ops single-threaded with flush-to-zero, and the parallelism comes from Python threads (torch releases the GIL
inside its ops).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, List, Tuple

import torch


def _denormals_flushed() -> bool:
    probe = torch.tensor([1e-39], dtype=torch.float32) * torch.tensor([1.0], dtype=torch.float32)
    return bool(probe.item() == 0.0)


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Enable flush-to-zero / denormals-are-zero for the current thread, restoring it after."""
    changed = False
    if not _denormals_flushed():
        changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


@contextmanager
def single_threaded_torch() -> Iterator[int]:
    """Run torch ops of this thread single-threaded (restored after); yields the old count."""
    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield n
    finally:
        if n != 1:
            torch.set_num_threads(n)


def _worker_init() -> None:
    # Pool threads die with the pool, so their per-thread settings leave nothing behind.
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def for_each_parallel(fn: Callable[[int], None], n: int, workers: int) -> None:
    """``fn(i)`` for i in 0..n-1 on the calling thread plus ``workers - 1`` pool threads, each taking the next
    index as it gets free (chunks differ in cost). ``fn`` writes its results itself (disjoint memory per index),
    so there is no consumer thread competing with the workers for the cores. The first exception is re-raised.

    Must be called inside ``single_threaded_torch()`` with grad mode as ``fn`` needs it; pool threads run
    single-threaded, with flush-to-zero, without grad, and torch's global thread count is restored afterwards.
    """
    if workers <= 1 or n <= 1:
        for i in range(n):
            fn(i)
        return
    counter = itertools.count()  # next() is atomic under the GIL
    failed: List[BaseException] = []

    def drain() -> None:
        for i in iter(lambda: next(counter), None):
            if i >= n or failed:
                return
            try:
                fn(i)
            except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread below
                failed.append(e)
                return

    def pool_drain() -> None:
        with torch.no_grad():  # grad mode is thread-local; pool threads start with it enabled
            drain()

    outer = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max_workers=workers - 1, initializer=_worker_init) as pool:
            futures = [pool.submit(pool_drain) for _ in range(workers - 1)]
            drain()
            for f in futures:
                f.result()
    finally:
        # torch.set_num_threads in the workers also set the process-wide default for new threads
        torch.set_num_threads(outer)
    if failed:
        raise failed[0]


def default_workers() -> int:
    """Worker threads when the caller does not say: the caller's torch thread count, at most 2 (each worker runs its
    ops single-threaded; the GIL is released inside them)."""
    return max(1, min(2, torch.get_num_threads()))


# Per-Gaussian work (projection, SH, tile culling) runs as two halves on the workers from this many Gaussians on
# (below, the split's extra calls cost more than they save; results do not depend on the split or the worker count)
SPLIT_MIN_GAUSSIANS = 4096


def gaussian_parts(n: int) -> int:
    """How many parts per-Gaussian work over ``n`` Gaussians is split into."""
    return 2 if n >= SPLIT_MIN_GAUSSIANS else 1


def spans(n: int, parts: int) -> List[Tuple[int, int]]:
    """(start, length) of ``parts`` near-equal consecutive pieces of ``range(n)`` (fewer when n < parts)."""
    step = max(1, -(-n // max(1, parts)))
    return [(s, min(step, n - s)) for s in range(0, n, step)] or [(0, 0)]
