"""pycolmap SfM on a few samples/room views (poses scored against the ground truth) and the bad inputs."""
import numpy as np
import pytest
from PIL import Image

from aligngs.config import DataConfig
from aligngs.data.errors import DataError
from aligngs.data.loaders import load_scene
from aligngs.model.init import initial_points
from aligngs.poses import estimate_poses
from aligngs.poses.align import pose_errors
from aligngs.poses.sfm import run_sfm

from dataclasses import replace


@pytest.fixture(scope="module")
def room8(room_scene):
    frames = room_scene.frames[8:16]  # 8 consecutive views of the 32
    ref = {f.name: f.camera for f in frames}
    result = run_sfm([replace(f, camera=None, depth=None) for f in frames])
    return frames, ref, result


def test_sfm_registers_room_views_and_matches_ground_truth(room8):
    frames, ref, res = room8
    assert res.report["registered"] == len(frames) == 8 and res.unregistered == []
    err = pose_errors(res.cameras, ref)
    assert err.ate_rel < 0.01, err  # camera path ~1.5 m: under 1.5 cm after the Sim3
    assert err.rot_err_deg < 1.0, err
    assert len(res.points) > 200 and np.isfinite(res.points).all()
    # the sparse points lie on the GT surface once moved by the same Sim3: depth check in one GT view
    f = frames[0]
    p = err.sim3.apply(res.points)
    w2c = f.camera.w2c
    pc = p @ w2c[:3, :3].T + w2c[:3, 3]
    u = np.rint(f.camera.K[0, 0] * pc[:, 0] / pc[:, 2] + f.camera.K[0, 2]).astype(int)
    v = np.rint(f.camera.K[1, 1] * pc[:, 1] / pc[:, 2] + f.camera.K[1, 2]).astype(int)
    obs = res.observations[f.name]
    k = obs[(pc[obs, 2] > 0) & (u[obs] >= 0) & (u[obs] < 320) & (v[obs] >= 0) & (v[obs] < 240)]
    assert len(k) > 50
    rel = np.abs(f.depth[v[k], u[k]] - pc[k, 2]) / pc[k, 2]
    assert np.median(rel) < 0.02


def test_sfm_tracks_index_the_points(room8):
    _, _, res = room8
    assert set(res.observations) == set(res.cameras)
    allidx = np.concatenate(list(res.observations.values()))
    assert allidx.min() >= 0 and allidx.max() < len(res.points)
    assert len(np.unique(allidx)) == len(res.points)  # every SfM point is seen by some image


def test_known_poses_initialise_from_sensor_depth(room_scene):
    frames = room_scene.frames[:2]
    scene = replace(room_scene, frames=frames, points=None, point_colors=None)
    pts, cols, source = initial_points(scene, frames, 10**9, 0, 5.0)
    assert source == "depth" and len(pts) == sum(int((f.depth[::2, ::2] > 0).sum()) for f in frames)
    f = frames[0]
    pc = pts[: int((f.depth[::2, ::2] > 0).sum())] @ f.camera.w2c[:3, :3].T + f.camera.w2c[:3, 3]
    np.testing.assert_allclose(np.sort(pc[:, 2]), np.sort(f.depth[::2, ::2][f.depth[::2, ::2] > 0]), rtol=1e-4)


def _write(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i:03d}.png")
    return load_scene(folder, DataConfig())


def test_fewer_than_three_images(tmp_path, room_scene):
    bare = _write(tmp_path / "two", [(f.image * 255).astype(np.uint8) for f in room_scene.frames[:2]])
    with pytest.raises(DataError, match="at least 3 images, got 2.*overlapping.*known poses.*VGGT"):
        estimate_poses(bare, "sfm")


def test_all_images_identical(tmp_path, room_scene):
    img = (room_scene.frames[0].image * 255).astype(np.uint8)
    bare = _write(tmp_path / "same", [img] * 4)
    with pytest.raises(DataError, match="all images are identical.*known poses.*VGGT"):
        estimate_poses(bare, "sfm")


def test_images_sfm_cannot_register(tmp_path):
    # flat images with a few vertical steps: distinct, but no features to match, so nothing registers
    steps = (np.mgrid[0:120, 0:160][1][..., None] // 40).astype(np.uint8)
    bare = _write(tmp_path / "flat", [np.full((120, 160, 3), 30 * k, np.uint8) + steps for k in range(1, 5)])
    with pytest.raises(DataError, match="SfM (could not register|registered only).*overlap.*known poses.*VGGT"):
        estimate_poses(bare, "sfm")
