"""``python -m tools.demo [--out out/demo] [--sample samples/room] [--no-render] [--iterations N --resolution PX]``

Starts ``backend.serve`` (CPU, loopback), builds the Blender extension, runs headless Blender that installs it and
clicks Reconstruct Scene on the sample, then saves ``<out>/scene.blend``, renders ``<out>/scene.png`` and writes
``<out>/scene_semantic.png`` (RGB mesh | coloured by class with a legend | one class collection hidden). Prints a
summary; exits 1 with the reason when a step fails, 2 for bad arguments or a missing setup, 130 when interrupted.
The server is stopped in every case.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from aligngs.config import PRESETS
from .addon import build_zip
from .blender_run import BlenderJob, BlenderSessionError, run_blender_session
from .paths import REPO, DemoSetupError, bpy_python
from .picture import compose
from .server import BackendServer, DemoServerError
from .summary import DemoRun, class_names, format_summary, job_files

log = logging.getLogger("tools.demo")
# The fast preset (600 iterations at 160 px) trains for about 8 minutes on 2 idle CPU cores (samples/room,
# aligngs mode); the demo sends a shorter schedule through the add-on's Advanced settings to stay near a minute.
DEMO_ITERATIONS = 120
DEMO_RESOLUTION = 112


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tools.demo", description="Reconstruct the bundled sample room end to end: backend server, Blender add-on, scene.blend + scene.png.")
    ap.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    ap.add_argument("--sample", type=Path, default=REPO / "samples" / "room",
                    help="image folder to reconstruct (default: the bundled samples/room)")
    ap.add_argument("--preset", default="fast", choices=sorted(PRESETS), help="quality preset (default: fast)")
    ap.add_argument("--iterations", type=int, default=DEMO_ITERATIONS,
                    help=f"training iterations, sent as the add-on's Advanced settings (default: {DEMO_ITERATIONS})")
    ap.add_argument("--resolution", type=int, default=DEMO_RESOLUTION,
                    help=f"longest training image side in px, Advanced settings (default: {DEMO_RESOLUTION})")
    ap.add_argument("--plain-preset", action="store_true",
                    help="send the preset as it is, without --iterations/--resolution (fast: 600 iterations at "
                         "160 px, about 8 minutes of training on 2 CPU cores)")
    ap.add_argument("--no-render", action="store_true", help="save scene.blend but do not render scene.png")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel for scene.png (default: 16)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the reconstruction")
    ap.add_argument("--blender-python", default=None,
                    help="Blender-as-a-module Python (default: $ALIGNGS_BPY_PYTHON or .venv-blender/bin/python)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return ap


def advanced_settings(preset: str, iterations: int | None, resolution: int | None) -> tuple[int | None, int | None]:
    """(iterations, resolution) for the add-on's Advanced panel, or (None, None) to send the plain preset."""
    if iterations is None and resolution is None:
        return None, None
    p = PRESETS[preset]
    it = iterations if iterations is not None else (p.get("train") or {}).get("iterations", 3000)
    res = resolution if resolution is not None else (p.get("data") or {}).get("resolution") or 0
    return it, res


class _Terminated(Exception):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def run(args: argparse.Namespace) -> DemoRun:
    t_start = time.monotonic()
    out = args.out.resolve()
    sample = args.sample.resolve()
    if not sample.is_dir():
        raise DemoSetupError(f"--sample {args.sample}: not a folder")
    bpy_py = bpy_python(args.blender_python)
    iterations, resolution = (None, None) if args.plain_preset else \
        advanced_settings(args.preset, args.iterations, args.resolution)
    out.mkdir(parents=True, exist_ok=True)
    host: dict[str, float] = {}
    png = None if args.no_render else out / "scene.png"
    blend = out / "scene.blend"
    for stale in (blend, out / "scene.png", out / "scene_semantic.png", out / "scene_classes.png",
                  out / "scene_hidden.png"):
        stale.unlink(missing_ok=True)
    t0 = time.monotonic()
    with BackendServer(out / "jobs", out / "server.log") as srv:
        host["server"] = time.monotonic() - t0
        log.info("backend.serve ready at %s (log %s)", srv.endpoint, srv.log_path)
        t0 = time.monotonic()
        zip_path = build_zip(out / "addon")
        host["zip"] = time.monotonic() - t0
        log.info("extension zip %s", zip_path)
        job = BlenderJob(zip_path=zip_path, address=srv.address, images=sample, blend=blend, png=png,
                         preset=args.preset, iterations=iterations, resolution=resolution, samples=args.samples,
                         timeout_s=args.timeout)
        t0 = time.monotonic()
        report = run_blender_session(job, bpy_python=bpy_py, user_resources=out / "blender-user",
                                     log_path=out / "blender.log", progress=lambda text: log.info("blender: %s", text))
        host["blender"] = time.monotonic() - t0
        conn = report["connection"]
        server = f"backend.serve {conn['server']} · {conn['device']} @ {srv.endpoint}"
    semantic = report.get("semantic")
    side_by_side = None
    if png is not None and semantic:
        side_by_side = compose(png, Path(semantic["classes_png"]),
                               Path(semantic["hidden_png"]) if semantic.get("hidden_png") else None,
                               semantic["legend"], semantic.get("hidden_class"), out / "scene_semantic.png")
    code = srv.proc.returncode
    if code not in (0, None):
        log.warning("backend.serve exited with code %s (log %s)", code, srv.log_path)
    host["total"] = time.monotonic() - t_start
    run_ = DemoRun(sample=sample, out=out, server=server, blender=report, host_timings=host)
    run_.files = [p for p in (blend, png, side_by_side) if p is not None] + job_files(run_, out / "jobs")
    return run_


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except DemoSetupError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    except DemoServerError as e:
        print(f"demo failed: the backend server did not start: {e}", file=sys.stderr)
        return 1
    except BlenderSessionError as e:
        print(f"demo failed in Blender ({e.stage}): {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated):
        print("demo interrupted; the server was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_summary(result))
    if len(class_names(result)) < 2:
        print("demo: fewer than 2 classes were found; the reconstruction looks wrong", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
