"""Shared test helpers (stdlib + numpy): tiny PNGs, a backend server process, running bpy driver scripts."""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Blender as a module; ALIGNGS_BPY_PYTHON points the tests at another one (e.g. a bpy 4.2 LTS venv).
BPY_PYTHON = Path(os.environ.get("ALIGNGS_BPY_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"


def write_png(path: Path, width: int = 16, height: int = 12, seed: int = 0) -> Path:
    """A valid 8-bit RGB PNG (no Pillow needed)."""
    rows = b"".join(b"\x00" + bytes(((x * 13 + y * 7 + seed * 31) % 256) for x in range(width * 3))
                    for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def make_image_folder(folder: Path, n: int, control: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_png(folder / f"frame_{i:04d}.png", seed=i)
    if control is not None:
        (folder / "control.json").write_text(json.dumps(control))
    return folder


class BackendServer:
    """``python -m backend.serve`` on an ephemeral loopback port (CPU), stopped by ``stop()``."""

    def __init__(self, jobs_dir: Path, runner: str | None = None, extra: list[str] | None = None):
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.parent.mkdir(parents=True, exist_ok=True)
        ready = self.jobs_dir.parent / f"ready-{os.getpid()}-{time.time_ns()}.json"
        cmd = [str(BACKEND_PYTHON), "-m", "backend.serve", "--bind", "tcp://127.0.0.1:*", "--jobs-dir",
               str(self.jobs_dir), "--device", "cpu", "--ready-file", str(ready), "--cancel-grace", "2",
               "--log-level", "WARNING"]
        if runner:
            cmd += ["--runner", runner]
        cmd += extra or []
        self.log_path = self.jobs_dir.parent / "server.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.time() + 60
        while not ready.is_file():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"backend.serve did not start:\n{self.log()}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.endpoint = info["endpoint"]
        self.address = self.endpoint.replace("tcp://", "")

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def run_driver(name: str, *args: str, zip_path: Path | None = None, timeout: float = 240) -> dict:
    """Run ``tests/addon/drivers/<name>.py`` under .venv-blender with a fresh BLENDER_USER_RESOURCES.

    The driver writes its findings as JSON to the path given by ``--out``; returns them. A crash fails the test
    with the driver's output.
    """
    tmp = Path(tempfile.mkdtemp(prefix="aligngs-bpy-"))
    out = tmp / "out.json"
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / "user"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    cmd = [str(BPY_PYTHON), str(HERE / "drivers" / f"{name}.py"), "--out", str(out)]
    if zip_path is not None:
        cmd += ["--zip", str(zip_path)]
    cmd += list(args)
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.is_file():
            raise AssertionError(f"driver {name} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n"
                                 f"{proc.stderr[-6000:]}")
        data = json.loads(out.read_text())
        data["_stdout"] = proc.stdout[-4000:]
        return data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def have_backend() -> bool:
    return BACKEND_PYTHON.is_file() and (REPO / "backend" / "serve.py").is_file()


__all__ = ["REPO", "BPY_PYTHON", "write_png", "make_image_folder", "BackendServer", "run_driver", "have_backend"]
