"""Command line: ``aligngs reconstruct INPUT --out DIR`` and ``aligngs models list|download``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config import Device, Mode, PoseMethod, SemanticTeacherName, SplitMode, choices
from .config import DEFAULT_PRESET, deep_merge, preset, preset_names, resolve_preset


def build_config(args) -> "PipelineConfig":  # noqa: F821
    overrides: dict = {}
    if args.config:
        path = Path(args.config)
        try:
            overrides = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"error: config file {path}: {e}")
    cli: dict = {"data": {}, "train": {"semantics": {}}, "mesh": {}}
    if args.mode:
        cli["mode"] = args.mode
    if args.iterations is not None:
        cli["train"]["iterations"] = args.iterations
    if args.resolution is not None:
        cli["data"]["resolution"] = args.resolution
    if args.device:
        cli["train"]["device"] = args.device
    if args.poses:
        cli["data"]["poses"] = args.poses
    if args.max_views is not None:
        cli["data"]["max_train_views"] = args.max_views
    if args.test_every is not None:
        cli["data"]["test_every"] = args.test_every
        cli["data"]["split"] = "every"  # an explicit --test-every is the split the user asked for
    if args.split:
        cli["data"]["split"] = args.split
    if args.no_semantics:
        cli["train"]["semantics"]["enabled"] = False
    if args.teacher:
        cli["train"]["semantics"]["teacher"] = args.teacher
    if args.no_mesh:
        cli["mesh"]["enabled"] = False
    return preset(args.preset, deep_merge(overrides, cli))


def cmd_reconstruct(args) -> int:
    from tqdm import tqdm

    from .data.errors import DataError
    from .pipeline import reconstruct
    from .progress import Progress

    try:
        cfg = build_config(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bars: dict[str, tqdm] = {}

    def on_progress(p: Progress) -> None:
        bar = bars.get(p.stage)
        if bar is None:
            total = p.total or 100
            bar = bars[p.stage] = tqdm(total=total, desc=f"{p.stage:>9}", unit="it" if p.total else "%", leave=True,
                                       dynamic_ncols=True, disable=args.quiet)
        target = p.iteration if p.iteration is not None else round(p.fraction * bar.total)
        bar.update(max(0, target - bar.n))
        if p.losses:
            bar.set_postfix({"loss": f"{p.losses.get('total', 0):.4f}", "gs": p.n_gaussians}, refresh=False)

    try:
        report = reconstruct(args.input, args.out, cfg, progress=on_progress)
    except (DataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        for b in bars.values():
            b.close()
    print(summary(report, Path(args.out), preset=resolve_preset(args.preset, cfg.train.device)))
    return 0


def summary(report: dict, out: Path, preset: str | None = None) -> str:
    m, c, t = report.get("metrics", {}), report["counts"], report["timings"]
    lines = [
        "",
        f"AlignGS ({report['mode']}) on {report['input']}  [{report['device']}]",
        f"  views       {len(report['views']['train'])} train / {len(report['views']['test'])} test; init from {report['init']['source']} ({report['init']['points']} points)",
        *([f"  preset      {preset}, {report['config']['train']['iterations']} iterations"] if preset else []),
        f"  gaussians   {c['gaussians']:,}",
        f"  mesh        {c['mesh_vertices']:,} vertices, {c['mesh_faces']:,} faces; {c['classes']} classes",
    ]
    if "psnr" in m:
        lines.append(f"  test        PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}" + (f", mIoU {m['miou']:.3f}" if "miou" in m else ""))
    lines.append("  time        " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))
    lines.append(f"  outputs     {out}/ (" + ", ".join(report["files"].values()) + ")")
    return "\n".join(lines)


def cmd_models(args) -> int:
    from .priors import models

    if args.action == "list":
        defaults = set(models.DEFAULT_MODELS.values())
        print(f"{'checkpoint':46s} {'task':9s} licence; download size")
        for info in models.list_models():
            flags = ("default " if info.id in defaults else "") + ("NON-COMMERCIAL" if info.non_commercial else "")
            print(f"{info.id:46s} {info.task:9s} {info.licence}; {info.size}" + (f"  [{flags.strip()}]" if flags else ""))
        return 0
    ids = args.ids or list(models.DEFAULT_MODELS.values())
    try:
        paths = models.download(ids, cache_dir=args.cache_dir)
    except Exception as e:  # no network, unknown repository, gated model: say which and why
        print(f"error: could not download {', '.join(ids)}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for mid, path in paths.items():
        print(f"{mid}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="aligngs", description="AlignGS indoor reconstruction")
    ap.add_argument("--log-level", default="WARNING")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reconstruct", help="reconstruct a scene from images (+ poses / depth if present)")
    r.add_argument("input", help="image folder, transforms.json folder, COLMAP model or RGB-D frame folder")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--preset", default=DEFAULT_PRESET, choices=preset_names(),
                   help="auto (default): balanced on CUDA, fast on a CPU; sparse: fast for a handful of photos (8-16)")
    r.add_argument("--mode", choices=choices(Mode))
    r.add_argument("--config", help="JSON file of PipelineConfig overrides")
    r.add_argument("--iterations", type=int)
    r.add_argument("--resolution", type=int, help="longest image side in pixels")
    r.add_argument("--device", help=" | ".join(choices(Device)) + " (or a torch device such as cuda:1)")
    r.add_argument("--poses", choices=choices(PoseMethod))
    r.add_argument("--teacher", choices=choices(SemanticTeacherName), help="semantic teacher (default: auto)")
    r.add_argument("--max-views", type=int, help="sparse-view training: at most this many training views")
    r.add_argument("--test-every", type=int, help="every k-th view is held out for testing (0 = none; implies --split every)")
    r.add_argument("--split", choices=choices(SplitMode),
                   help="auto (default): the input's own train/test split when it declares one (nerfstudio "
                        "test_filenames / val_filenames), else --test-every; scene: require it; every: --test-every")
    r.add_argument("--no-semantics", action="store_true")
    r.add_argument("--no-mesh", action="store_true")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_reconstruct)
    m = sub.add_parser("models", help="list or download teacher checkpoints (needs internet)")
    m.add_argument("action", choices=["list", "download"])
    m.add_argument("ids", nargs="*")
    m.add_argument("--cache-dir")
    m.set_defaults(func=cmd_models)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
