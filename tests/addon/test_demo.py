"""``python -m tools.demo`` (what ``make demo`` runs) end to end, in a subprocess, at small settings.

The demo starts its own backend.serve, builds the extension zip, drives headless Blender (.venv-blender) through
Reconstruct Scene on samples/room, saves scene.blend and renders scene.png. The failure tests check that a bad run
exits non-zero with a readable reason and leaves no server process behind.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from addon_testlib import REPO, have_backend

ROOM = REPO / "samples" / "room"


def run_demo(out: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "tools.demo", "--out", str(out), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def server_pids(stderr: str) -> list[int]:
    return [int(p) for p in re.findall(r"backend\.serve pid (\d+) listening", stderr)]


def assert_gone(pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"backend.serve (pid {pid}) is still running after the demo exited")


@pytest.fixture(scope="module")
def demo(bpy_python, tmp_path_factory):
    if not (ROOM / "images").is_dir():
        pytest.skip(f"{ROOM} (the bundled sample) is missing")
    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    out = tmp_path_factory.mktemp("demo")
    proc = run_demo(out, "--iterations", "40", "--resolution", "64", "--samples", "8")
    assert proc.returncode == 0, f"demo failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return out, proc


@pytest.mark.blender
@pytest.mark.slow
def test_demo_writes_scene_and_render(demo):
    out, proc = demo
    blend = out / "scene.blend"
    assert blend.is_file() and blend.stat().st_size > 100_000  # holds the imported mesh and point cloud
    head = blend.read_bytes()[:7]
    assert head == b"BLENDER" or head[:4] == b"\x28\xb5\x2f\xfd", head  # plain or zstd-compressed .blend

    from PIL import Image

    img = np.asarray(Image.open(out / "scene.png").convert("RGB"), dtype=np.float32)
    assert img.shape[1] == 480 and img.shape[0] > 200  # the render's long side, the images' aspect
    assert img.std() > 10  # not one flat colour: the room's walls, floor and furniture
    assert img.mean() > 30  # not black: the room is lit
    sat = img.max(axis=2) - img.min(axis=2)
    assert np.percentile(sat, 90) > 8  # vertex colours show (not a grey clay render)


@pytest.mark.blender
@pytest.mark.slow
def test_demo_side_by_side_shows_classes_and_a_hidden_collection(demo):
    out, proc = demo
    from PIL import Image

    m = re.search(r"^\s+picture\s+RGB \| by class \((\d+) in the legend\) \| '([^']+)' hidden$", proc.stdout, re.MULTILINE)
    assert m, proc.stdout
    hidden = m.group(2)
    assert int(m.group(1)) >= 2 and hidden not in ("wall", "floor", "ceiling")
    assert str(out / "scene_semantic.png") in proc.stdout
    pic = np.asarray(Image.open(out / "scene_semantic.png").convert("RGB"), dtype=np.float32)
    rgb = np.asarray(Image.open(out / "scene.png").convert("RGB"), dtype=np.float32)
    classes = np.asarray(Image.open(out / "scene_classes.png").convert("RGB"), dtype=np.float32)
    gone = np.asarray(Image.open(out / "scene_hidden.png").convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    assert pic.shape[1] >= 3 * w and pic.shape[0] > h  # three panels side by side, captions and legend below
    # the class view is not the RGB view, and hiding one collection changes part of it (not all, not nothing)
    assert np.abs(classes - rgb).mean() > 5
    changed = np.abs(gone - classes).max(axis=2) > 30
    assert 0.002 < changed.mean() < 0.5, changed.mean()


@pytest.mark.blender
@pytest.mark.slow
def test_demo_summary(demo):
    out, proc = demo
    m = re.search(r"^\s+classes\s+(\d+) found: (.+)$", proc.stdout, re.MULTILINE)
    assert m, proc.stdout
    n = int(m.group(1))
    names = [c.split(" (")[0] for c in re.split(r"\), ", m.group(2))]
    assert n >= 2 and len(names) == n, (n, names)
    assert {"wall", "floor"} <= set(names)  # the room's largest classes
    assert re.search(r"pipeline .*train \d+\.\d s", proc.stdout), proc.stdout
    m = re.search(r"imported\s+([\d,]+) points, ([\d,]+) faces, (\d+) cameras", proc.stdout)
    assert m, proc.stdout
    n_images = len([p for p in (ROOM / "images").iterdir() if p.suffix == ".png"])
    assert int(m.group(1).replace(",", "")) > 1000 and int(m.group(2).replace(",", "")) > 100
    assert int(m.group(3)) == n_images
    assert str(out / "scene.png") in proc.stdout and str(out / "scene.blend") in proc.stdout
    mesh_files = list(out.glob("jobs/*/out/mesh.ply"))
    assert len(mesh_files) == 1 and str(mesh_files[0]) in proc.stdout
    (pid,) = server_pids(proc.stderr)
    assert_gone(pid)


@pytest.mark.blender
def test_demo_failure_is_reported_and_stops_the_server(bpy_python, tmp_path):
    if not have_backend():
        pytest.skip("backend.serve or .venv missing")
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    proc = run_demo(tmp_path / "out", "--sample", str(empty), "--no-render", timeout=180)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "demo failed in Blender (submit): Reconstruct Scene is disabled:" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "scene.blend").exists()
    (pid,) = server_pids(proc.stderr)
    assert_gone(pid)


def test_demo_bad_sample_folder(tmp_path):
    proc = run_demo(tmp_path / "out", "--sample", str(tmp_path / "missing"), timeout=60)
    assert proc.returncode == 2
    assert f"--sample {tmp_path / 'missing'}: not a folder" in proc.stderr
    assert server_pids(proc.stderr) == []  # checked before anything started
