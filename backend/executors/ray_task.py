"""The Ray task that runs one job on whichever cluster node Ray picked (see ``backend.executors.ray``).

It runs inside a Ray worker process on that node: it writes the job's inputs (handed over through Ray's object
store) into a private temporary folder, starts ``python -m backend.worker`` there as a child process (so a crash
or an out-of-memory kill costs the child, not the Ray worker), waits for it and returns the job's outcome, log and
output folder as plain bytes, which Ray carries back to the server. The child pushes progress straight to the
server's PULL socket over ZeroMQ (TCP on the cluster network), exactly as a local worker does over IPC.

A cancel arrives as ``ray.cancel`` (a KeyboardInterrupt here): the child is asked to stop (its cancel file), then
terminated after the grace period, then killed. ``ray.cancel(force=True)`` kills this Ray worker; the child then
sees its stdin close and exits. Nothing here imports ``ray`` at module level or anything of the pipeline.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

POLL_S = 0.05
KILL_GRACE_S = 3.0
MAX_OUTPUT_FILES = 10_000
LOG_EVERY_S = 1.0
LOG_CHUNK = 256 << 10


class LogForwarder:
    """Sends what the worker appends to its log to the server (``{"kind": "log"}`` + the bytes) about once a
    second, so the ``log`` request shows a running Ray job's log as it does a local one's."""

    def __init__(self, spec: dict, path: Path):
        import zmq

        self.zmq, self.path, self.offset, self.last = zmq, path, 0, 0.0
        self.job, self.token = spec["job"], spec["token"]
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.SNDHWM, 100)
        self.push.setsockopt(zmq.LINGER, 2000)
        self.push.connect(spec["endpoint"])

    def pump(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < LOG_EVERY_S:
            return
        self.last = now
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(LOG_CHUNK)
        except OSError:
            return
        if not data:
            return
        header = json.dumps({"kind": "log", "job": self.job, "token": self.token, "offset": self.offset}).encode()
        try:
            self.push.send_multipart([header, data], flags=self.zmq.NOBLOCK)
            self.offset += len(data)
        except self.zmq.ZMQError:
            pass  # the server is busy: the rest comes with the task's return value

    def close(self) -> None:
        self.push.close()
        self.ctx.term()


def _safe_rel(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise ValueError(f"unsafe relative path {rel!r}")
    return p


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write ``{relative POSIX path: bytes}`` under ``root`` (refusing absolute paths and '..')."""
    for rel, data in files.items():
        target = root.joinpath(*_safe_rel(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_tree(root: Path, *, limit: int = MAX_OUTPUT_FILES) -> dict[str, bytes]:
    """``{relative POSIX path: bytes}`` of every regular file under ``root`` (symlinks skipped)."""
    out: dict[str, bytes] = {}
    if not root.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            out[p.relative_to(root).as_posix()] = p.read_bytes()
            if len(out) >= limit:
                return out
    return out


def _stop_child(proc: subprocess.Popen, cancel_file: Path, grace: float) -> None:
    cancel_file.touch()
    try:
        proc.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(KILL_GRACE_S)


def run_job_on_node(spec: dict, inputs: dict[str, bytes], grace: float) -> dict:
    """Run one job here; returns ``{node, device, exit_code, cancelled, outcome, log, files, seconds}`` (bytes for
    ``outcome`` (None when the worker wrote none), ``log`` (the part not already forwarded while it ran) and every
    file of the job's output folder)."""
    import ray

    t0 = time.time()
    node = ray.util.get_node_ip_address()
    gpu_ids = ray.get_gpu_ids()
    device = f"cuda:{gpu_ids[0]}" if gpu_ids else "cpu"
    tmp = Path(tempfile.mkdtemp(prefix=f"aligngs-{spec['job']}-"))
    try:
        os.chmod(tmp, 0o700)
        inputs_dir, out_dir = tmp / "inputs", tmp / "out"
        inputs_dir.mkdir()
        out_dir.mkdir()
        write_tree(inputs_dir, inputs)
        local = dict(spec, input_path=str(inputs_dir), out_dir=str(out_dir), log_path=str(tmp / "job.log"),
                     outcome_path=str(tmp / "outcome.json"), cancel_file=str(tmp / "cancel"),
                     device="cuda" if gpu_ids else "cpu", cuda_visible=None, node=node, node_device=device)
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(local))
        with open(tmp / "job.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "backend.worker", str(spec_path)], stdin=subprocess.PIPE,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        cancelled = False
        logs = LogForwarder(spec, tmp / "job.log")
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                logs.pump()
        except KeyboardInterrupt:  # ray.cancel(): ask the job to stop, then make it
            cancelled = True
            _stop_child(proc, tmp / "cancel", grace)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(KILL_GRACE_S)
            if proc.stdin is not None:
                proc.stdin.close()
            logs.close()
        outcome_path = tmp / "outcome.json"
        log_bytes = (tmp / "job.log").read_bytes() if (tmp / "job.log").is_file() else b""
        return {
            "node": node,
            "device": device,
            "exit_code": proc.returncode,
            "cancelled": cancelled,
            "outcome": outcome_path.read_bytes() if outcome_path.is_file() else None,
            "log": log_bytes[logs.offset:],  # what the forwarder has not sent yet
            "files": read_tree(out_dir),
            "seconds": time.time() - t0,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
