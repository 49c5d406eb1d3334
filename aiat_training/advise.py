"""Transfer-strategy advice: which of the four strategies suits a dataset, with the numbers behind it.

Strategies (the names of ``model.strategy`` in the ``aiat-train fit`` config): ``head_only``
(retrain the detection head only), ``early_layers`` (keep the early, generic backbone layers and
retrain everything after them), ``finetune_all`` (fine-tune every layer), ``scratch`` (train from
random weights). The choice follows the usual size x similarity table:

=================  ======================  ===============================================
                   similar to pretraining  different from pretraining
=================  ======================  ===============================================
small dataset      head_only               early_layers
large dataset      finetune_all            scratch if very large, else finetune_all
=================  ======================  ===============================================

No COCO images are available offline, so similarity is measured against what is: real photos
from Debian packages (darknet's test photos, frames of opencv-doc's ``vtest.avi`` street video).
Two signals, each as a ratio dataset / reference:

- the pretrained detector's own confidence (mean top class score per image) and its class entropy
  over the most confident cells (a confused detector spreads its scores over classes);
- a distance between backbone feature statistics (diagonal Fréchet distance between the per-channel
  mean/std of globally pooled features) of the dataset and of the reference photos, at an early
  stage (stride 8: colour, texture) and the deepest stage (stride 32: object parts), divided by the
  same distance between two random halves of the reference set (its own spread).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


import cv2
import numpy as np
import torch

from aiat_perception.inference.preprocess import Preprocessor
from aiat_training.config import InputSection
from aiat_training.data.dataset import DetectionDataset

SMALL_IMAGES = 1000           # below: too few images to move many weights without overfitting
SCRATCH_IMAGES = 10000        # at least this many (and a different domain) to train from scratch
SIMILAR_FEATURE_RATIO = 3.0   # deep-feature distance at most this many times the reference spread
SIMILAR_CONFIDENCE_RATIO = 0.6
EARLY_FEATURE_RATIO = 3.0     # early-stage distance above this = low-level statistics differ
TOP_CELLS = 10

STRATEGIES = {
    'head_only': 'retrain the head only (backbone and neck frozen)',
    'early_layers': 'keep the early backbone layers (generic edges/colours), retrain the deeper layers '
                    'and the head',
    'finetune_all': 'fine-tune everything (small learning rate on the backbone)',
    'scratch': 'train from scratch (random initialisation)',
}


@dataclass
class Advice:
    strategy: str
    summary: str
    reasons: list[str]
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        lines = [f'recommended: {self.strategy} - {self.summary}', '', 'why:']
        lines += [f'  - {r}' for r in self.reasons]
        lines += ['', 'numbers:']
        lines += [f'  {k}: {_fmt(v)}' for k, v in self.numbers.items()]
        return '\n'.join(lines)


def _fmt(value):
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def recommend(n_images: int, feature_ratio_deep: float, feature_ratio_early: float,
              confidence_ratio: float) -> tuple[str, list[str]]:
    """The strategy from dataset size and similarity (ratios dataset / reference)."""
    similar = feature_ratio_deep <= SIMILAR_FEATURE_RATIO and confidence_ratio >= SIMILAR_CONFIDENCE_RATIO
    reasons = []
    size = 'small' if n_images < SMALL_IMAGES else 'large'
    reasons.append(f'{n_images} images: {size} (threshold {SMALL_IMAGES})')
    reasons.append(
        f'deep-feature distance {feature_ratio_deep:.2f}x the reference spread (similar if <= '
        f'{SIMILAR_FEATURE_RATIO}), detector confidence {confidence_ratio:.2f}x that on real photos '
        f'(similar if >= {SIMILAR_CONFIDENCE_RATIO}): {"similar" if similar else "different"} domain')
    if size == 'small':
        if similar:
            strategy = 'head_only'
            reasons.append('few images and pretrained features fit: train only the head, keep the rest')
        else:
            strategy = 'early_layers'
            reasons.append(f'few images but the domain differs: the deep, task-specific layers must adapt, '
                           f'too few images to move all weights; keep the generic early layers '
                           f'(early-stage distance {feature_ratio_early:.2f}x the reference spread'
                           + ('; even low-level statistics differ, consider fewer frozen stages)'
                              if feature_ratio_early > EARLY_FEATURE_RATIO else ')'))
    elif similar:
        strategy = 'finetune_all'
        reasons.append('enough images and a familiar domain: fine-tune all layers from the pretrained weights')
    elif n_images >= SCRATCH_IMAGES:
        strategy = 'scratch'
        reasons.append(f'many images (>= {SCRATCH_IMAGES}) from a different domain: pretrained weights '
                       'give little; train from scratch (or compare against finetune_all)')
    else:
        strategy = 'finetune_all'
        reasons.append(f'different domain, but fewer than {SCRATCH_IMAGES} images to train from scratch: '
                       'fine-tune everything instead')
    return strategy, reasons


def reference_images(max_video_frames: int = 16) -> list[np.ndarray]:
    """Real photos (BGR): darknet's test photos and frames spread over opencv-doc's vtest.avi."""
    from aiat_perception.assets import darknet_images, vtest_video
    images = [cv2.imread(str(p)) for p in darknet_images()]
    capture = cv2.VideoCapture(str(vtest_video()))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 795
    for index in np.linspace(0, total - 1, max_video_frames).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        if ok:
            images.append(frame)
    capture.release()
    return [im for im in images if im is not None]


class _Probe:
    """Runs the pretrained model once per image: top scores, class entropy, pooled features."""

    def __init__(self, model, input_cfg: InputSection):
        self.model = model.eval()
        self.preprocessor = Preprocessor(input_cfg.spec())

    def tensor(self, bgr: np.ndarray) -> torch.Tensor:
        batch, _ = self.preprocessor([bgr], 'bgr8')
        return torch.from_numpy(batch.copy())

    @torch.no_grad()
    def __call__(self, images) -> dict:
        top, entropy, early, deep = [], [], [], []
        for bgr in images:
            x = self.tensor(bgr)
            c3, c4, c5 = self.model.backbone(x)
            logits, _ = self.model.head(self.model.neck([c3, c4, c5]))
            scores = torch.sigmoid(logits[0])                      # [N, C]
            best = scores.max(dim=1).values
            cells = scores[best.topk(min(TOP_CELLS, len(best))).indices]
            p = cells / cells.sum(dim=1, keepdim=True).clamp_min(1e-12)
            h = -(p * p.clamp_min(1e-12).log()).sum(dim=1) / math.log(scores.shape[1])
            top.append(float(best.max()))
            entropy.append(float(h.mean()))
            early.append(c3.mean(dim=(2, 3))[0].numpy())
            deep.append(c5.mean(dim=(2, 3))[0].numpy())
        return {'top_score': np.array(top), 'entropy': np.array(entropy),
                'early': np.stack(early), 'deep': np.stack(deep)}


def feature_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    """Diagonal Fréchet distance between two sets of feature vectors, per channel scaled by ``scale``."""
    mu = (a.mean(0) - b.mean(0)) / scale
    sd = (a.std(0) - b.std(0)) / scale
    return float(math.sqrt(np.mean(mu ** 2 + sd ** 2)))


def _spread(features: np.ndarray, scale: np.ndarray, rng, rounds: int = 20) -> float:
    n = len(features)
    values = []
    for _ in range(rounds):
        order = rng.permutation(n)
        values.append(feature_distance(features[order[:n // 2]], features[order[n // 2:]], scale))
    return float(np.mean(values))


def advise(dataset: DetectionDataset, model=None, input_cfg: InputSection | None = None,
           max_images: int = 48, reference: list[np.ndarray] | None = None, seed: int = 0) -> Advice:
    """Recommend a transfer strategy for ``dataset``.

    ``model``: the pretrained NanoDet (default ``aiat_training.nanodet.load_pretrained()``).
    ``max_images``: dataset images probed (a seeded random subset). ``reference``: BGR images standing
    in for the pretraining domain (default: :func:`reference_images`).
    """
    if len(dataset) == 0:
        raise ValueError('advise: the dataset is empty')
    if model is None:
        from aiat_training.nanodet import load_pretrained
        model = load_pretrained()
    input_cfg = input_cfg or InputSection()
    rng = np.random.default_rng(seed)
    reference = reference if reference is not None else reference_images()
    if len(reference) < 4:
        raise ValueError(f'advise: need at least 4 reference images, got {len(reference)}')
    chosen = rng.choice(len(dataset), size=min(max_images, len(dataset)), replace=False)
    probe = _Probe(model, input_cfg)
    data = probe(dataset.samples[i].load_image() for i in sorted(chosen))
    ref = probe(reference)

    numbers = {'images': len(dataset), 'boxes': dataset.box_count(), 'images_probed': len(chosen),
               'reference_images': len(reference)}
    counts = [c for c in dataset.class_counts().values() if c > 0 or dataset.mapped]
    numbers['fewest_boxes_in_a_class'] = int(min(counts)) if counts else 0
    for stage in ('early', 'deep'):
        scale = ref[stage].std(0) + ref[stage].std(0).mean() * 0.1 + 1e-6
        distance = feature_distance(data[stage], ref[stage], scale)
        spread = _spread(ref[stage], scale, rng)
        numbers[f'feature_distance_{stage}'] = distance
        numbers[f'reference_spread_{stage}'] = spread
        numbers[f'feature_ratio_{stage}'] = distance / max(spread, 1e-9)
    numbers['top_score_dataset'] = float(data['top_score'].mean())
    numbers['top_score_reference'] = float(ref['top_score'].mean())
    numbers['confidence_ratio'] = numbers['top_score_dataset'] / max(numbers['top_score_reference'], 1e-9)
    numbers['class_entropy_dataset'] = float(data['entropy'].mean())
    numbers['class_entropy_reference'] = float(ref['entropy'].mean())
    strategy, reasons = recommend(len(dataset), numbers['feature_ratio_deep'], numbers['feature_ratio_early'],
                                  numbers['confidence_ratio'])
    if numbers['class_entropy_dataset'] > numbers['class_entropy_reference'] * 1.2:
        reasons.append(f'the detector is unsure which class it sees (entropy {numbers["class_entropy_dataset"]:.2f} '
                       f'vs {numbers["class_entropy_reference"]:.2f} on real photos)')
    if numbers['fewest_boxes_in_a_class'] < 100:
        reasons.append(f'a class has only {numbers["fewest_boxes_in_a_class"]} boxes: see `aiat-data report` '
                       'for the imbalance remedies')
    return Advice(strategy, STRATEGIES[strategy], reasons, numbers)


def main(argv=None) -> int:
    """``aiat-train advise``: recommend a transfer strategy for a dataset and print the numbers."""
    import argparse
    import json
    import sys
    from pathlib import Path

    from aiat_training.cli.data import _dataset_args, _load
    from aiat_training.config import ConfigError

    parser = argparse.ArgumentParser(prog='aiat-train advise', description=main.__doc__)
    _dataset_args(parser)
    parser.add_argument('--max-images', type=int, default=48, help='dataset images probed')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', type=Path, help='also write the advice as JSON here')
    args = parser.parse_args(argv)
    try:
        config, dataset = _load(args)
    except ConfigError as exc:
        print(f'aiat-train advise: {exc}', file=sys.stderr)
        return 2
    result = advise(dataset, input_cfg=config.input, max_images=args.max_images, seed=args.seed)
    print(result.format())
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2, default=float))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
