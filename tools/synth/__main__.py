"""CLI: ``.venv-blender/bin/python -m tools.synth --out DIR --seed S [--views 32 ...]`` (needs bpy)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.synth",
                                description="Render a seeded synthetic indoor room with full ground truth.")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--views", type=int, default=32)
    p.add_argument("--test-every", type=int, default=4, help="view i is a test view if i %% N == 0 (0: none)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    p.add_argument("--no-denoise", action="store_true", help="disable the OpenImageDenoise pass")
    p.add_argument("--threads", type=int, default=0, help="render threads (0: automatic)")
    p.add_argument("--hfov", type=float, default=66.0, help="horizontal field of view, degrees")
    p.add_argument("--keep-exr", action="store_true", help="also keep the multilayer EXRs under OUT/exr/")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="aligngs_bl_res_"))
    try:
        import bpy  # noqa: F401
    except ImportError:
        sys.stderr.write("tools.synth needs Blender as a Python module (bpy); run it with .venv-blender/bin/python\n")
        return 2
    from tools.synth.generate import SynthConfig, generate

    cfg = SynthConfig(out=args.out, seed=args.seed, views=args.views, test_every=args.test_every,
                      width=args.width, height=args.height, samples=args.samples, denoise=not args.no_denoise,
                      threads=args.threads, hfov_deg=args.hfov, keep_exr=args.keep_exr)
    summary = generate(cfg)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
