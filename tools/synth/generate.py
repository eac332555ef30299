"""Render a seeded synthetic room to a nerfstudio-style folder with full ground truth (needs bpy).

See :mod:`tools.synth` for the output format.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from aligngs.priors.ade20k import CLASS_NAMES
from tools.synth.camera import camera_loop, intrinsics
from tools.synth.geometry import merge
from tools.synth.layout import RoomLayout, make_room
from tools.synth.ply import write_labeled_ply

log = logging.getLogger(__name__)

__all__ = ["SynthConfig", "generate", "write_ground_truth", "LabelConsistencyError"]

DEPTH_SCALE = 1000.0  # PNG value per metre (millimetres)
_NO_HIT = 1e5  # Cycles writes 1e10 in the Z pass where a ray hits nothing


class LabelConsistencyError(RuntimeError):
    """The object-index and material-index passes disagree about a pixel's class."""


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    seed: int = 0
    views: int = 32
    test_every: int = 4  # view i is a test view when i % test_every == 0 (0: no test views)
    width: int = 320
    height: int = 240
    samples: int = 16
    denoise: bool = True
    threads: int = 0  # 0 = Blender's automatic choice
    hfov_deg: float = 66.0
    keep_exr: bool = False

    def __post_init__(self) -> None:
        for k in ("views", "width", "height", "samples"):
            if getattr(self, k) < 1:
                raise ValueError(f"SynthConfig.{k} must be >= 1, got {getattr(self, k)}")
        if self.test_every < 0:
            raise ValueError(f"SynthConfig.test_every must be >= 0, got {self.test_every}")
        if not 10.0 < self.hfov_deg < 150.0:
            raise ValueError(f"SynthConfig.hfov_deg must be in (10, 150), got {self.hfov_deg}")


def _split(i: int, test_every: int) -> str:
    return "test" if test_every > 0 and i % test_every == 0 else "train"


def write_ground_truth(layout: RoomLayout, out: Path) -> dict:
    """``gt_mesh.ply`` (world coordinates, per-vertex class_id / instance_id) and ``scene.json``."""
    meshes, cls, inst = [], [], []
    objects = []
    for o in layout.objects:
        meshes.append(o.mesh)
        cls.append(np.full(len(o.mesh.vertices), o.class_id, np.int32))
        inst.append(np.full(len(o.mesh.vertices), o.instance_id, np.int32))
        lo, hi = o.mesh.bbox
        objects.append({"name": o.name, "class_id": o.class_id, "class_name": o.class_name,
                        "instance_id": o.instance_id, "stuff": o.stuff,
                        "bbox_min": [round(float(x), 6) for x in lo], "bbox_max": [round(float(x), 6) for x in hi],
                        "num_faces": int(len(o.mesh.faces)),
                        "materials": [m.pattern for m in o.materials]})
    m = merge(meshes)
    write_labeled_ply(out / "gt_mesh.ply", m.vertices, m.faces,
                      {"class_id": np.concatenate(cls), "instance_id": np.concatenate(inst)})
    scene = {
        "seed": layout.seed,
        "units": "metres",
        "world_up": [0, 0, 1],
        "room_size": [round(float(x), 6) for x in layout.size],
        "room_bbox_min": [round(-layout.size[0] / 2, 6), round(-layout.size[1] / 2, 6), 0.0],
        "room_bbox_max": [round(layout.size[0] / 2, 6), round(layout.size[1] / 2, 6), round(layout.size[2], 6)],
        "openings": {k: v for k, v in layout.openings.items() if k != "attempt"},
        "layout_attempt": layout.openings.get("attempt", 0),
        "objects": objects,
        "lights": [{"name": li.name, "type": li.kind, "location": list(li.location), "power_w": li.power}
                   for li in layout.lights],
        "label_encoding": {"semantics": "ADE20K-150 class id + 1, 0 = void", "instances": "instance_id, 0 = none"},
    }
    (out / "scene.json").write_text(json.dumps(scene, indent=1))
    return scene


def generate(cfg: SynthConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Build the room for ``cfg.seed``, render ``cfg.views`` views and write the dataset to ``cfg.out``.

    Returns a summary dict (timings, counts). Raises LabelConsistencyError if the passes disagree.
    """
    from tools.synth import blender as B  # bpy only here

    t_start = time.perf_counter()
    out = Path(cfg.out)
    for sub in ("images", "depth", "semantics", "instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    layout = make_room(cfg.seed)
    cam_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(cfg.seed), 1])))
    poses = camera_loop(layout, cfg.views, cam_rng)
    intr = intrinsics(cfg.width, cfg.height, cfg.hfov_deg)
    write_ground_truth(layout, out)
    inst_to_class = np.zeros(max(o.instance_id for o in layout.objects) + 1, np.int64)
    inst_to_class[:] = -1
    for o in layout.objects:
        inst_to_class[o.instance_id] = o.class_id

    scene = B.build_scene(layout, intr, cfg.samples, cfg.seed, cfg.denoise, cfg.threads)
    t_build = time.perf_counter()
    exr_dir = Path(tempfile.mkdtemp(prefix="aligngs_synth_exr_"))
    frames, split = [], {"train": [], "test": []}
    render_times = []
    try:
        for i, c2w in enumerate(poses):
            name = f"{i:04d}"
            t0 = time.perf_counter()
            exr = exr_dir / f"{name}.exr"
            B.render_view(scene, c2w, exr)
            p = B.read_passes(exr)
            B.write_png(out / "images" / f"{name}.png", B.linear_to_srgb8(p["rgb"]))
            if cfg.keep_exr:
                (out / "exr").mkdir(exist_ok=True)
                shutil.copy2(exr, out / "exr" / exr.name)
            exr.unlink()
            inst = np.rint(p["object_index"]).astype(np.int64)
            sem = np.rint(p["material_index"]).astype(np.int64)
            z = p["depth"].astype(np.float64)
            hit = (inst > 0) & (z < _NO_HIT)
            if inst.max() >= len(inst_to_class) or sem.max() > len(CLASS_NAMES):
                raise LabelConsistencyError(f"view {name}: index pass value out of range")
            expect = np.where(inst > 0, inst_to_class[np.clip(inst, 0, None)] + 1, 0)
            bad = int(((sem != expect) & hit).sum())
            if bad:
                raise LabelConsistencyError(f"view {name}: {bad} pixels whose material class != object class")
            depth_mm = np.where(hit, np.rint(z * DEPTH_SCALE), 0.0)
            depth_mm[depth_mm > 65535] = 0
            B.write_png(out / "depth" / f"{name}.png", depth_mm.astype(np.uint16))
            B.write_png(out / "semantics" / f"{name}.png", np.where(hit, sem, 0).astype(np.uint8))
            B.write_png(out / "instances" / f"{name}.png", np.where(hit, inst, 0).astype(np.uint16))
            s = _split(i, cfg.test_every)
            split[s].append(name)
            frames.append({
                "file_path": f"images/{name}.png",
                "depth_file_path": f"depth/{name}.png",
                "semantic_file_path": f"semantics/{name}.png",
                "instance_file_path": f"instances/{name}.png",
                "transform_matrix": [[round(float(v), 9) for v in row] for row in c2w],
                "split": s,
            })
            render_times.append(time.perf_counter() - t0)
            log.info("view %s (%s) rendered in %.2f s, %.1f%% pixels hit", name, s, render_times[-1],
                     100.0 * hit.mean())
            if progress is not None:
                progress(i + 1, len(poses))
    finally:
        shutil.rmtree(exr_dir, ignore_errors=True)

    transforms = {
        "camera_model": "OPENCV",
        "fl_x": intr.fl_x, "fl_y": intr.fl_y, "cx": intr.cx, "cy": intr.cy, "w": intr.w, "h": intr.h,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "depth_scale": DEPTH_SCALE,
        "aligngs_world_up": [0, 0, 1],
        "aligngs_seed": int(cfg.seed),
        "aligngs_depth_type": "planar",
        "aligngs_semantic_encoding": "ade20k150_plus1",
        "aligngs_generator": {"samples": cfg.samples, "denoise": cfg.denoise, "hfov_deg": cfg.hfov_deg,
                              "test_every": cfg.test_every, "pixel_filter": "box 0.01 px"},
        "frames": frames,
    }
    (out / "transforms.json").write_text(json.dumps(transforms, indent=1))
    (out / "split.json").write_text(json.dumps(split, indent=1))
    t_end = time.perf_counter()
    return {"out": str(out), "views": len(frames), "train": len(split["train"]), "test": len(split["test"]),
            "objects": len(layout.objects), "build_s": round(t_build - t_start, 3),
            "render_s_total": round(sum(render_times), 3),
            "render_s_per_view": round(float(np.mean(render_times)), 3), "total_s": round(t_end - t_start, 3)}
