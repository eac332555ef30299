"""Editing masks follow the reference rules: extract = argmax in targets AND score >= t; remove = OR."""
import numpy as np
import pytest
import torch

from aligngs.data.types import TriMesh
from aligngs.extract.editing import filter_mesh_by_class, select_gaussians

# 5 Gaussians, 4 classes, targets {1, 2}, threshold 0.5. Rows: probabilities.
PROBS = np.array([
    [0.10, 0.60, 0.20, 0.10],  # a: argmax 1 (target), score .8
    [0.40, 0.30, 0.30, 1e-9],  # b: argmax 0, score .6 >= .5
    [0.05, 0.45, 1e-9, 0.50],  # c: argmax 3, score .45
    [0.30, 0.35, 0.05, 0.30],  # d: argmax 1 (target), score .40 < .5
    [0.70, 0.10, 0.10, 0.10],  # e: argmax 0, score .2
])
LOGITS = np.log(PROBS) + 3.0  # softmax undoes log (+ any shift)


@pytest.mark.parametrize("mode,threshold,expect", [
    ("extract", 0.5, [True, False, False, False, False]),  # argmax AND score
    ("remove", 0.5, [False, False, True, False, True]),  # keep = not (argmax OR score)
    ("extract", None, [True, False, False, True, False]),  # argmax only
    ("remove", None, [False, True, True, False, True]),
])
def test_select_gaussians_reference_rules(mode, threshold, expect):
    keep = select_gaussians(LOGITS, [2, 1], threshold, mode)
    assert isinstance(keep, np.ndarray) and keep.dtype == bool and keep.tolist() == expect
    keep_t = select_gaussians(torch.from_numpy(LOGITS).float(), [1, 2], threshold, mode)
    assert isinstance(keep_t, torch.Tensor) and keep_t.tolist() == expect


def test_select_gaussians_bad_input():
    with pytest.raises(ValueError, match="mode"):
        select_gaussians(LOGITS, [1], 0.5, "delete")
    with pytest.raises(ValueError, match="0..3"):
        select_gaussians(LOGITS, [4], 0.5)
    with pytest.raises(ValueError, match="empty"):
        select_gaussians(LOGITS, [], 0.5)


def strip_mesh():
    # vertices 0..4 along a strip; faces (0,1,2) (1,2,3) (2,3,4)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 2, 0]], np.float32)
    f = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4]], np.int32)
    attrs = {"class_id": np.array([5, 5, 5, 7, 7], np.int32), "confidence": np.array([1, 1, 0.2, 1, 1], np.float32)}
    return TriMesh(v, f, np.arange(15, dtype=np.uint8).reshape(5, 3), attrs)


def test_filter_mesh_by_class():
    m = strip_mesh()
    ext = filter_mesh_by_class(m, [5], "extract")
    assert ext.faces.tolist() == [[0, 1, 2]] and len(ext.vertices) == 3
    assert ext.vertex_attrs["class_id"].tolist() == [5, 5, 5] and np.array_equal(ext.colors, m.colors[:3])
    rem = filter_mesh_by_class(m, [5], "remove")  # every face touches a class-5 vertex
    assert len(rem.faces) == 0 and len(rem.vertices) == 0
    rem7 = filter_mesh_by_class(m, [7], "remove")
    assert rem7.faces.tolist() == [[0, 1, 2]]
    # extract with a confidence floor drops vertex 2 (0.2) and with it the face
    assert len(filter_mesh_by_class(m, [5], "extract", min_confidence=0.5).faces) == 0
    both = filter_mesh_by_class(m, [5, 7], "extract")
    assert len(both.faces) == 3
