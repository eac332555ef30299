"""Write every output of a finished reconstruction: PLY files, cameras, classes and the result parts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import PipelineConfig
from ..data.types import Scene
from ..model.gaussians import GaussianModel
from ..wire import ResultPart, write_parts


def camera_part(scene: Scene) -> ResultPart:
    frames = [f for f in scene.frames if f.camera is not None]
    return ResultPart(
        "cameras", "cameras",
        {
            "c2w": np.stack([f.camera.c2w for f in frames]).astype(np.float32),
            "K": np.stack([f.camera.K for f in frames]).astype(np.float32),
            "size": np.array([[f.camera.width, f.camera.height] for f in frames], np.int32),
        },
        {"names": [f.name for f in frames]},
    )


def write_all(out: Path, scene: Scene, model: GaussianModel, outputs, cfg: PipelineConfig, *, up) -> dict[str, str]:
    """Returns {role: relative path} of what was written."""
    from .cameras import write_cameras_json
    from .gaussians_ply import write_gaussians_ply
    from .ply import write_mesh_ply, write_points_ply

    out = Path(out)
    files: dict[str, str] = {}
    g = model.numpy()
    extra = {}
    if outputs.gaussian_class is not None:
        extra = {"class_id": outputs.gaussian_class.astype(np.int32), "class_conf": outputs.gaussian_conf.astype(np.float32)}
    if getattr(outputs, "gaussian_object", None) is not None:  # Gaussian Grouping object id per Gaussian (issue 13)
        extra["object_id"] = outputs.gaussian_object.astype(np.int32)
    write_gaussians_ply(out / "gaussians.ply", g["means"], g["quats"], g["scales"], g["opacities"], g["sh0"], g["shN"], extra=extra)
    files["gaussians"] = "gaussians.ply"
    frames = [f for f in scene.frames if f.camera is not None]
    write_cameras_json(out / "cameras.json", [f.camera for f in frames], [f.name for f in frames])
    files["cameras"] = "cameras.json"
    if outputs.mesh is not None:
        write_mesh_ply(out / "mesh.ply", outputs.mesh)
        files["mesh"] = "mesh.ply"
    pts = outputs.points
    attrs = {k: v for k, v in pts.items() if k in ("class_id", "confidence")}
    write_points_ply(out / "semantic_points.ply", pts["positions"], pts["colors"], attrs)
    files["points"] = "semantic_points.ply"

    parts: list[ResultPart] = []
    if outputs.splits:
        from .semantic import export_semantic_files
        from ..extract.splits import to_result_parts

        files.update(export_semantic_files(out, outputs.mesh, pts, outputs.splits))
        parts = to_result_parts(outputs.mesh, pts, outputs.splits)
    else:
        if outputs.mesh is not None:
            m = outputs.mesh
            parts.append(ResultPart("mesh", "mesh", {"vertices": m.vertices, "faces": m.faces, "colors": m.colors}))
        parts.append(ResultPart("semantic_points", "points", dict(pts)))
    parts.append(camera_part(scene))
    scene_name = Path(str(scene.root)).name if scene.root else "scene"
    write_parts(out / "result", parts, scene=scene_name, up=up)
    files["result"] = "result/manifest.json"
    return files
