"""Per-class splits with 3-D instances (two separated chairs -> two instances), sub-meshes, face classes."""
import numpy as np
import pytest

from aligngs.data.types import TriMesh
from aligngs.priors.ade20k import PALETTE
from aligngs.extract.splits import default_instance_radius, face_classes, split_by_class, submesh

CHAIR, WALL = 19, 0  # the `scene` fixture (conftest.py): two chairs, a chair-labelled fragment, a wall


def test_two_separated_chairs_are_two_instances(scene):
    mesh, pts = scene
    splits = split_by_class(mesh, pts, min_instance_points=50, instance_radius=0.2)
    assert [s.class_id for s in splits] == [WALL, CHAIR]
    chair = splits[1]
    assert chair.name == "chair" and chair.color == tuple(PALETTE[CHAIR])
    assert chair.n_points == 210 and chair.n_faces == 2 * 50 and chair.n_vertices == 72
    assert len(chair.instances) == 2
    for inst in chair.instances:
        assert (inst.n_points, inst.n_faces) == (100, 50)
    pi = chair.points_instance
    # each blob is one instance, the two blobs differ, and the fragment is noise (-1)
    assert len(set(pi[:100])) == 1 and len(set(pi[100:200])) == 1 and pi[0] != pi[100]
    assert set(pi[:200]) == {0, 1} and np.all(pi[200:] == -1)
    # the mesh piece under a blob shares the blob's instance id
    mi = chair.mesh_instance
    near_a = chair.mesh.vertices[:, 0] < 2.5
    assert np.all(mi[near_a] == pi[0]) and np.all(mi[~near_a] == pi[100])
    # wall: 18 faces (< 50) but 60 points -> one instance
    wall = splits[0]
    assert len(wall.instances) == 1 and wall.instances[0].n_points == 60 and wall.instances[0].n_faces == 18


def test_separation_needs_the_radius(scene):
    mesh, pts = scene
    one = split_by_class(None, pts, min_instance_points=50, instance_radius=10.0)
    chair = [s for s in one if s.class_id == CHAIR][0]
    assert len(chair.instances) == 1 and chair.instances[0].n_points == 210 and chair.mesh is None


def test_mesh_only_instances_and_min_faces(scene):
    mesh, _ = scene
    splits = split_by_class(mesh, None, min_instance_points=50, min_instance_faces=20)
    by = {s.class_id: s for s in splits}
    assert [i.n_faces for i in by[CHAIR].instances] == [50, 50]
    assert by[WALL].instances == [] and np.all(by[WALL].mesh_instance == -1)  # 18 faces < 20
    assert by[CHAIR].points is None and by[CHAIR].points_instance is None


def test_drop_small_and_points_as_mapping(scene):
    mesh, pts = scene
    as_dict = {"positions": pts.positions, "colors": pts.colors, "class_id": pts.class_id, "confidence": pts.confidence}
    splits = split_by_class(mesh, as_dict, min_instance_points=50, instance_radius=0.2, drop_small=True)
    chair = [s for s in splits if s.class_id == CHAIR][0]
    assert chair.n_points == 200 and np.all(chair.points_instance >= 0)


def test_default_radius_is_three_median_spacings():
    pos = np.c_[np.arange(10) * 0.5, np.zeros(10), np.zeros(10)]
    assert default_instance_radius(pos) == pytest.approx(1.5)
    assert default_instance_radius(pos[:1]) == 0.0


def test_face_classes_rules():
    faces = np.array([[0, 1, 2], [0, 1, 3], [1, 3, 4], [2, 3, 4], [0, 3, 4]])
    vc = np.array([5, 5, 5, 7, -1])
    assert face_classes(faces, vc, "all").tolist() == [5, -1, -1, -1, -1]
    # majority: (5,5,5)->5, (5,5,7)->5, (5,7,-1)->-1, (5,7,-1)->-1, (5,7,-1)->-1
    assert face_classes(faces, vc, "majority").tolist() == [5, 5, -1, -1, -1]
    assert face_classes(np.array([[3, 4, 4]]), vc).tolist() == [-1]  # majority unknown
    assert face_classes(np.array([[4, 3, 3]]), vc).tolist() == [7]
    with pytest.raises(ValueError, match="rule"):
        face_classes(faces, vc, "any")


def test_submesh_reindexes_and_carries_attributes(grid_mesh):
    v, f, c = grid_mesh([0, 0, 0], n=3)
    m = TriMesh(v, f, np.arange(27, dtype=np.uint8).reshape(9, 3), {"class_id": np.arange(9, dtype=np.int32)})
    sel = np.array([False, True, False, False, False, True, False, False])
    sub, used = submesh(m, sel)
    assert sub.faces.max() < len(sub.vertices) and sub.faces.dtype == np.int32
    assert np.array_equal(sub.vertices[sub.faces], m.vertices[m.faces[sel]])
    assert np.array_equal(sub.colors, m.colors[used]) and np.array_equal(sub.vertex_attrs["class_id"], used)


def test_requires_labelled_mesh(grid_mesh):
    v, f, _ = grid_mesh([0, 0, 0], n=3)
    with pytest.raises(ValueError, match="class_id"):
        split_by_class(TriMesh(v, f), None)
