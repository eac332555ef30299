"""The short human summary the demo prints at the end (plain text from the run's facts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PIPELINE_STAGES = ("load", "priors", "init", "train", "mesh", "export", "total")


@dataclass
class DemoRun:
    """What one demo run produced: the Blender session's report plus the host-side timings and paths."""

    sample: Path
    out: Path
    server: str  # "AlignGS 0.1.0 · cpu @ tcp://127.0.0.1:40123"
    blender: dict  # blender_session's report (ok, connection, reconstruct, render, blender_timings)
    host_timings: dict[str, float] = field(default_factory=dict)  # server start, zip build, blender, total
    files: list[Path] = field(default_factory=list)


def _s(seconds) -> str:
    return f"{float(seconds):.1f} s"


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def class_names(run: DemoRun) -> list[str]:
    return [c["name"] for c in run.blender["reconstruct"]["classes"]]


def job_files(run: DemoRun, jobs_dir: Path) -> list[Path]:
    """The job's output files the server reported (``summary.files``), under ``jobs_dir/<job>/out``."""
    rec = run.blender["reconstruct"]
    files = (rec.get("summary") or {}).get("files") or {}
    out = Path(jobs_dir) / rec["job_id"] / "out"
    return [out / rel for rel in files.values() if isinstance(rel, str)]


def format_summary(run: DemoRun) -> str:
    rec = run.blender["reconstruct"]
    summ = rec.get("summary") or {}
    counts = summ.get("counts") or {}
    views = summ.get("views") or {}
    lines = [f"AlignGS demo: {_rel(run.sample)} -> {_rel(run.out)}  ({_s(run.host_timings.get('total', 0))} in all)",
             f"  server    {run.server}"]
    job = f"  job       {rec['job_id']}"
    if views:
        job += f": {len(views.get('train', []))} training / {len(views.get('test', []))} test views"
    if counts.get("gaussians"):
        job += f", {counts['gaussians']:,} Gaussians"
    cfg = (summ.get("config") or {})
    train_cfg = cfg.get("train") or {}
    if train_cfg.get("iterations"):
        job += f", {train_cfg['iterations']} iterations at {(cfg.get('data') or {}).get('resolution')} px"
    lines.append(job)
    lines.append(f"  imported  {rec['n_points']:,} points, {rec['n_faces']:,} faces, {rec['n_cameras']} cameras "
                 f"-> collection '{rec['root']}'")
    classes = sorted(rec["classes"], key=lambda c: -(c["n_points"] + c["n_faces"]))
    lines.append(f"  classes   {len(classes)} found: " + ", ".join(
        f"{c['name']} ({c['n_points']:,} pts / {c['n_faces']:,} faces"
        + (f", {c['instances']} instances)" if c["instances"] > 1 else ")") for c in classes))
    timings = summ.get("timings") or {}
    stages = [f"{k} {_s(timings[k])}" for k in PIPELINE_STAGES if k in timings]
    if stages:
        lines.append("  pipeline  " + " · ".join(stages))
    bt = run.blender.get("blender_timings") or {}
    host = run.host_timings
    demo = [f"start server {_s(host['server'])}" if "server" in host else "",
            f"build add-on {_s(host['zip'])}" if "zip" in host else "",
            f"install {_s(bt['install'])}" if "install" in bt else "",
            f"reconstruct + import {_s(bt['reconstruct_and_import'])}" if "reconstruct_and_import" in bt else "",
            f"save {_s(bt['save'])}" if "save" in bt else "",
            f"render {_s(bt['render'])}" if "render" in bt else "",
            f"class renders {_s(bt['render_semantic'])}" if "render_semantic" in bt else ""]
    lines.append("  demo      " + " · ".join(d for d in demo if d))
    render = run.blender.get("render")
    if render and "render" in bt:
        w, h = render["resolution"]
        lines.append(f"  render    Cycles CPU {w}x{h}, {render['samples']} spp, from camera '{render['camera']}'")
    sem = run.blender.get("semantic")
    if sem and sem.get("hidden_class"):
        lines.append(f"  picture   RGB | by class ({len(sem['legend'])} in the legend) | '{sem['hidden_class']}' hidden")
    lines.append("  files     " + "\n            ".join(_rel(p) for p in run.files))
    for w in rec.get("warnings") or []:
        lines.append(f"  warning   {w}")
    return "\n".join(lines)
