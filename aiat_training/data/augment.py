"""Box-aware augmentation built from the ``augmentation`` config section (albumentations).

Boxes are ``pascal_voc`` (``xyxy`` pixels). Ignore regions travel with the boxes (label field
``is_ignore``) so they move with the image. Boxes are clipped to the image and dropped when less
than ``min_visibility`` of their area survives, or when narrower/lower than ``min_size`` pixels.
"""
from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from aiat_training.config import AugmentationSection


def build_augmentation(cfg: AugmentationSection | None = None, seed: int | None = None,
                       size: tuple[int, int] | None = None) -> A.Compose:
    """The augmentation pipeline; call it with ``image=, bboxes=, labels=, is_ignore=``.

    ``size`` (height, width): the crop is resized back to it (the network input size); without it
    a crop leaves a smaller image.
    """
    cfg = cfg or AugmentationSection()
    transforms = []
    if cfg.enabled:
        if cfg.crop.p > 0 and cfg.crop.max_fraction > 0:
            f = cfg.crop.max_fraction
            transforms.append(A.RandomCropFromBorders(crop_left=f, crop_right=f, crop_top=f,
                                                      crop_bottom=f, p=cfg.crop.p))
            if size is not None:
                transforms.append(A.Resize(height=size[0], width=size[1]))
        if cfg.flip.p > 0:
            transforms.append(A.HorizontalFlip(p=cfg.flip.p))
        if cfg.scale.p > 0 and cfg.scale.range > 0:
            r = cfg.scale.range
            transforms.append(A.Affine(scale=(1 - r, 1 + r), border_mode=cv2.BORDER_CONSTANT,
                                       fill=0, p=cfg.scale.p))
        if cfg.translation.p > 0 and cfg.translation.fraction > 0:
            t = cfg.translation.fraction
            transforms.append(A.Affine(translate_percent=(-t, t), border_mode=cv2.BORDER_CONSTANT,
                                       fill=0, p=cfg.translation.p))
        if cfg.rotation.p > 0 and cfg.rotation.degrees > 0:
            d = cfg.rotation.degrees
            transforms.append(A.Affine(rotate=(-d, d), rotate_method='largest_box',
                                       border_mode=cv2.BORDER_CONSTANT, fill=0, p=cfg.rotation.p))
        if cfg.color_jitter.p > 0:
            c = cfg.color_jitter
            transforms.append(A.ColorJitter(brightness=(1 - c.brightness, 1 + c.brightness),
                                            contrast=(1 - c.contrast, 1 + c.contrast),
                                            saturation=(1 - c.saturation, 1 + c.saturation),
                                            hue=(-c.hue, c.hue), p=c.p))
        if cfg.gaussian_noise.p > 0 and cfg.gaussian_noise.std > 0:
            transforms.append(A.GaussNoise(std_range=(0.0, cfg.gaussian_noise.std),
                                           p=cfg.gaussian_noise.p))
        if cfg.cutout.p > 0:
            c = cfg.cutout
            transforms.append(A.CoarseDropout(num_holes_range=(1, c.max_holes),
                                              hole_height_range=(c.max_size / 4, c.max_size),
                                              hole_width_range=(c.max_size / 4, c.max_size),
                                              fill=0, p=c.p))
    return A.Compose(
        transforms or [A.NoOp()],
        bbox_params=A.BboxParams(format='pascal_voc', label_fields=['labels', 'is_ignore'],
                                 min_visibility=cfg.min_visibility, min_width=cfg.min_size,
                                 min_height=cfg.min_size, clip=True, filter_invalid_bboxes=True),
        seed=seed)


def apply_augmentation(transform: A.Compose, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                       ignore: np.ndarray | None = None):
    """(image, boxes [N,4] float32, labels [N] int64, ignore [M,4] float32) after ``transform``."""
    ignore = np.zeros((0, 4), np.float32) if ignore is None else np.asarray(ignore, np.float32)
    all_boxes = np.concatenate([np.asarray(boxes, np.float32).reshape(-1, 4), ignore.reshape(-1, 4)])
    all_labels = np.concatenate([np.asarray(labels, np.int64), np.full(len(ignore), -1, np.int64)])
    flags = np.concatenate([np.zeros(len(boxes), np.int64), np.ones(len(ignore), np.int64)])
    out = transform(image=image, bboxes=all_boxes, labels=all_labels, is_ignore=flags)
    out_boxes = np.asarray(out['bboxes'], np.float32).reshape(-1, 4)
    out_flags = np.asarray(out['is_ignore'], np.int64).reshape(-1)
    out_labels = np.asarray(out['labels'], np.int64).reshape(-1)
    keep = out_flags == 0
    return out['image'], out_boxes[keep], out_labels[keep], out_boxes[~keep]
