"""Helpers for the backend tests: real `python -m backend.serve` processes on ephemeral loopback ports, scenes."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RUNNER = str(Path(__file__).resolve().parent / "runner.py") + ":run"
PY = sys.executable


@dataclass
class ServerProc:
    proc: subprocess.Popen
    endpoint: str
    jobs_dir: Path
    log_path: Path
    args: list = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def launch(tmp: Path, *args: str, jobs_dir: Path | None = None, runner: str | None = RUNNER, wait: bool = True,
           bind: str = "tcp://127.0.0.1:*", env: dict | None = None) -> ServerProc:
    tmp.mkdir(parents=True, exist_ok=True)
    jobs_dir = jobs_dir or tmp / "jobs"
    n = len(list(tmp.glob("server*.log")))
    ready = tmp / f"ready{n}.json"
    log_path = tmp / f"server{n}.log"
    cmd = [PY, "-m", "backend.serve", "--bind", bind, "--jobs-dir", str(jobs_dir), "--device", "cpu",
           "--ready-file", str(ready), *args]
    if runner is not None:
        cmd += ["--runner", runner]
    e = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    e.update(env or {})
    logf = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, env=e)
    logf.close()
    sp = ServerProc(proc, "", jobs_dir, log_path, cmd)
    if not wait:
        return sp
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ready.exists():
            sp.endpoint = json.loads(ready.read_text())["endpoint"]
            return sp
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{sp.log()}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start:\n{sp.log()}")


def jpeg(seed: int, size=(32, 24)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def scene_files(seed: int = 0, n: int = 3, **control) -> dict[str, bytes]:
    files = {f"images/{i:04d}.jpg": jpeg(seed * 100 + i) for i in range(n)}
    if control:
        files["control.json"] = json.dumps(control).encode()
    return files


def wait_for(pred, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
