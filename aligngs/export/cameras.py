"""Camera poses + intrinsics as JSON (ours, and a nerfstudio ``transforms.json`` at the same time).

Layout::

    {"format": "aligngs-cameras", "version": 1,
     "convention": "...",
     "frames": [{"name": "0001", "file_path": "0001", "width": W, "height": H,
                 "K": [[fx,0,cx],[0,fy,cy],[0,0,1]],
                 "c2w_opencv": 4x4,              # OpenCV axes (x right, y down, z forward): authoritative
                 "transform_matrix": 4x4,         # OpenGL/nerfstudio axes (x right, y up, z back) = c2w_opencv @ diag(1,-1,-1,1)
                 "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": W, "h": H}, ...]}

The per-frame ``fl_x .. h`` + ``transform_matrix`` + ``file_path`` make the file loadable by nerfstudio-style
readers (per-frame intrinsics). ``cx, cy`` are copied as they are (no half-pixel shift, as gsplat and
nerfstudio's COLMAP converter do).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import json

import numpy as np

from aligngs.data.types import Camera, Frame
from aligngs.export.report import write_json_atomic

FORMAT = "aligngs-cameras"
VERSION = 1
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # its own inverse


def write_cameras_json(path, frames_or_cameras: Sequence[Frame | Camera], names: Sequence[str] | None = None) -> Path:
    """Write one entry per view. ``frames_or_cameras``: :class:`Frame` (its ``name`` and ``camera``; frames
    without a camera are an error) or :class:`Camera` (then ``names`` is required). ``names``, when given,
    overrides the frames' names. Returns the path."""
    items = list(frames_or_cameras)
    if names is not None and len(names) != len(items):
        raise ValueError(f"write_cameras_json({path}): {len(items)} views but {len(names)} names")
    entries = []
    for i, item in enumerate(items):
        if isinstance(item, Frame):
            if item.camera is None:
                raise ValueError(f"write_cameras_json({path}): frame {item.name!r} has no camera (pose unknown)")
            cam, name = item.camera, item.name
        elif isinstance(item, Camera):
            if names is None:
                raise ValueError(f"write_cameras_json({path}): names are required when passing Camera objects")
            cam, name = item, None
        else:
            raise TypeError(f"write_cameras_json({path}): item {i} is a {type(item).__name__}, expected Frame or Camera")
        if names is not None:
            name = names[i]
        entries.append(_entry(str(name), cam))
    seen = set()
    for e in entries:
        if e["name"] in seen:
            raise ValueError(f"write_cameras_json({path}): duplicate view name {e['name']!r}")
        seen.add(e["name"])
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "convention": "c2w_opencv: camera-to-world, OpenCV axes (x right, y down, z forward); "
        "transform_matrix: the same pose in OpenGL/nerfstudio axes (x right, y up, z backward); "
        "K: pinhole intrinsics at width x height",
        "frames": entries,
    }
    return write_json_atomic(path, doc)


def read_cameras_json(path) -> tuple[list[str], list[Camera]]:
    """Read the views back as ``(names, cameras)``. Files written by :func:`write_cameras_json` round-trip
    exactly (``K`` and ``c2w_opencv``); a plain nerfstudio ``transforms.json`` also reads (per-frame or
    top-level ``fl_x fl_y cx cy w h``, ``transform_matrix`` converted from OpenGL axes)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"read_cameras_json: no such file {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"read_cameras_json: {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
        raise ValueError(f"read_cameras_json: {path} has no 'frames' list")
    if doc.get("format") == FORMAT and doc.get("version", VERSION) > VERSION:
        raise ValueError(f"read_cameras_json: {path} is version {doc['version']}; this reader knows {VERSION}")
    names, cams = [], []
    for i, fr in enumerate(doc["frames"]):
        where = f"read_cameras_json: {path} frames[{i}]"
        if not isinstance(fr, dict):
            raise ValueError(f"{where}: expected an object")
        name = fr.get("name", fr.get("file_path"))
        if name is None:
            raise ValueError(f"{where}: no 'name' or 'file_path'")
        try:
            if "K" in fr and "c2w_opencv" in fr:
                K = np.asarray(fr["K"], dtype=np.float64)
                c2w = np.asarray(fr["c2w_opencv"], dtype=np.float64)
                w, h = fr["width"], fr["height"]
            else:
                get = lambda k: fr[k] if k in fr else doc[k]  # noqa: E731  (per-frame overrides top level)
                K = np.array([[get("fl_x"), 0, get("cx")], [0, get("fl_y"), get("cy")], [0, 0, 1]], dtype=np.float64)
                c2w = np.asarray(fr["transform_matrix"], dtype=np.float64) @ OPENCV_TO_OPENGL
                w, h = get("w"), get("h")
            cams.append(Camera(c2w, K, int(w), int(h)))
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: bad camera: {exc}") from exc
        names.append(str(name))
    return names, cams


def _entry(name: str, cam: Camera) -> dict:
    K = cam.K
    return {
        "name": name,
        "file_path": name,
        "width": cam.width,
        "height": cam.height,
        "K": K,
        "c2w_opencv": cam.c2w,
        "transform_matrix": cam.c2w @ OPENCV_TO_OPENGL,
        "fl_x": K[0, 0],
        "fl_y": K[1, 1],
        "cx": K[0, 2],
        "cy": K[1, 2],
        "w": cam.width,
        "h": cam.height,
    }
