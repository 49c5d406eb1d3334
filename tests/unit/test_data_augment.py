"""Augmentation keeps boxes on their objects; visibility threshold; ignore regions follow the image."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_training.config import AugmentationSection
from aiat_training.data.augment import apply_augmentation, build_augmentation

COLORS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)], np.uint8)
BOXES = np.array([[30, 40, 130, 120], [200, 60, 260, 300], [300, 300, 400, 380],
                  [150, 180, 190, 220], [5, 330, 80, 410]], np.float32)
SIZE = 416


def marked_image():
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    for (x1, y1, x2, y2), color in zip(BOXES.astype(int), COLORS):
        image[y1:y2, x1:x2] = color
    return image


def marked(image, k):
    """Pixels showing object k, edge pixels blended with the black background included: the
    pixel's colour points the same way as the object's colour (the others are >= 45 degrees off)."""
    pixels = image.astype(np.float64)
    color = COLORS[k].astype(np.float64)
    cosine = pixels @ color / (np.linalg.norm(pixels, axis=2) * np.linalg.norm(color) + 1e-9)
    return (pixels.max(axis=2) >= 30) & (cosine > 0.95)


def geometric_only(**changes) -> AugmentationSection:
    cfg = {'flip': {'p': 0.5}, 'rotation': {'p': 1.0, 'degrees': 20}, 'scale': {'p': 1.0, 'range': 0.3},
           'translation': {'p': 1.0, 'fraction': 0.15}, 'crop': {'p': 1.0, 'max_fraction': 0.2},
           'gaussian_noise': {'p': 0.0}, 'color_jitter': {'p': 0.0}, 'cutout': {'p': 0.0},
           'min_visibility': 0.0, 'min_size': 1.0}
    cfg.update(changes)
    return AugmentationSection.model_validate(cfg)


def box_problems(image, boxes, labels) -> list[str]:
    """Where the boxes do not sit on the marked objects (empty list = all good)."""
    problems = []
    area = (BOXES[:, 2] - BOXES[:, 0]) * (BOXES[:, 3] - BOXES[:, 1])
    for box, k in zip(boxes, labels):
        ys, xs = np.nonzero(marked(image, k))
        if not len(xs):
            problems.append(f'object {k} has a box but no pixels')
            continue
        pixels_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        # every marked pixel (its unit square) lies inside the box; bilinear resampling at scale up
        # to 1.3 spreads an edge by up to ~1.3 px, hence 2 px slack
        if (pixels_box[:2] < box[:2] - 2).any() or (pixels_box[2:] > box[2:] + 2).any():
            problems.append(f'object {k}: pixels {pixels_box} outside box {box}')
        # and the box is not loose: it hugs the object's pixels (unless a rotated corner left the
        # image: the clipped box of the rotated box is then larger than the visible part)
        elif box[0] > 0 and box[1] > 0 and box[2] < SIZE and box[3] < SIZE and \
                np.abs(box - pixels_box).max() > 2.0:
            problems.append(f'object {k}: box {box} loose around pixels {pixels_box}')
    for k in set(range(len(BOXES))) - set(np.asarray(labels).tolist()):
        if marked(image, k).sum() >= 0.02 * area[k]:
            problems.append(f'object {k} is visible but lost its box')
    return problems


@pytest.mark.parametrize('seed', range(12))
def test_marked_pixels_stay_inside_their_transformed_box(seed):
    transform = build_augmentation(geometric_only(), seed=seed, size=(SIZE, SIZE))
    image, boxes, labels, _ = apply_augmentation(transform, marked_image(), BOXES, np.arange(len(BOXES)))
    assert image.shape == (SIZE, SIZE, 3)
    assert len(boxes) > 0
    assert box_problems(image, boxes, labels) == []


def test_the_check_catches_boxes_that_did_not_follow_the_image():
    transform = build_augmentation(geometric_only(flip={'p': 1.0}), seed=0, size=(SIZE, SIZE))
    image, boxes, labels, _ = apply_augmentation(transform, marked_image(), BOXES, np.arange(len(BOXES)))
    assert box_problems(image, boxes, labels) == []
    assert box_problems(image, BOXES, np.arange(len(BOXES)))          # untransformed boxes
    assert box_problems(marked_image(), boxes, labels)


@pytest.mark.parametrize('seed', range(8))
def test_boxes_below_min_visibility_are_dropped(seed):
    cfg = geometric_only(min_visibility=0.5, flip={'p': 0.0}, rotation={'p': 0.0}, scale={'p': 0.0},
                         crop={'p': 0.0}, translation={'p': 1.0, 'fraction': 0.5})
    transform = build_augmentation(cfg, seed=seed, size=(SIZE, SIZE))
    image, boxes, labels, _ = apply_augmentation(transform, marked_image(), BOXES, np.arange(len(BOXES)))
    area = (BOXES[:, 2] - BOXES[:, 0]) * (BOXES[:, 3] - BOXES[:, 1])
    for k in range(len(BOXES)):
        visible = marked(image, k).sum() / area[k]      # translation keeps the area
        if k in labels:
            assert visible >= 0.5 - 0.03
            box = boxes[list(labels).index(k)]
            assert box[0] >= 0 and box[1] >= 0 and box[2] <= SIZE and box[3] <= SIZE   # clipped
        else:
            assert visible <= 0.5 + 0.03


def test_ignore_regions_move_with_the_image():
    cfg = geometric_only(flip={'p': 1.0}, rotation={'p': 0.0}, scale={'p': 0.0}, crop={'p': 0.0},
                         translation={'p': 0.0})
    transform = build_augmentation(cfg, seed=0)
    image = np.zeros((100, 200, 3), np.uint8)
    _, boxes, labels, ignore = apply_augmentation(transform, image, np.array([[10, 10, 50, 40]]), np.array([3]),
                                                  np.array([[0, 0, 20, 100]]))
    np.testing.assert_allclose(boxes, [[150, 10, 190, 40]])
    assert labels.tolist() == [3]
    np.testing.assert_allclose(ignore, [[180, 0, 200, 100]])


def test_photometric_transforms_and_cutout_keep_geometry():
    cfg = AugmentationSection.model_validate({
        'flip': {'p': 0}, 'rotation': {'p': 0}, 'scale': {'p': 0}, 'crop': {'p': 0}, 'translation': {'p': 0},
        'gaussian_noise': {'p': 1.0, 'std': 0.1}, 'color_jitter': {'p': 1.0}, 'cutout': {'p': 1.0, 'max_size': 0.05},
        'min_visibility': 0.3})
    transform = build_augmentation(cfg, seed=1)
    image, boxes, labels, _ = apply_augmentation(transform, marked_image(), BOXES, np.arange(len(BOXES)))
    assert not np.array_equal(image, marked_image())
    # albumentations' cut-out snaps kept boxes to whole pixels (truncating): up to 1 px
    np.testing.assert_allclose(boxes, BOXES[labels], atol=1.0)


def test_disabled_augmentation_is_identity():
    transform = build_augmentation(AugmentationSection(enabled=False))
    image, boxes, labels, _ = apply_augmentation(transform, marked_image(), BOXES, np.arange(len(BOXES)))
    assert np.array_equal(image, marked_image())
    np.testing.assert_allclose(boxes, BOXES)
