"""The detection loss of a NanoDet/GFL head: ATSS assignment + QFL + DFL + GIoU.

Normalisation follows the GFL paper's practice: QFL summed and divided by the number of positive
cells; GIoU and DFL weighted per positive by its (detached) highest predicted class score and
divided by the sum of those weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torchvision.ops import box_iou

from .assigner import atss_assign
from .cells import DEFAULT_CELL_OFFSET, DEFAULT_STRIDES, boxes_to_distances, cell_layout
from .cells import distances_to_boxes, expected_distances
from .losses import distribution_focal_loss, giou_loss, quality_focal_loss


@dataclass
class LossWeights:
    qfl: float = 1.0
    dfl: float = 0.25
    giou: float = 2.0


class GFLHeadLoss:
    def __init__(self, num_classes: int, reg_max: int = 10, strides: Sequence[int] = DEFAULT_STRIDES,
                 weights: LossWeights | None = None, atss_topk: int = 9, anchor_scale: float = 5.0,
                 qfl_beta: float = 2.0, cell_offset: float = DEFAULT_CELL_OFFSET):
        self.num_classes = num_classes
        self.cell_offset = cell_offset
        self.reg_max = reg_max
        self.strides = tuple(strides)
        self.weights = weights or LossWeights()
        self.atss_topk = atss_topk
        self.anchor_scale = anchor_scale
        self.qfl_beta = qfl_beta
        self._layout_cache = {}

    def layout(self, height: int, width: int, device):
        key = (height, width, str(device))
        if key not in self._layout_cache:
            self._layout_cache[key] = cell_layout(height, width, self.strides, self.cell_offset, device=device)
        return self._layout_cache[key]

    def assign(self, layout, targets):
        """Per image: (positive cell indices, their gt boxes, their labels), concatenated over the batch,
        and an [B, N] mask of background cells inside ignore regions (no classification loss)."""
        batch_idx, cell_idx, boxes, labels = [], [], [], []
        ignored = torch.zeros(len(targets), layout.num_cells, dtype=torch.bool, device=layout.centres.device)
        for b, target in enumerate(targets):
            gt_boxes = target['boxes'].to(layout.centres.device, torch.float32).reshape(-1, 4)
            gt_labels = target['labels'].to(layout.centres.device, torch.long).reshape(-1)
            valid = (gt_boxes[:, 2] > gt_boxes[:, 0]) & (gt_boxes[:, 3] > gt_boxes[:, 1])
            gt_boxes, gt_labels = gt_boxes[valid], gt_labels[valid]
            if gt_labels.numel() and (gt_labels.min() < 0 or gt_labels.max() >= self.num_classes):
                raise ValueError(f'target labels of image {b} outside [0, {self.num_classes})')
            assigned = atss_assign(layout, gt_boxes, self.atss_topk, self.anchor_scale)
            pos = torch.nonzero(assigned >= 0).squeeze(1)
            batch_idx.append(torch.full_like(pos, b))
            cell_idx.append(pos)
            boxes.append(gt_boxes[assigned[pos]])
            labels.append(gt_labels[assigned[pos]])
            ignore = target.get('ignore')
            if ignore is not None and len(ignore):
                ignore = ignore.to(layout.centres.device, torch.float32).reshape(-1, 4)
                c = layout.centres[:, None, :]
                inside = ((c > ignore[None, :, :2]) & (c < ignore[None, :, 2:])).all(-1).any(-1)
                ignored[b] = inside & (assigned < 0)
        return torch.cat(batch_idx), torch.cat(cell_idx), torch.cat(boxes), torch.cat(labels), ignored

    def __call__(self, cls_logits: torch.Tensor, box_logits: torch.Tensor, targets, input_hw):
        """``targets``: one dict per image with ``boxes`` [M,4] xyxy input pixels, ``labels`` [M]
        and optionally ``ignore`` [K,4] regions where background cells get no classification loss.

        Returns a dict with ``loss`` (to back-propagate) and detached parts ``qfl``, ``dfl``,
        ``giou``, ``num_pos``.
        """
        cls_logits = cls_logits.float()
        box_logits = box_logits.float()
        batch, num_cells, num_classes = cls_logits.shape
        layout = self.layout(int(input_hw[0]), int(input_hw[1]), cls_logits.device)
        if num_cells != layout.num_cells or num_classes != self.num_classes:
            raise ValueError(f'head output [{batch},{num_cells},{num_classes}] does not match the layout '
                             f'of a {input_hw[0]}x{input_hw[1]} input ({layout.num_cells} cells, '
                             f'{self.num_classes} classes)')
        with torch.no_grad():
            b_idx, c_idx, gt_boxes, gt_labels, ignored = self.assign(layout, targets)
        num_pos = b_idx.numel()

        quality = torch.zeros_like(cls_logits)
        zero = cls_logits.sum() * 0
        if num_pos:
            pos_box_logits = box_logits[b_idx, c_idx]                                  # [P, 4*(R+1)]
            centres = layout.centres[c_idx]
            strides = layout.strides[c_idx, None]
            pred_boxes = distances_to_boxes(centres, expected_distances(pos_box_logits, self.reg_max) * strides)
            with torch.no_grad():
                iou = box_iou(pred_boxes, gt_boxes).diagonal().clamp(min=0)
                quality[b_idx, c_idx, gt_labels] = iou
                weight = cls_logits[b_idx, c_idx].sigmoid().max(dim=1).values
            weight_sum = weight.sum().clamp(min=1e-6)
            loss_giou = (giou_loss(pred_boxes, gt_boxes) * weight).sum() / weight_sum
            target_bins = (boxes_to_distances(centres, gt_boxes) / strides).clamp(0, self.reg_max - 0.01)
            dfl = distribution_focal_loss(pos_box_logits.reshape(-1, 4, self.reg_max + 1), target_bins)
            loss_dfl = (dfl.mean(dim=1) * weight).sum() / weight_sum
        else:
            loss_giou = zero + box_logits.sum() * 0
            loss_dfl = zero + box_logits.sum() * 0
        qfl = quality_focal_loss(cls_logits, quality, self.qfl_beta)
        if ignored.any():
            qfl = qfl * (~ignored).unsqueeze(-1).to(qfl.dtype)
        loss_qfl = qfl.sum() / max(num_pos, 1)
        w = self.weights
        loss = w.qfl * loss_qfl + w.dfl * loss_dfl + w.giou * loss_giou
        return {'loss': loss, 'qfl': loss_qfl.detach(), 'dfl': loss_dfl.detach(),
                'giou': loss_giou.detach(), 'num_pos': num_pos}
