"""ATSS label assignment (Zhang et al., "Bridging the Gap Between Anchor-based and Anchor-free
Detection via Adaptive Training Sample Selection", CVPR 2020), on the flat cell layout.

Each cell carries one square prior box of side ``anchor_scale * stride`` centred on the cell.
For each ground-truth box: per level, the ``topk`` cells whose centres are nearest to the box
centre are candidates; the IoU threshold is mean + std of the candidates' prior IoUs; candidates at
or above it whose centre lies inside the box are positives. A cell claimed by several boxes goes
to the box with the highest prior IoU.
"""
from __future__ import annotations

import torch
from torchvision.ops import box_iou

from .cells import CellLayout

INSIDE_MARGIN = 0.01  # pixels: a centre on the box edge is not inside


def prior_boxes(layout: CellLayout, anchor_scale: float) -> torch.Tensor:
    half = layout.strides * anchor_scale / 2
    return torch.cat([layout.centres - half[:, None], layout.centres + half[:, None]], dim=-1)


def atss_assign(layout: CellLayout, gt_boxes: torch.Tensor, topk: int = 9,
                anchor_scale: float = 5.0) -> torch.Tensor:
    """Index of the assigned ground-truth box per cell ([N] long), -1 for background."""
    num_cells = layout.num_cells
    device = layout.centres.device
    assigned = torch.full((num_cells,), -1, dtype=torch.long, device=device)
    if gt_boxes.numel() == 0:
        return assigned
    gt_boxes = gt_boxes.to(layout.centres.dtype)
    num_gt = gt_boxes.shape[0]

    ious = box_iou(prior_boxes(layout, anchor_scale), gt_boxes)                  # [N, M]
    gt_centres = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    dist = torch.cdist(layout.centres, gt_centres)                               # [N, M]

    candidates = []
    for level in layout.level_slices():
        k = min(topk, level.stop - level.start)
        _, idx = dist[level].topk(k, dim=0, largest=False)                      # [k, M]
        candidates.append(idx + level.start)
    candidates = torch.cat(candidates, dim=0)                                     # [K, M]
    gt_index = torch.arange(num_gt, device=device).expand_as(candidates)
    cand_ious = ious[candidates, gt_index]
    std = cand_ious.std(dim=0) if cand_ious.shape[0] > 1 else torch.zeros_like(cand_ious[0])
    threshold = cand_ious.mean(dim=0) + std
    cand_centres = layout.centres[candidates]                                     # [K, M, 2]
    inside = ((cand_centres - gt_boxes[None, :, :2]).min(dim=-1).values > INSIDE_MARGIN) & \
             ((gt_boxes[None, :, 2:] - cand_centres).min(dim=-1).values > INSIDE_MARGIN)
    positive = (cand_ious >= threshold[None]) & inside

    # Scatter the positives into an [N, M] IoU table and resolve conflicts by the highest IoU.
    table = torch.full((num_cells, num_gt), -1.0, device=device, dtype=ious.dtype)
    table[candidates[positive], gt_index[positive]] = cand_ious[positive]
    best_iou, best_gt = table.max(dim=1)
    has_gt = best_iou >= 0
    assigned[has_gt] = best_gt[has_gt]
    return assigned
