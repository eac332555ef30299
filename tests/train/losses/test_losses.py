"""AlignGS loss terms: hand-computed values on tiny tensors, reference equivalences, float64 gradchecks."""
import math

import pytest
import torch
import torch.nn.functional as F

from aligngs.model.semantic_decoder import CompactSemanticDecoder
from aligngs.train.losses import (
    min_scale_loss,
    normal_consistency_loss,
    pearson_depth_loss,
    semantic_boundary_normal_loss,
    semantic_ce,
    semantic_edge_mask,
    semantic_kl,
)

LN = math.log


def _kl_example():
    # 2 classes, 2x2 pixels. Teacher given as log-probabilities, rendered as logits.
    teacher = torch.empty(2, 2, 2, dtype=torch.float64)
    rendered = torch.zeros(2, 2, 2, dtype=torch.float64)
    # pixel (0,0): p = (.5,.5), q = (.25,.75)
    teacher[:, 0, 0] = torch.tensor([LN(0.5), LN(0.5)], dtype=torch.float64)
    rendered[:, 0, 0] = torch.tensor([0.0, LN(3.0)], dtype=torch.float64)
    # pixel (0,1): p = (.8,.2), q = (.5,.5)
    teacher[:, 0, 1] = torch.tensor([LN(0.8), LN(0.2)], dtype=torch.float64)
    # pixels (1,0), (1,1): p = q = (.5,.5) (teacher logits 7,7: shift-invariant)
    teacher[:, 1, :] = 7.0
    kl00 = 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)
    kl01 = 0.8 * LN(0.8 / 0.5) + 0.2 * LN(0.2 / 0.5)
    return rendered, teacher, kl00, kl01


def test_semantic_kl_hand_values():
    r, t, kl00, kl01 = _kl_example()
    assert semantic_kl(r, t).item() == pytest.approx((kl00 + kl01) / 4, abs=1e-12)
    assert semantic_kl(r, t, norm="reference").item() == pytest.approx((kl00 + kl01) / 2, abs=1e-12)
    valid = torch.tensor([[True, False], [True, True]])
    assert semantic_kl(r, t, valid).item() == pytest.approx(kl00 / 3, abs=1e-12)
    assert semantic_kl(r, t, valid, norm="reference").item() == pytest.approx(kl00 / 2, abs=1e-12)


def test_semantic_kl_reference_mode_is_torch_kl_div_batchmean():
    g = torch.Generator().manual_seed(0)
    P_r = torch.randn(150, 6, 9, generator=g) * 3
    P_gt = torch.randn(150, 6, 9, generator=g) * 3
    ref = F.kl_div(F.log_softmax(P_r, 0), F.softmax(P_gt, 0), reduction="batchmean")
    ours = semantic_kl(P_r, P_gt, norm="reference")
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    # documented equivalence: reference = per_pixel * (H*W/C)
    per_pixel = semantic_kl(P_r, P_gt, norm="per_pixel")
    assert ours.item() == pytest.approx(per_pixel.item() * 6 * 9 / 150, rel=1e-5)


def test_semantic_kl_zero_for_equal_distributions_and_teacher_detached():
    x = torch.randn(3, 2, 2)
    t = (x + 5.0).requires_grad_(True)  # softmax is shift invariant
    assert semantic_kl(x, t).item() == pytest.approx(0.0, abs=1e-6)
    r = x.clone().requires_grad_(True)
    semantic_kl(r, t).backward()
    assert t.grad is None and r.grad is not None


def test_semantic_kl_no_valid_pixels_is_zero_with_finite_grad():
    r = torch.randn(3, 2, 2, requires_grad=True)
    loss = semantic_kl(r, torch.randn(3, 2, 2), torch.zeros(2, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(r.grad == 0)


def test_semantic_kl_gradcheck():
    g = torch.Generator().manual_seed(1)
    r = torch.randn(3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 2, 2, generator=g, dtype=torch.float64)
    valid = torch.tensor([[True, True], [False, True]])
    for norm in ("per_pixel", "reference"):
        assert torch.autograd.gradcheck(lambda x: semantic_kl(x, t, valid, norm=norm), (r,))


def test_semantic_kl_rejects_bad_input():
    with pytest.raises(ValueError, match="norm"):
        semantic_kl(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), norm="mean")
    with pytest.raises(ValueError, match="teacher shape"):
        semantic_kl(torch.zeros(2, 2, 2), torch.zeros(3, 2, 2))


def test_semantic_ce_hand_value_and_ignore():
    r = torch.zeros(2, 2, 2, dtype=torch.float64)
    r[:, 0, 1] = torch.tensor([0.0, LN(3.0)], dtype=torch.float64)
    r[:, 1, 1] = torch.tensor([LN(3.0), 0.0], dtype=torch.float64)
    labels = torch.tensor([[0, 1], [-1, 0]])
    expect = (LN(2.0) + 2 * LN(4.0 / 3.0)) / 3
    assert semantic_ce(r, labels).item() == pytest.approx(expect, abs=1e-12)
    rg = r.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: semantic_ce(x, labels), (rg,))
    # all unknown -> exact 0 with finite (zero) gradient, not NaN
    rg.grad = None
    loss = semantic_ce(rg, torch.full((2, 2), -1))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(rg.grad == 0)
    with pytest.raises(ValueError, match="-1..1"):
        semantic_ce(r, torch.tensor([[0, 2], [0, 0]]))


def test_semantic_edge_mask_hand():
    labels = torch.tensor([[0, 0, 1], [0, 2, 1], [0, 0, 1]])
    expect = torch.tensor([[False, True, False], [True, True, False], [False, True, False]])
    assert torch.equal(semantic_edge_mask(labels), expect)


def test_semantic_edge_mask_unknown_and_dilation():
    # -1 compared like any label: known/unknown border is an edge, inside of unknown is not
    lab = torch.tensor([[-1, -1], [-1, 0]])
    assert torch.equal(semantic_edge_mask(lab), torch.tensor([[False, True], [True, False]]))
    lab = torch.zeros(5, 5, dtype=torch.long)
    lab[2, 3] = 1  # edges: (2,2) (right differs), (1,3) (lower differs), (2,3) itself
    e0 = semantic_edge_mask(lab)
    assert e0.sum() == 3 and e0[2, 2] and e0[1, 3] and e0[2, 3]
    e1 = semantic_edge_mask(lab, dilation=1)
    expect = torch.zeros(5, 5, dtype=torch.bool)
    for r, c in [(2, 2), (1, 3), (2, 3)]:
        expect[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = True
    assert torch.equal(e1, expect)


def test_pearson_hand_value():
    d = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    p = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64)
    # unbiased (reference): centred d = (-1.5,-.5,.5,1.5), p = (-1.75,-.75,.25,2.25); sum of products 6.5
    sd, sp = math.sqrt(5.0 / 3.0), math.sqrt(8.75 / 3.0)
    expect = 1 - 6.5 / (4 * (sd + 1e-6) * (sp + 1e-6))
    assert pearson_depth_loss(d, p).item() == pytest.approx(expect, abs=1e-12)
    sd0, sp0 = math.sqrt(5.0 / 4.0), math.sqrt(8.75 / 4.0)
    expect0 = 1 - 6.5 / (4 * (sd0 + 1e-6) * (sp0 + 1e-6))
    assert pearson_depth_loss(d, p, unbiased=False).item() == pytest.approx(expect0, abs=1e-12)
    # identical inputs: 1/n with the reference (unbiased) std, ~0 with the population std
    assert pearson_depth_loss(d, d).item() == pytest.approx(0.25, abs=1e-5)
    assert pearson_depth_loss(d, d, unbiased=False).item() == pytest.approx(0.0, abs=1e-5)


def test_pearson_scale_shift_invariance_and_mask():
    g = torch.Generator().manual_seed(3)
    d = torch.rand(6, 7, generator=g, dtype=torch.float64) + 1
    p = d * 0.7 + torch.rand(6, 7, generator=g, dtype=torch.float64) * 0.3
    valid = torch.rand(6, 7, generator=g) > 0.3
    base = pearson_depth_loss(d, p, valid).item()
    assert pearson_depth_loss(3.0 * d + 10.0, p, valid).item() == pytest.approx(base, abs=5e-5)
    assert pearson_depth_loss(d, 5.0 * p - 2.0, valid).item() == pytest.approx(base, abs=5e-5)
    # (exact only up to the 1e-6 in the denominator: relative effect ~ 1e-6 / std)
    # invalid pixels do not matter, whatever they hold
    d2 = d.clone()
    d2[~valid] = 1e6
    assert pearson_depth_loss(d2, p, valid).item() == pytest.approx(base, abs=1e-12)
    # anti-correlated is worse than correlated
    assert pearson_depth_loss(-d, p, valid).item() > 1.5


def test_pearson_gradcheck_and_degenerate():
    g = torch.Generator().manual_seed(4)
    d = torch.rand(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.rand(3, 3, generator=g, dtype=torch.float64)
    valid = torch.ones(3, 3, dtype=torch.bool)
    valid[0, 0] = False
    assert torch.autograd.gradcheck(lambda x: pearson_depth_loss(x, p, valid), (d,))
    # constant depth: finite gradient; one valid pixel: exact 0
    c = torch.ones(3, 3, requires_grad=True)
    pearson_depth_loss(c, p.float()).backward()
    assert torch.isfinite(c.grad).all()
    one = torch.zeros(3, 3, dtype=torch.bool)
    one[1, 1] = True
    assert pearson_depth_loss(d, p, one).item() == 0.0


def test_normal_consistency_hand_and_gradcheck():
    n_r = torch.tensor([0.0, 0.0, -1.0]).expand(2, 2, 3).clone()
    n_d = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert normal_consistency_loss(n_r, n_d).item() == pytest.approx(0.75)
    valid = torch.tensor([[True, False], [True, False]])
    assert normal_consistency_loss(n_r, n_d, valid).item() == pytest.approx(0.5)
    a = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(normal_consistency_loss, (a, b))


def test_boundary_normal_hand_value():
    n = torch.zeros(2, 2, 3, dtype=torch.float64)
    n[0, 0] = torch.tensor([0.0, 0.0, -1.0])
    n[0, 1] = torch.tensor([0.0, 0.0, -2.0])  # parallel (length does not matter): c = 1
    n[1, 0] = torch.tensor([0.0, 0.0, -1.0])
    n[1, 1] = torch.tensor([1.0, 0.0, 0.0])  # orthogonal to (0,1): c = 0
    labels = torch.tensor([[0, 1], [0, 0]])  # differing pairs: right (0,0)-(0,1); down (0,1)-(1,1)
    s = 1.0
    expect = ((1 - 1 / (1 + math.exp(-s * 0.0))) + (1 - 1 / (1 + math.exp(-s * 1.0)))) / 2
    assert semantic_boundary_normal_loss(n, labels, sharpness=s).item() == pytest.approx(expect, abs=1e-7)
    # default sharpness 100: parallel pair 0.5, orthogonal ~0
    assert semantic_boundary_normal_loss(n, labels).item() == pytest.approx(0.25, abs=1e-7)
    # an unknown label removes its pairs
    lab_u = torch.tensor([[0, 1], [0, -1]])
    assert semantic_boundary_normal_loss(n, lab_u, sharpness=s).item() == pytest.approx(0.5, abs=1e-7)


def test_boundary_normal_no_pairs_is_zero_and_gradient_safe():
    n = torch.zeros(3, 3, 3, requires_grad=True)  # zero normals too
    for labels in (torch.zeros(3, 3, dtype=torch.long), torch.full((3, 3), -1)):
        n.grad = None
        loss = semantic_boundary_normal_loss(n, labels)
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(n.grad).all() and torch.all(n.grad == 0)
    # zero-length normals at a real boundary: finite loss and gradient
    n.grad = None
    lab = torch.tensor([[0, 1, 1], [0, 1, 1], [2, 2, 2]])
    loss = semantic_boundary_normal_loss(n, lab)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(n.grad).all()


def test_boundary_normal_gradcheck():
    g = torch.Generator().manual_seed(5)
    n = torch.randn(3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([[0, 1, 1], [0, 1, 1], [2, 2, -1]])
    assert torch.autograd.gradcheck(lambda x: semantic_boundary_normal_loss(x, lab, sharpness=3.0), (n,))


def test_min_scale_hand_and_grad():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.1, 4.0], [3.0, 3.0, 0.2]], dtype=torch.float64, requires_grad=True)
    vis = torch.tensor([True, True, False])
    assert min_scale_loss(s, vis).item() == pytest.approx(0.55)
    assert min_scale_loss(s).item() == pytest.approx((1.0 + 0.1 + 0.2) / 3)
    assert torch.autograd.gradcheck(lambda x: min_scale_loss(x, vis), (s,))
    z = min_scale_loss(s, torch.zeros(3, dtype=torch.bool))
    z.backward()
    assert z.item() == 0.0 and torch.all(s.grad == 0)


def test_compact_decoder_matches_per_pixel_linear():
    torch.manual_seed(0)
    dec = CompactSemanticDecoder(dim=4, num_classes=6)
    f = torch.randn(4, 3, 5)
    out = dec(f)
    assert out.shape == (6, 3, 5)
    W, b = dec.linear.weight, dec.linear.bias
    assert torch.allclose(out[:, 1, 2], W @ f[:, 1, 2] + b, atol=1e-6)
    assert torch.allclose(dec.decode_features(f[:, 1, :].T), out[:, 1, :].T, atol=1e-6)
    assert dec(f[None]).shape == (1, 6, 3, 5)
    # the decoder trains through the KL
    semantic_kl(out, torch.randn(6, 3, 5)).backward()
    assert dec.linear.weight.grad is not None and dec.linear.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="4,H,W"):
        dec(torch.randn(5, 3, 5))


def test_patch_pearson_ignores_a_separate_affine_per_tile_and_matches_the_global_loss_on_one_tile():
    torch.manual_seed(0)
    d = torch.rand(48, 64, dtype=torch.float64, requires_grad=True)
    a = torch.rand(3, 4, dtype=torch.float64) + 0.5
    b = torch.rand(3, 4, dtype=torch.float64) * 5
    up = lambda t: t.repeat_interleave(16, 0).repeat_interleave(16, 1)  # noqa: E731
    warped = d.detach() * up(a) + up(b)  # the prior's shape, a different scale and shift per 16 px tile
    valid = torch.rand(48, 64) > 0.2
    assert float(pearson_depth_loss(d, warped, valid, unbiased=False, patch=16)) < 1e-4  # the +1e-6 on each std
    assert float(pearson_depth_loss(d, warped, valid, unbiased=False)) > 0.3  # the global correlation sees the warp
    # one tile: the same value as the global loss on it
    other = torch.rand(16, 16, dtype=torch.float64)
    torch.testing.assert_close(pearson_depth_loss(d[:16, :16], other, valid[:16, :16], patch=16),
                               pearson_depth_loss(d[:16, :16], other, valid[:16, :16]))
    # tiles with under half their pixels valid are left out; none left -> 0
    sparse = torch.zeros(48, 64, dtype=torch.bool)
    sparse[::3] = True
    assert float(pearson_depth_loss(d, other.repeat(3, 4), sparse, patch=16)) == 0.0
    noisy = warped + torch.rand_like(warped)
    torch.autograd.gradcheck(lambda x: pearson_depth_loss(x, noisy, valid, patch=16), (d,))
