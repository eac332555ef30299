"""Run ``blender_session.py`` under Blender-as-a-module in a subprocess and return its JSON outcome."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO

log = logging.getLogger(__name__)
SCRIPT = Path(__file__).with_name("blender_session.py")
PROGRESS_PREFIX = "aligngs-demo:"  # blender_session.PROGRESS_PREFIX (that file cannot be imported here: it needs bpy)


class BlenderSessionError(RuntimeError):
    """The Blender side failed; ``stage`` says where (install, connect, submit, reconstruct, render, ...)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


@dataclass
class BlenderJob:
    zip_path: Path
    address: str
    images: Path
    blend: Path
    png: Path | None
    preset: str = "fast"
    iterations: int | None = None
    resolution: int | None = None
    samples: int = 16
    timeout_s: float = 1800.0


def _copy_output(stream, logf, progress) -> None:
    for line in stream:
        logf.write(line)
        logf.flush()
        if line.startswith(PROGRESS_PREFIX) and progress is not None:
            progress(line[len(PROGRESS_PREFIX):].strip())


def run_blender_session(job: BlenderJob, *, bpy_python: Path, user_resources: Path, log_path: Path,
                        progress=None) -> dict:
    """Run the session; ``progress(text)`` gets its progress lines. Returns the report (``ok`` is True)."""
    report = log_path.with_name("blender-report.json")
    report.unlink(missing_ok=True)
    cmd = [str(bpy_python), str(SCRIPT), "--zip", str(job.zip_path), "--address", job.address,
           "--images", str(job.images), "--report", str(report), "--blend", str(job.blend),
           "--preset", job.preset, "--samples", str(job.samples), "--timeout", str(job.timeout_s)]
    if job.png is not None:
        cmd += ["--png", str(job.png)]
    if job.iterations is not None:
        cmd += ["--iterations", str(job.iterations), "--resolution", str(job.resolution)]
    user_resources.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(user_resources), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    limit_s = job.timeout_s + 600  # the session's own reconstruction timeout, plus install/save/render
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True)
        reader = threading.Thread(target=_copy_output, args=(proc.stdout, logf, progress), daemon=True)
        reader.start()
        try:
            code = proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            raise BlenderSessionError("blender", f"the Blender session ran past {limit_s:.0f} s "
                                                 f"(log {log_path})") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            reader.join(10)
    try:
        out = json.loads(report.read_text())
    except (OSError, ValueError):
        tail = log_path.read_text()[-3000:] if log_path.is_file() else ""
        raise BlenderSessionError("blender", f"Blender exited with code {code} without a report "
                                             f"(log {log_path}):\n{tail}") from None
    if not out.get("ok") or code != 0:
        detail = out.get("traceback") or ""
        raise BlenderSessionError(out.get("stage", "blender"), f"{out.get('error', f'exit code {code}')}\n{detail}"
                                  .rstrip() + f"\n(Blender log: {log_path})")
    return out
