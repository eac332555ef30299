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
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Tuple, Union

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


class WorkerPool:
    """``workers`` threads for the CPU rasterizer's parallel pieces that stay alive between calls: the calling
    thread plus ``workers - 1`` pool threads (single-threaded torch, flush-to-zero, no grad), created here.

    Pass one as ``cpu_workers`` (``rasterization``, ``render``) to every render of a loop. A count instead starts
    fresh threads for each parallel piece, and a fresh thread's first torch ops are slow: two halves of a small
    job (8 clamp + exp pairs over 300k floats each, ~2.5 ms on one thread) took 10.6 ms on a new thread per call
    against 2.7 ms on a kept one (188 % CPU). On a 60k-Gaussian view the kept pool made the projection 10-30 %
    faster; a whole training step (8 such calls) did not change beyond the run-to-run noise. Safe to share between
    threads; a pool thread that calls ``run`` again runs its pieces itself (no deadlock). ``close``
    (or ``with``) joins the threads; a pool that is dropped lets them exit.
    """

    def __init__(self, workers: int):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"WorkerPool: workers must be a positive int, got {workers!r}")
        self.workers = workers
        # the pool threads' ids; the threads hold the initializer below, so it must not refer to the pool (a
        # dropped pool could never be collected, nor its threads told to exit)
        idents: set = set()
        self._idents = idents
        self._executor: Optional[ThreadPoolExecutor] = None
        if workers > 1:
            outer = torch.get_num_threads()
            ready = threading.Barrier(workers - 1)

            def init() -> None:
                _worker_init()
                idents.add(threading.get_ident())

            self._executor = ThreadPoolExecutor(max_workers=workers - 1, initializer=init,
                                                thread_name_prefix="aligngs-raster")
            try:  # start every thread now (an executor starts them on demand), each held until all are up
                for f in [self._executor.submit(ready.wait) for _ in range(workers - 1)]:
                    f.result()
            finally:
                # torch.set_num_threads in the workers also set the process-wide default for new threads
                torch.set_num_threads(outer)

    def run(self, fn: Callable[[int], None], n: int) -> None:
        """``fn(i)`` for i in 0..n-1 on the calling thread and the pool threads, each taking the next index as it
        gets free (chunks differ in cost). ``fn`` writes its results itself (disjoint memory per index), so there
        is no consumer thread competing with the workers for the cores. The first exception is re-raised.

        Must be called inside ``single_threaded_torch()`` with grad mode as ``fn`` needs it on the calling thread;
        the pool threads run without grad."""
        if self._executor is None or n <= 1 or threading.get_ident() in self._idents:
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

        futures = [self._executor.submit(pool_drain) for _ in range(min(self.workers - 1, n - 1))]
        drain()
        for f in futures:
            f.result()
        if failed:
            raise failed[0]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Workers = Union[int, WorkerPool]


def worker_count(workers: Workers) -> int:
    return workers.workers if isinstance(workers, WorkerPool) else workers


def for_each_parallel(fn: Callable[[int], None], n: int, workers: Workers) -> None:
    """``WorkerPool.run`` on ``workers``: a pool, or a count (threads started for this call and joined after)."""
    if isinstance(workers, WorkerPool):
        workers.run(fn, n)
    elif workers <= 1 or n <= 1:
        for i in range(n):
            fn(i)
    else:
        with WorkerPool(workers) as pool:
            pool.run(fn, n)


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
