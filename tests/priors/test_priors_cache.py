"""Prior cache: teachers run once per image; keys follow image, checkpoint/output and resolution; atomic,
pickle-free entries; masks, labels, progress and cancellation of compute_priors."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.data.types import Frame
from aligngs.progress import Cancelled
from aligngs.priors import cache as P
from aligngs.priors.depth import DepthTeacher
from aligngs.priors.cache import PriorCache, compute_priors
from aligngs.priors.teachers import SemanticTeacher, make_semantic_teacher


class CountingSemantic(SemanticTeacher):
    """Deterministic scores from the image content; counts images it was asked to segment."""

    name = "counting"

    def __init__(self, tag="v1", batch_size=2):
        self.calls = 0
        self.tag = tag
        self.batch_size = batch_size

    @property
    def cache_tag(self):
        return f"counting|{self.tag}"

    def predict_batch(self, images, size=None):
        self.calls += len(images)
        out = []
        for im in images:
            h, w = im.shape[:2]
            s = np.full((150, h, w), -10.0, np.float32)
            s[(im[..., 0] * 149).round().astype(int), np.arange(h)[:, None], np.arange(w)[None]] = -0.1
            out.append(s)
        return out


class CountingDepth(DepthTeacher):
    name = "counting_depth"

    def __init__(self):
        self.calls = 0
        self.batch_size = 3

    @property
    def cache_tag(self):
        return "counting_depth|v1"

    def predict_batch(self, images, size=None):
        self.calls += len(images)
        return [im.mean(-1).astype(np.float32) + 1.0 for im in images]


def _frames(rng, n=4, h=6, w=8):
    return [Frame(f"v{i}", None, image=rng.random((h, w, 3)).astype(np.float32)) for i in range(n)]


def test_rerun_skips_teachers(tmp_path, rng):
    frames = _frames(rng)
    sem, dep = CountingSemantic(), CountingDepth()
    first = compute_priors(frames, sem, dep, PriorCache(tmp_path))
    assert (sem.calls, dep.calls) == (4, 4)
    assert len(list(tmp_path.rglob("*.npy"))) == 8 and not list(tmp_path.rglob("*.tmp"))

    # another run (other training settings, fresh process state): every entry is a hit, no teacher call
    sem2, dep2 = CountingSemantic(), CountingDepth()
    cache2 = PriorCache(tmp_path)
    second = compute_priors(frames, sem2, dep2, cache2)
    assert (sem2.calls, dep2.calls) == (0, 0) and (cache2.hits, cache2.misses) == (8, 0)
    for a, b in zip(first, second):
        assert b.sem_scores.dtype == np.float16 and b.depth.dtype == np.float32
        np.testing.assert_array_equal(a.sem_scores, b.sem_scores)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.depth, b.depth)
        assert b.sem_valid.all() and b.depth_valid.all()
    # labels are the argmax the counting teacher planted
    f0 = frames[0].image
    np.testing.assert_array_equal(second[0].labels, (f0[..., 0] * 149).round().astype(np.int32))


def test_keys_follow_image_teacher_and_resolution(tmp_path, rng):
    frames = _frames(rng, n=3)
    compute_priors(frames, CountingSemantic(), None, PriorCache(tmp_path))
    # one image changed: only that one is recomputed
    changed = list(frames)
    img = changed[1].image.copy()
    img[0, 0, 1] += 1e-3
    changed[1] = Frame("v1", None, image=img)
    sem = CountingSemantic()
    compute_priors(changed, sem, None, PriorCache(tmp_path))
    assert sem.calls == 1
    # another checkpoint / output convention: all recomputed
    other = CountingSemantic(tag="v2")
    compute_priors(frames, other, None, PriorCache(tmp_path))
    assert other.calls == 3
    # another render resolution: all recomputed
    small = [Frame(f.name, None, image=f.image[::2, ::2].copy()) for f in frames]
    again = CountingSemantic()
    out = compute_priors(small, again, None, PriorCache(tmp_path))
    assert again.calls == 3 and out[0].sem_scores.shape == (150, 3, 4)


def test_key_is_sha256_of_image_bytes_model_and_size(rng):
    img = rng.random((4, 5, 3)).astype(np.float32)
    k = PriorCache.key("semantic", "eomt|m", img)
    assert len(k) == 64 and k == PriorCache.key("semantic", "eomt|m", img.copy())
    assert k != PriorCache.key("depth", "eomt|m", img)
    assert k != PriorCache.key("semantic", "eomt|n", img)
    assert k != PriorCache.key("semantic", "eomt|m", img.astype(np.float64))


def test_corrupt_entry_is_recomputed(tmp_path, rng, caplog):
    frames = _frames(rng, n=2)
    compute_priors(frames, CountingSemantic(), None, PriorCache(tmp_path))
    victim = sorted(tmp_path.rglob("*.npy"))[0]
    victim.write_bytes(b"not a numpy file")
    sem = CountingSemantic()
    out = compute_priors(frames, sem, None, PriorCache(tmp_path))
    assert sem.calls == 1 and "unreadable" in caplog.text
    assert all(p.sem_scores.shape == (150, 6, 8) for p in out)
    # entries are plain .npy, loadable without pickle
    np.load(victim, allow_pickle=False)


def test_failed_write_leaves_no_entry(tmp_path, rng, monkeypatch):
    cache = PriorCache(tmp_path)
    key = "ab" * 32

    def boom(fh, arr, allow_pickle=False):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(P.np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        cache.save("semantic", key, np.zeros((2, 2), np.float16))
    assert not cache.path("semantic", key).exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_mask_and_provided_labels(tmp_path, rng):
    img = rng.random((3, 4, 3)).astype(np.float32)
    labels = np.array([[1, 1, 2, -1]] * 3, dtype=np.int32)
    mask = np.ones((3, 4), bool)
    mask[0, 0] = False
    depth = np.full((3, 4), 2.0, np.float32)
    depth[2, 3] = 0.0
    frame = Frame("v", None, image=img, labels=labels, mask=mask, depth=depth)
    from aligngs.priors.depth import make_depth_teacher

    (pr,) = compute_priors([frame], make_semantic_teacher("provided"), make_depth_teacher("sensor"), PriorCache(tmp_path))
    assert not list(tmp_path.rglob("*.npy"))  # cheap teachers are not cached
    expected_valid = (labels >= 0) & mask
    assert pr.sem_valid.tolist() == expected_valid.tolist()
    assert pr.labels.tolist() == np.where(expected_valid, labels, -1).tolist()
    assert pr.labels.dtype == np.int32 and pr.sem_scores.dtype == np.float16
    assert pr.depth_valid.tolist() == ((depth > 0) & mask).tolist()


def test_progress_and_cancel(tmp_path, rng):
    frames = _frames(rng, n=5)
    seen = []
    compute_priors(frames, CountingSemantic(batch_size=2), CountingDepth(), PriorCache(tmp_path / "a"),
                   progress=seen.append)
    fr = [p.fraction for p in seen]
    assert all(p.stage == "priors" for p in seen) and len(fr) == 10
    assert fr == sorted(fr) and fr[-1] == pytest.approx(1.0)

    sem = CountingSemantic(batch_size=2)
    asked = []

    def cancel_after_first_batch():
        asked.append(1)
        return len(asked) > 2  # the up-front check and the first batch pass, the second batch is refused

    with pytest.raises(Cancelled):
        compute_priors(frames, sem, None, PriorCache(tmp_path / "b"), should_cancel=cancel_after_first_batch)
    assert sem.calls == 2 and len(list((tmp_path / "b").rglob("*.npy"))) == 2  # finished work stays cached


def test_real_teacher_through_the_cache(tmp_path, tiny_checkpoints, rng):
    teacher = make_semantic_teacher("eomt", str(tiny_checkpoints["eomt"]), "cpu")
    frames = _frames(rng, n=2, h=32, w=48)
    first = compute_priors(frames, teacher, None, PriorCache(tmp_path))
    direct = teacher.predict(frames[0].image)
    np.testing.assert_allclose(first[0].sem_scores.astype(np.float32), direct, atol=2e-2)  # float16 storage
    assert (first[0].labels == first[0].sem_scores.argmax(0)).all()
    calls = []
    orig = teacher.predict_batch
    teacher.predict_batch = lambda imgs, size=None: (calls.append(len(imgs)), orig(imgs, size))[1]
    cache = PriorCache(tmp_path)
    second = compute_priors(frames, teacher, None, cache)
    assert calls == [] and cache.hits == 2
    np.testing.assert_array_equal(second[1].sem_scores, first[1].sem_scores)
    mm = compute_priors(frames, teacher, None, PriorCache(tmp_path), mmap=True)
    assert isinstance(mm[0].sem_scores, np.memmap)


def test_auto_teachers_follow_what_the_input_carries():
    from aligngs.config import PipelineConfig
    from aligngs.pipeline import resolve_teachers

    img = np.zeros((4, 4, 3), np.float32)
    bare = [Frame("a", None, img), Frame("b", None, img)]
    full = [Frame(f.name, None, img, depth=np.ones((4, 4), np.float32), labels=np.zeros((4, 4), np.int32))
            for f in bare]
    cfg = PipelineConfig()
    assert (cfg.train.semantics.teacher, cfg.train.semantics.depth_teacher) == ("auto", "auto")
    assert resolve_teachers(full, cfg) == ("provided", "sensor")
    assert resolve_teachers(bare, cfg) == ("eomt", "dpt")  # photos only: the default network teachers
    mixed = [full[0], bare[1]]  # one view without labels or depth: the network teachers for all
    assert resolve_teachers(mixed, cfg) == ("eomt", "dpt")
    explicit = PipelineConfig.from_dict({"train": {"semantics": {"teacher": "mask2former", "depth_teacher": "none"}}})
    assert resolve_teachers(full, explicit) == ("mask2former", "none")
    off = PipelineConfig.from_dict({"train": {"semantics": {"enabled": False}, "loss": {"depth_pearson": 0.0}}})
    assert resolve_teachers(full, off) == ("none", "none")
