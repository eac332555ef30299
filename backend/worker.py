"""The job worker: runs in its own process, one process per job.

``main(spec, cancel_event)`` (the local executor spawns it with ``multiprocessing``) and ``python -m backend.worker
SPEC.json`` (the Ray executor's task starts it with ``subprocess`` on whichever node runs the job) do the same: set
the GPU visibility, send the output to the job log, import the job function (``runner``, default
``aligngs.pipeline:reconstruct``), run it with a progress callback that pushes JSON + an optional raw preview frame
to the server over a ZeroMQ PUSH socket, and write ``outcome.json`` (atomically) when the function returns or raises.
A crash, an OOM kill or a ``terminate`` therefore costs only this job: the server sees the process exit without an
outcome and marks the job failed. The process exits by itself if its parent dies (the server, or the Ray task).
In the command-line form a cancel is the file ``spec["cancel_file"]`` appearing, and the parent is watched through
stdin (EOF = the parent is gone).
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aligngs.wire import PointsPreview, encode_points

from .errors import job_failure
from .jobs import write_json_atomic
from .protocol import encode_header, json_safe

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "aligngs.pipeline:reconstruct"
RUNNER_ENV = "ALIGNGS_BACKEND_RUNNER"
PROGRESS_INTERVAL_S = 0.1
PREVIEW_INTERVAL_S = 1.0
PREVIEW_MAX_SIDE = 256
POINTS_MIN_INTERVAL_S = 0.5  # the trainer paces point previews (TrainConfig.preview_every); this only caps bursts
NO_CLASS_COLOR = (128, 128, 128)
STAGES = ("load", "poses", "priors", "init", "train", "mesh", "semantics", "export")
STAGE_WEIGHTS = (0.02, 0.08, 0.10, 0.02, 0.60, 0.10, 0.05, 0.03)


def load_runner(path: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function`` (from the server's command line, never the wire)."""
    mod_name, sep, func = path.rpartition(":")
    if not sep or not mod_name or not func:
        raise ValueError(f"runner {path!r}: expected 'module:function' or 'file.py:function'")
    if mod_name.endswith(".py") or os.sep in mod_name or "/" in mod_name:
        file = Path(mod_name)
        spec = importlib.util.spec_from_file_location(f"_aligngs_runner_{file.stem}", file)
        if spec is None or spec.loader is None:
            raise ValueError(f"runner {path!r}: cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod_name)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ValueError(f"runner {path!r}: {func!r} is not a function of {mod_name}")
    return fn


def overall_fraction(stage: str, fraction: float) -> float:
    if stage not in STAGES:
        return float(min(max(fraction, 0.0), 1.0))
    i = STAGES.index(stage)
    return float(min(1.0, sum(STAGE_WEIGHTS[:i]) + STAGE_WEIGHTS[i] * min(max(fraction, 0.0), 1.0)))


def progress_body(p: Any) -> dict:
    """The wire form of an aligngs.progress.Progress (protocol section 6.1, without preview)."""
    body = json_safe(p.to_dict())
    stage = body.get("stage")
    body["stage_index"] = STAGES.index(stage) if stage in STAGES else None
    body["stage_count"] = len(STAGES)
    body["overall"] = overall_fraction(stage, body.get("fraction") or 0.0)
    return body


def shrink_preview(img: Any) -> np.ndarray | None:
    """uint8 [h,w,3] with the longest side <= 256 (nearest-neighbour stride), or None if not an RGB image."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        return None
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a.astype(np.float32)) * (255.0 if a.dtype.kind == "f" else 1.0), 0, 255).astype(np.uint8)
    step = int(np.ceil(max(a.shape[0], a.shape[1]) / PREVIEW_MAX_SIDE))
    if step > 1:
        a = a[::step, ::step]
    return np.ascontiguousarray(a)


def wire_points(pv: Any) -> PointsPreview | None:
    """A pipeline ``PointPreview`` (class ids) as the wire's ``PointsPreview`` (class colours), or None."""
    if pv is None:
        return None
    from aligngs.priors.ade20k import NUM_CLASSES, colorize

    class_colors = None
    if pv.class_ids is not None:
        ids = np.asarray(pv.class_ids).astype(np.int16)
        unknown = ids >= NUM_CLASSES  # 255: no class yet
        class_colors = colorize(np.where(unknown, -1, ids))
        class_colors[unknown] = NO_CLASS_COLOR
    return PointsPreview(np.asarray(pv.positions, np.float16), np.asarray(pv.colors, np.uint8), class_colors,
                         int(pv.total), pv.up)


class ProgressSender:
    """The progress callback handed to the job function: throttled, never blocks, never raises."""

    def __init__(self, socket, job: str, token: str):
        self.socket, self.job, self.token = socket, job, token
        self.last_stage: str | None = None
        self.last_sent = 0.0
        self.last_preview = 0.0
        self.last_points = -POINTS_MIN_INTERVAL_S

    def __call__(self, p: Any) -> None:
        try:
            now = time.monotonic()
            stage_change = p.stage != self.last_stage
            if not (stage_change or p.fraction >= 1.0 or now - self.last_sent >= PROGRESS_INTERVAL_S):
                return
            self.last_stage, self.last_sent = p.stage, now
            header = {"kind": "progress", "job": self.job, "token": self.token, "progress": progress_body(p), "preview": None}
            frames = []
            if getattr(p, "preview", None) is not None and (now - self.last_preview >= PREVIEW_INTERVAL_S or stage_change):
                img = shrink_preview(p.preview)
                if img is not None:
                    self.last_preview = now
                    header["preview"] = {"shape": list(img.shape)}
                    frames.append(img.tobytes())
            points = wire_points(getattr(p, "points", None))
            if points is not None and now - self.last_points >= POINTS_MIN_INTERVAL_S:
                self.last_points = now
                header["points"], point_frames = encode_points(points, first_frame=1 + len(frames))
                frames.extend(point_frames)
            import zmq

            self.socket.send_multipart([encode_header(header), *frames], flags=zmq.NOBLOCK)
        except Exception as e:  # a full queue or a broken preview must never break the job
            log.debug("progress not sent: %s", e)


def _watch_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait():
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(70)  # the server is gone: nobody will collect this job

    threading.Thread(target=wait, name="parent-watch", daemon=True).start()


def _redirect_output(log_path: Path) -> None:
    """Send this process's stdout/stderr (Python and C level) to the job log."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(spec: dict, cancel_event: Any) -> None:
    """Spawn target. ``spec``: job, input_path, out_dir, settings, runner, endpoint, token, device, cuda_visible,
    log_path, outcome_path, log_level."""
    _setup(spec)
    _watch_parent()
    _run_and_report(spec, cancel_event.is_set)


def _setup(spec: dict) -> None:
    if spec.get("cuda_visible") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec["cuda_visible"]
    _redirect_output(Path(spec["log_path"]))
    logging.basicConfig(
        level=getattr(logging, str(spec.get("log_level", "INFO")).upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s [job {spec['job']}] %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _run_and_report(spec: dict, should_cancel: Callable[[], bool]) -> None:
    import zmq

    job = spec["job"]
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 1000)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect(spec["endpoint"])
    sender = ProgressSender(push, job, spec["token"])
    if spec.get("node"):  # on a cluster node: tell the server where the job runs
        try:
            hello = {"kind": "started", "job": job, "token": spec["token"], "node": spec["node"],
                     "device": spec.get("node_device")}
            push.send_multipart([encode_header(hello)], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
    t0 = time.time()
    outcome = run_job(spec, sender, should_cancel)
    outcome["seconds"] = time.time() - t0
    write_json_atomic(Path(spec["outcome_path"]), json_safe(outcome))
    log.info("job %s: finished with %s in %.1f s", job, outcome["status"], outcome["seconds"])
    try:
        bye = {"kind": "exit", "job": job, "token": spec["token"], "status": outcome["status"]}
        push.send_multipart([encode_header(bye)], flags=zmq.NOBLOCK)
    except zmq.ZMQError:
        pass
    push.close()
    ctx.term()


def _watch_stdin() -> None:
    """Command-line form: exit when the parent closes our stdin (it died, or it was killed)."""

    def wait():
        try:  # raw reads on fd 0 (the buffered reader's lock would abort the interpreter's shutdown)
            while os.read(0, 1):
                pass
        except OSError:
            pass
        os._exit(70)

    threading.Thread(target=wait, name="parent-watch", daemon=True).start()


def cli(argv: list[str] | None = None) -> int:
    """``python -m backend.worker SPEC.json``: run one job described by a JSON spec (see :func:`main`), plus
    ``cancel_file`` (the job stops when that file exists)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m backend.worker SPEC.json", file=sys.stderr)
        return 2
    import json

    spec = json.loads(Path(args[0]).read_text())
    cancel_file = Path(spec["cancel_file"])
    _setup(spec)
    _watch_stdin()
    _run_and_report(spec, cancel_file.exists)
    return 0


def run_job(spec: dict, progress: Callable, should_cancel: Callable[[], bool]) -> dict:
    """Run the job function; the outcome as a JSON-safe dict (status done / cancelled / error).

    An error outcome carries ``code`` and ``message`` from :func:`backend.errors.job_failure`: ``bad_input`` and
    ``missing_model`` are user errors whose message says what to fix; ``job_failed`` is anything else (its
    traceback goes to the job log, never to the client).
    """
    from aligngs.config import PipelineConfig
    from aligngs.progress import Cancelled

    job = spec["job"]
    try:
        fn = load_runner(spec["runner"])
        cfg = PipelineConfig.from_dict(spec["settings"])
        if cfg.train.device == "auto":
            cfg.train.device = spec["device"]
        out_dir = Path(spec["out_dir"])
        out_dir.mkdir(parents=True, exist_ok=True)
        log.info("job %s: running %s on %s (input %s)", job, spec["runner"], spec["device"], spec["input_path"])
        summary = fn(Path(spec["input_path"]), out_dir, cfg, progress=progress, should_cancel=should_cancel)
        return {"status": "done", "summary": summary if isinstance(summary, dict) else {"value": summary}}
    except Cancelled as e:
        log.info("job %s: cancelled (%s)", job, e)
        return {"status": "cancelled"}
    except Exception as e:
        failure = job_failure(e)
        if failure["code"] == "job_failed":
            log.error("job %s: failed:\n%s", job, traceback.format_exc())
        else:
            log.error("job %s: %s: %s", job, failure["code"], e)
        return {"status": "error", **failure}


if __name__ == "__main__":
    sys.exit(cli())
