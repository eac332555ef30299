"""Executors: where a job's worker process runs.

The scheduler (``backend.scheduler``) decides *which* job runs next and keeps the job store; an executor only
starts a job's worker somewhere, reports when it has ended, and stops it on a cancel. Two exist:

- ``local`` (default, :mod:`backend.executors.local`): one spawned process per job on this machine, one slot per
  local GPU (or CPU slots);
- ``ray`` (:mod:`backend.executors.ray`): each job is a Ray task on a Ray cluster; inputs travel through Ray's
  object store and the task's output folder comes back into the server's job store.

Either way the worker is :mod:`backend.worker`, it pushes progress to the server's PULL socket, and when a job has
ended its ``outcome.json``, ``job.log`` and ``out/`` are in the server's job store before :meth:`Executor.poll`
returns, so the scheduler's bookkeeping (and ``fetch``, ``status``, restart recovery) is the same for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..devices import Slot
from ..errors import ConfigError

EXECUTORS = ("local", "ray")


@dataclass
class Exit:
    """How a job's worker ended (the scheduler reads the outcome file for the rest)."""

    exit_code: int | None = None
    signal: str | None = None
    reason: str | None = None  # the executor's own account when the worker could not report (node died, ...)
    cancelled: bool = False  # the executor stopped it because of a cancel


class Executor:
    """Interface; see the module doc. ``handle`` is whatever :meth:`start` returned."""

    name = "?"

    def slots(self) -> list[Slot]:
        """The scheduler's concurrency slots (one job each)."""
        raise NotImplementedError

    def workers(self, slots: list[Slot]) -> list[dict]:
        """``welcome.workers``."""
        return [s.public() for s in slots]

    def describe(self, slots: list[Slot]) -> str:
        """``welcome.device``."""
        raise NotImplementedError

    def progress_bind(self, tmp_dir: str | None) -> str:
        """Where the server binds the PULL socket that workers push progress to."""
        raise NotImplementedError

    def start(self, spec: dict, slot: Slot) -> Any:
        """Start the worker for ``spec`` (see ``backend.worker.main``); raises ExecutorError."""
        raise NotImplementedError

    def poll(self, handle: Any) -> Exit | None:
        """None while the job runs; once it has ended, its Exit (outputs already in the job store)."""
        raise NotImplementedError

    def cancel(self, handle: Any) -> None:
        """Ask the job to stop (it polls a flag and ends as cancelled)."""
        raise NotImplementedError

    def terminate(self, handle: Any) -> None:
        """The grace period is over: stop it now (SIGTERM or equivalent)."""
        raise NotImplementedError

    def kill(self, handle: Any) -> None:
        """It ignores terminate: kill it."""
        raise NotImplementedError

    def stop_all(self, handles: list[Any], grace: float) -> None:
        """Server shutdown: end every running job within about ``grace`` seconds."""
        raise NotImplementedError

    def pid(self, handle: Any) -> int | None:
        return None

    def close(self) -> None:
        pass


def make_executor(name: str, **options: Any) -> Executor:
    """``--executor`` → an Executor. ``ray`` without the ``cluster`` extra raises ExecutorUnavailable."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(**options)
    raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
