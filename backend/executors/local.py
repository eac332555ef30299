"""The local executor: one ``multiprocessing`` (spawn) process per job on this machine, one slot per local GPU."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from dataclasses import dataclass
from typing import Any

from .. import worker
from ..devices import Slot, describe
from ..errors import ExecutorError
from . import Executor, Exit

log = logging.getLogger(__name__)


@dataclass
class LocalHandle:
    process: Any  # multiprocessing.Process (spawn)
    cancel_event: Any


def exit_signal(exit_code: int | None) -> str | None:
    """'SIGKILL' for -9 and so on; None for normal exits."""
    if exit_code is not None and exit_code < 0 and -exit_code in signal.valid_signals():
        return signal.Signals(-exit_code).name
    return None


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, slots: list[Slot]):
        self._slots = slots
        self._mp = multiprocessing.get_context("spawn")

    def slots(self) -> list[Slot]:
        return self._slots

    def describe(self, slots: list[Slot]) -> str:
        return describe(slots)

    def progress_bind(self, tmp_dir: str | None) -> str:
        return f"ipc://{tmp_dir}/workers" if tmp_dir else "tcp://127.0.0.1:*"

    def start(self, spec: dict, slot: Slot) -> LocalHandle:
        spec = dict(spec, device=slot.kind, cuda_visible=slot.cuda_visible)
        ev = self._mp.Event()
        proc = self._mp.Process(target=worker.main, args=(spec, ev), name=f"aligngs-job-{spec['job']}")
        try:
            proc.start()
        except Exception as e:
            raise ExecutorError(f"cannot start a worker process: {e}") from e
        return LocalHandle(proc, ev)

    def poll(self, handle: LocalHandle) -> Exit | None:
        p = handle.process
        if p.exitcode is None:
            return None
        code = p.exitcode
        try:
            p.close()
        except ValueError:
            pass
        return Exit(exit_code=code, signal=exit_signal(code))

    def cancel(self, handle: LocalHandle) -> None:
        handle.cancel_event.set()

    def terminate(self, handle: LocalHandle) -> None:
        handle.process.terminate()

    def kill(self, handle: LocalHandle) -> None:
        handle.process.kill()

    def pid(self, handle: LocalHandle) -> int | None:
        return handle.process.pid

    def stop_all(self, handles: list[LocalHandle], grace: float) -> None:
        for h in handles:
            h.cancel_event.set()
            if h.process.is_alive():
                h.process.terminate()
        deadline = time.monotonic() + grace
        for h in handles:
            h.process.join(max(0.0, deadline - time.monotonic()))
            if h.process.is_alive():
                h.process.kill()
                h.process.join(2.0)


__all__ = ["LocalExecutor", "LocalHandle", "exit_signal"]
