"""Losses of a Generalized-Focal-Loss detection head, written from the papers.

- Quality Focal Loss and Distribution Focal Loss: Li et al., "Generalized Focal Loss" (NeurIPS 2020), eqs. 5-6.
- GIoU loss: Rezatofighi et al., "Generalized Intersection over Union" (CVPR 2019), via torchvision.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss


def quality_focal_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Element-wise QFL = -|y - s|^beta * ((1 - y) log(1 - s) + y log s), with s = sigmoid(logits).

    ``target`` y in [0, 1] has the shape of ``logits`` (the IoU-quality of the assigned class at
    positive cells, 0 everywhere else). Returns the unreduced loss.
    """
    if logits.shape != target.shape:
        raise ValueError(f'quality_focal_loss: logits {tuple(logits.shape)} vs target {tuple(target.shape)}')
    target = target.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    scale = (target - logits.sigmoid()).abs().pow(beta)
    return bce * scale


def distribution_focal_loss(bin_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL = -((y_{i+1} - y) log S_i + (y - y_i) log S_{i+1}), y_i = floor(y), S = softmax over bins.

    ``bin_logits`` [..., n_bins], ``target`` [...] continuous distance in bin units, inside
    [0, n_bins - 1). Returns the unreduced loss with the shape of ``target``.
    """
    n_bins = bin_logits.shape[-1]
    if bin_logits.shape[:-1] != target.shape:
        raise ValueError(f'distribution_focal_loss: logits {tuple(bin_logits.shape)} vs target {tuple(target.shape)}')
    target = target.to(bin_logits.dtype).clamp(0, n_bins - 1 - 1e-4)
    left = target.floor().long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = target - left.to(target.dtype)
    log_prob = F.log_softmax(bin_logits, dim=-1)
    return -(log_prob.gather(-1, left.unsqueeze(-1)).squeeze(-1) * weight_left
             + log_prob.gather(-1, right.unsqueeze(-1)).squeeze(-1) * weight_right)


def giou_loss(pred_xyxy: torch.Tensor, target_xyxy: torch.Tensor) -> torch.Tensor:
    """Element-wise 1 - GIoU for paired boxes [..., 4] (x1, y1, x2, y2); unreduced."""
    return generalized_box_iou_loss(pred_xyxy, target_xyxy, reduction='none')
