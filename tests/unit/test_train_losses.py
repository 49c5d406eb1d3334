"""Hand-checkable cases for QFL, DFL, GIoU and the full head loss."""
import math

import pytest
import torch
import torch.nn.functional as F

from aiat_training.train.cells import cell_layout, expected_distances
from aiat_training.train.head_loss import GFLHeadLoss
from aiat_training.train.losses import distribution_focal_loss, giou_loss, quality_focal_loss


def test_qfl_is_bce_scaled_by_distance_to_target_for_hard_labels():
    logits = torch.tensor([-2.0, -0.3, 0.0, 1.5, 3.0])
    for y in (0.0, 1.0):
        target = torch.full_like(logits, y)
        s = logits.sigmoid()
        bce = -(y * torch.log(s) + (1 - y) * torch.log(1 - s))
        expected = bce * (y - s).abs() ** 2
        assert torch.allclose(quality_focal_loss(logits, target), expected, atol=1e-6)


def test_qfl_soft_target_minimum_at_target():
    target = torch.full((201,), 0.7)
    logits = torch.linspace(-4, 4, 201)
    loss = quality_focal_loss(logits, target)
    best = logits[loss.argmin()].sigmoid().item()
    assert abs(best - 0.7) < 0.02
    # at s == y exactly the focal factor makes the loss zero
    exact = quality_focal_loss(torch.logit(torch.tensor([0.7])), torch.tensor([0.7]))
    assert exact.item() == pytest.approx(0.0, abs=1e-9)


def test_qfl_beta_zero_equals_plain_bce():
    logits = torch.randn(3, 7)
    target = torch.rand(3, 7)
    assert torch.allclose(quality_focal_loss(logits, target, beta=0.0),
                          F.binary_cross_entropy_with_logits(logits, target, reduction='none'), atol=1e-6)


def test_dfl_value_for_two_bin_target():
    # y = 2.3 between bins 2 and 3: loss = -(0.7 log S2 + 0.3 log S3)
    logits = torch.randn(11)
    probs = logits.softmax(-1)
    loss = distribution_focal_loss(logits[None], torch.tensor([2.3]))
    expected = -(0.7 * math.log(probs[2]) + 0.3 * math.log(probs[3]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_dfl_minimum_puts_mass_on_the_two_neighbouring_bins():
    target = torch.tensor([2.3])
    best = torch.full((1, 11), -40.0)
    best[0, 2], best[0, 3] = math.log(0.7), math.log(0.3)
    entropy = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert distribution_focal_loss(best, target).item() == pytest.approx(entropy, rel=1e-4)
    torch.manual_seed(0)
    others = best + 0.5 * torch.randn(500, 11)
    assert (distribution_focal_loss(others, target.expand(500)) > entropy).all()
    # gradient descent from uniform moves the mode to bin 2 and decodes to about the target
    logits = torch.zeros(1, 11, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=5.0)
    for _ in range(200):
        opt.zero_grad()
        distribution_focal_loss(logits, target).sum().backward()
        opt.step()
    probs = logits.detach().softmax(-1)[0]
    assert probs.argmax().item() == 2 and probs[3] > probs[[0, 1, 4, 5, 6, 7, 8, 9, 10]].max()
    assert expected_distances(logits.detach().repeat(1, 4), 10)[0, 0].item() == pytest.approx(2.3, abs=0.3)


def test_giou_loss_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert giou_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    # disjoint 1x2 boxes: IoU 0, hull 4x2 = 8, union 4 -> GIoU = -(8-4)/8 -> loss 1.5
    b = torch.tensor([[3.0, 0.0, 4.0, 2.0]])
    c = torch.tensor([[0.0, 0.0, 1.0, 2.0]])
    assert giou_loss(c, b).item() == pytest.approx(1.5, abs=1e-6)


def _perfect_head(layout, box, label, num_classes=3, reg_max=10):
    """Logits that put the right distances and high score at every cell inside ``box``."""
    n = layout.num_cells
    cls = torch.full((1, n, num_classes), -8.0)
    box_logits = torch.zeros(1, n, 4 * (reg_max + 1))
    ltrb = torch.cat([layout.centres - box[:2], box[2:] - layout.centres], -1) / layout.strides[:, None]
    ltrb = ltrb.clamp(0, reg_max - 0.01)
    left = ltrb.floor().long()
    frac = ltrb - left
    bins = torch.full((n, 4, reg_max + 1), -30.0)
    bins.scatter_(2, left[..., None], torch.log((1 - frac).clamp(min=1e-9))[..., None])
    bins.scatter_(2, (left + 1)[..., None], torch.log(frac.clamp(min=1e-9))[..., None])
    box_logits[0] = bins.reshape(n, -1)
    return cls, box_logits


def test_head_loss_lower_for_right_predictions_and_gradients_flow():
    layout = cell_layout(128, 128)
    box = torch.tensor([30.0, 40.0, 90.0, 100.0])
    targets = [{'boxes': box[None], 'labels': torch.tensor([1])}]
    loss_fn = GFLHeadLoss(num_classes=3)
    cls, box_logits = _perfect_head(layout, box, 1)
    good = loss_fn(cls, box_logits, targets, (128, 128))
    random_cls = torch.randn_like(cls, requires_grad=True)
    random_box = torch.randn_like(box_logits, requires_grad=True)
    bad = loss_fn(random_cls, random_box, targets, (128, 128))
    assert good['num_pos'] > 0 and good['num_pos'] == bad['num_pos']
    assert good['giou'] < 0.01 and bad['giou'] > 0.1
    assert good['dfl'] < bad['dfl']
    bad['loss'].backward()
    assert random_cls.grad.abs().sum() > 0 and random_box.grad.abs().sum() > 0


def test_head_loss_without_objects_only_pushes_scores_down():
    loss_fn = GFLHeadLoss(num_classes=2)
    n = cell_layout(64, 64).num_cells
    cls = torch.zeros(2, n, 2, requires_grad=True)
    box = torch.zeros(2, n, 44, requires_grad=True)
    targets = [{'boxes': torch.zeros(0, 4), 'labels': torch.zeros(0, dtype=torch.long)}] * 2
    out = loss_fn(cls, box, targets, (64, 64))
    out['loss'].backward()
    assert out['num_pos'] == 0 and out['giou'] == 0
    assert (cls.grad > 0).all()          # every score is pushed towards 0
    assert box.grad.abs().sum() == 0


def test_head_loss_rejects_mismatched_layout_and_labels():
    loss_fn = GFLHeadLoss(num_classes=2)
    n = cell_layout(64, 64).num_cells
    with pytest.raises(ValueError, match='layout'):
        loss_fn(torch.zeros(1, n + 1, 2), torch.zeros(1, n + 1, 44), [{'boxes': torch.zeros(0, 4),
                'labels': torch.zeros(0)}], (64, 64))
    with pytest.raises(ValueError, match='labels'):
        loss_fn(torch.zeros(1, n, 2), torch.zeros(1, n, 44),
                [{'boxes': torch.tensor([[1.0, 1, 30, 30]]), 'labels': torch.tensor([5])}], (64, 64))


def test_ignore_regions_remove_background_classification_loss():
    loss_fn = GFLHeadLoss(num_classes=2)
    n = cell_layout(64, 64).num_cells
    cls = torch.zeros(1, n, 2, requires_grad=True)
    box = torch.zeros(1, n, 44)
    region = torch.tensor([[0.0, 0.0, 32.0, 32.0]])
    out = loss_fn(cls, box, [{'boxes': torch.zeros(0, 4), 'labels': torch.zeros(0, dtype=torch.long),
                              'ignore': region}], (64, 64))
    out['loss'].backward()
    centres = cell_layout(64, 64).centres
    inside = ((centres > 0) & (centres < 32)).all(-1)
    assert (cls.grad[0, inside] == 0).all() and (cls.grad[0, ~inside] > 0).all()
