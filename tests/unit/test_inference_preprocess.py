"""Preprocessing: golden NanoDet input tensor, encodings, letterbox mapping, buffer reuse."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_perception.assets import darknet_image, reference_file
from aiat_perception.inference.bundle import InputSpec
from aiat_perception.inference.preprocess import Preprocessor, Transform

NANODET = InputSpec('images', 416, 416, 'BGR', 'stretch', (103.53, 116.28, 123.675),
                    (57.375, 57.12, 58.395))


@pytest.fixture(scope='module')
def golden():
    return np.load(reference_file('nanodet', 'nanodet_tf_golden.npz'))


@pytest.mark.parametrize('photo', ['dog', 'horses'])
def test_reproduces_golden_input(golden, photo):
    # Bilinear (cv2.INTER_LINEAR) stretch reproduces the reference tensor to float32 rounding
    # (max abs difference ~2.4e-7 in normalised units); INTER_AREA / CUBIC differ by up to ~1.0.
    image = cv2.imread(str(darknet_image(f'{photo}.jpg')))
    tensor, [transform] = Preprocessor(NANODET)(image, 'bgr8')
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, golden[f'{photo}_input'], rtol=0, atol=1e-5)
    assert transform == Transform(416 / image.shape[1], 416 / image.shape[0], 0, 0,
                                  image.shape[1], image.shape[0])


def test_rgb_input_and_rgb_network_agree(golden):
    bgr = cv2.imread(str(darknet_image('dog.jpg')))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    from_rgb, _ = Preprocessor(NANODET)(rgb, 'rgb8')
    np.testing.assert_allclose(from_rgb, golden['dog_input'], atol=1e-5)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    np.testing.assert_allclose(Preprocessor(NANODET)(bgra, 'bgra8')[0], golden['dog_input'], atol=1e-5)
    # a network that wants RGB gets the channels swapped (and its own mean/std per channel)
    rgb_spec = InputSpec('images', 416, 416, 'RGB', 'stretch', (123.675, 116.28, 103.53),
                         (58.395, 57.12, 57.375))
    net_rgb, _ = Preprocessor(rgb_spec)(bgr, 'bgr8')
    np.testing.assert_allclose(net_rgb[0, ::-1], golden['dog_input'][0], atol=1e-5)


def test_mono_inputs():
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))   # 48x64
    spec = InputSpec('images', 48, 64, 'BGR', 'stretch', (10.0, 20.0, 30.0), (2.0, 4.0, 8.0))
    out, _ = Preprocessor(spec)(gray, 'mono8')
    for c, (m, s) in enumerate(zip(spec.mean, spec.std)):
        np.testing.assert_allclose(out[0, c], (gray - m) / s, atol=1e-5)
    gray_spec = InputSpec('images', 48, 64, 'GRAY', 'stretch', (0.0,), (255.0,))
    colour = np.dstack([gray, gray, gray])
    out, _ = Preprocessor(gray_spec)(colour, 'bgr8')
    assert out.shape == (1, 1, 48, 64)
    np.testing.assert_allclose(out[0, 0], gray / 255.0, atol=1.5 / 255)


def test_letterbox_mapping_round_trip():
    spec = InputSpec('images', 320, 320, 'BGR', 'letterbox', (0.0,) * 3, (1.0,) * 3, pad_value=114.0)
    image = np.full((720, 1280, 3), 200, np.uint8)
    tensor, [t] = Preprocessor(spec)(image)
    # 1280x720 -> 320x180, centred vertically: 70 rows of padding above
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (0.25, 0.25, 0.0, 70.0)
    assert np.all(tensor[0, :, :70] == 114.0) and np.all(tensor[0, :, 250:] == 114.0)
    assert np.all(tensor[0, :, 70:250] == 200.0)
    boxes = np.array([[0, 0, 1280, 720], [100.5, 33.25, 640, 700]], np.float32)
    np.testing.assert_allclose(t.to_network(boxes)[0], [0, 70, 320, 250])
    np.testing.assert_allclose(t.to_original(t.to_network(boxes)), boxes, atol=1e-3)
    # boxes reaching into the padding are clipped to the image
    np.testing.assert_allclose(t.to_original(np.array([[-5, 0, 400, 320]], np.float32)),
                               [[0, 0, 1280, 720]])


def test_letterbox_places_content_where_boxes_map():
    # a white square at a known place must land where the transform says
    spec = InputSpec('images', 256, 256, 'BGR', 'letterbox', (0.0,) * 3, (1.0,) * 3, pad_value=0.0)
    image = np.zeros((300, 600, 3), np.uint8)
    image[100:200, 400:500] = 255
    tensor, [t] = Preprocessor(spec, interpolation='nearest')(image)
    x1, y1, x2, y2 = t.to_network(np.array([[400, 100, 500, 200]], np.float32))[0]
    ys, xs = np.nonzero(tensor[0, 0] > 127)
    assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
    assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1


def test_batch_buffers_are_reused_and_mixed_sizes_work():
    spec = InputSpec('images', 64, 64, 'BGR', 'letterbox', (0.0,) * 3, (1.0,) * 3)
    pre = Preprocessor(spec)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((48, 64), (100, 50), (64, 64))]
    first, transforms = pre(images)
    assert first.shape == (3, 3, 64, 64) and len(transforms) == 3
    singles = [pre(img)[0].copy() for img in images]
    second, _ = pre(images)
    assert second is first                      # same buffer for the same batch size
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(second[i], single[0])


@pytest.mark.parametrize('image, encoding, pattern', [
    (np.zeros((10, 10, 3), np.uint8), 'yuv422', "unsupported image encoding 'yuv422'"),
    (np.zeros((10, 10, 3), np.uint8), 'mono8', r'shape \(10, 10, 3\) does not fit encoding'),
    (np.zeros((10, 10, 3), np.float32), 'bgr8', 'dtype float32'),
    (np.zeros((0, 10, 3), np.uint8), 'bgr8', 'does not fit'),
    (np.zeros((10, 10, 5), np.uint8), None, 'cannot tell the encoding'),
])
def test_bad_images(image, encoding, pattern):
    with pytest.raises(ValueError, match=pattern):
        Preprocessor(NANODET)(image, encoding)


@pytest.mark.parametrize('resize', ['stretch', 'letterbox'])
@pytest.mark.parametrize('color_order', ['BGR', 'RGB'])
def test_resize_then_fill_equals_fill(resize, color_order):
    """Training's split (resize, augment, then fill at the network size) gives the vehicle's tensor."""
    spec = InputSpec('images', 96, 128, color_order, resize, (10.0, 20.0, 30.0), (2.0, 3.0, 4.0))
    pre = Preprocessor(spec)
    image = np.random.default_rng(0).integers(0, 256, (75, 200, 3), dtype=np.uint8)
    direct = np.empty((3, 96, 128), np.float32)
    t_direct = pre.fill(direct, image, 'bgr8')
    resized, t_split = pre.resize(image)
    assert resized.shape == (96, 128, 3) and resized.dtype == np.uint8 and t_split == t_direct
    split = np.empty_like(direct)
    assert pre.fill(split, resized, 'bgr8') == Transform(1.0, 1.0, 0.0, 0.0, 128, 96)
    np.testing.assert_allclose(split, direct, atol=1e-6)
