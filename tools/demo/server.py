"""A ``python -m backend.serve`` child process on an ephemeral loopback port, as a context manager."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .paths import REPO, repo_file

log = logging.getLogger(__name__)


class DemoServerError(RuntimeError):
    """The backend did not start (the message carries the end of its log)."""


class BackendServer:
    """``backend.serve`` on ``tcp://127.0.0.1:*`` (CPU workers), jobs under ``jobs_dir``, log in ``log_path``.

    ``start()`` waits for the server's ready file; ``stop()`` sends SIGTERM (the server ends its workers), then
    kills the process group if it has not exited within ``stop_timeout_s``. Use it as ``with BackendServer(...)``.
    """

    def __init__(self, jobs_dir: Path, log_path: Path, *, python: str | None = None, start_timeout_s: float = 90.0,
                 stop_timeout_s: float = 20.0):
        self.jobs_dir = Path(jobs_dir)
        self.log_path = Path(log_path)
        self.python = python or sys.executable
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.ready_file = self.log_path.with_name("server-ready.json")
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.address = ""
        self._log = None

    def start(self) -> "BackendServer":
        repo_file("backend/serve.py")
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        cmd = [self.python, "-m", "backend.serve", "--bind", "tcp://127.0.0.1:*", "--jobs-dir", str(self.jobs_dir),
               "--device", "cpu", "--workers", "1", "--ready-file", str(self.ready_file), "--log-level", "INFO"]
        self._log = open(self.log_path, "w")
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while not self.ready_file.is_file():
            if self.proc.poll() is not None:
                self.stop()
                raise DemoServerError(f"backend.serve exited with code {self.proc.returncode} before it was ready "
                                  f"(log {self.log_path}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DemoServerError(f"backend.serve was not ready after {self.start_timeout_s:.0f} s "
                                  f"(log {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.05)
        try:
            info = json.loads(self.ready_file.read_text())
            self.endpoint = info["endpoint"]
        except (OSError, ValueError, KeyError) as e:
            self.stop()
            raise DemoServerError(f"{self.ready_file}: unreadable ready file ({e})") from None
        self.address = self.endpoint.removeprefix("tcp://")
        log.info("backend.serve pid %d listening on %s", self.proc.pid, self.endpoint)
        return self

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text()[-n:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """Stop the server (idempotent); returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("backend.serve did not stop within %.0f s; killing it", self.stop_timeout_s)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        try:  # the server is gone; make sure no worker of its process group outlives it
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._log is not None:
            self._log.close()
            self._log = None
        self.ready_file.unlink(missing_ok=True)
        return proc.returncode

    def __enter__(self) -> "BackendServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
