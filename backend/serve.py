"""``python -m backend.serve``: run the reconstruction server (flags: docs/protocol.md section 10)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .devices import make_slots
from .errors import BackendError
from .executors import EXECUTORS
from .protocol import Limits
from .server import ServerConfig, run_server
from .worker import DEFAULT_RUNNER, RUNNER_ENV

log = logging.getLogger("backend.serve")


def default_jobs_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aligngs" / "jobs"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m backend.serve", description="AlignGS reconstruction server (ZeroMQ ROUTER).")
    ap.add_argument("--bind", default="tcp://127.0.0.1:5555", help="ZeroMQ endpoint (tcp://HOST:PORT, tcp://HOST:*, ipc://PATH)")
    ap.add_argument("--jobs-dir", type=Path, default=None, help="job store (default: $XDG_CACHE_HOME/aligngs/jobs or ~/.cache/aligngs/jobs)")
    ap.add_argument("--workers", type=int, default=None, help="concurrent jobs (default: one per visible CUDA GPU, else 1)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="worker devices (auto: GPUs nvidia-smi lists, else CPU)")
    ap.add_argument("--max-images", type=int, default=2000, help="files per submit")
    ap.add_argument("--max-image-mb", type=float, default=64, help="MiB per submitted file")
    ap.add_argument("--max-message-mb", type=float, default=1024, help="MiB per message")
    ap.add_argument("--max-queue", type=int, default=100, help="queued jobs before submit answers queue_full")
    ap.add_argument("--cancel-grace", type=float, default=5.0, help="seconds from cancel to terminating the worker")
    ap.add_argument("--curve-secret-key", type=Path, default=None, help="server secret key file (enables CURVE)")
    ap.add_argument("--curve-authorized-dir", type=Path, default=None, help="folder of authorised client public keys (*.key)")
    ap.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without CURVE")
    ap.add_argument("--allow-server-paths", action="store_true", help="accept submits naming a folder on the server")
    ap.add_argument("--ready-file", type=Path, default=None, help="write {endpoint, pid} JSON there once bound")
    ap.add_argument("--runner", default=os.environ.get(RUNNER_ENV, DEFAULT_RUNNER),
                    help=f"job function, module:function or file.py:function (env {RUNNER_ENV}; for testing)")
    ap.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    ray = ap.add_argument_group("cluster execution (--executor ray; docs/cluster.md)")
    ray.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="where jobs run: local worker processes (default) or tasks on a Ray cluster (extra 'cluster')")
    ray.add_argument("--ray-address", default=None,
                     help="Ray cluster to join (default: $RAY_ADDRESS, else 'auto' = the cluster this machine belongs to; "
                          "'local' starts a private one-machine cluster)")
    ray.add_argument("--ray-cpus-per-job", type=float, default=1.0, help="CPUs a job reserves on a CPU cluster")
    ray.add_argument("--ray-retries", type=int, default=0,
                     help="automatic re-runs of a job whose node or worker died (0: the job fails with the reason)")
    ray.add_argument("--ray-progress-host", default=None,
                     help="address the server binds its progress socket on, reachable from every Ray node "
                          "(default: this machine's Ray node IP)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name, value, low in (("--max-images", args.max_images, 1), ("--max-image-mb", args.max_image_mb, 0.001),
                             ("--max-message-mb", args.max_message_mb, 0.001), ("--max-queue", args.max_queue, 1)):
        if value < low:
            print(f"error: {name} must be >= {low}", file=sys.stderr)
            return 2
    if args.ray_retries < 0 or args.ray_cpus_per_job <= 0:
        print("error: --ray-retries must be >= 0 and --ray-cpus-per-job > 0", file=sys.stderr)
        return 2
    try:
        slots = make_slots(args.device, args.workers) if args.executor == "local" else []
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = {}
    if args.executor == "ray":
        options = {"address": args.ray_address, "device": args.device, "workers": args.workers,
                   "cpus_per_job": args.ray_cpus_per_job, "retries": args.ray_retries,
                   "progress_host": args.ray_progress_host, "cancel_grace": args.cancel_grace}
    limits = Limits(
        max_files=args.max_images,
        max_file_bytes=int(args.max_image_mb * (1 << 20)),
        max_message_bytes=int(args.max_message_mb * (1 << 20)),
        max_queue=args.max_queue,
        server_paths=args.allow_server_paths,
    )
    cfg = ServerConfig(
        bind=args.bind,
        jobs_dir=args.jobs_dir or default_jobs_dir(),
        slots=slots,
        limits=limits,
        cancel_grace=args.cancel_grace,
        curve_secret_key=args.curve_secret_key,
        curve_authorized_dir=args.curve_authorized_dir,
        insecure=args.insecure,
        runner=args.runner,
        log_level=args.log_level,
        ready_file=args.ready_file,
        executor=args.executor,
        executor_options=options,
    )
    try:
        return run_server(cfg)
    except (BackendError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
