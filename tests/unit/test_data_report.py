"""Dataset report: statistics, the bias verdict ("1000 dogs, 1 cat") and the files written."""
from __future__ import annotations

import json

import numpy as np

from aiat_training.data import DetectionDataset, Sample
from aiat_training.data.issues import ReadIssue
from aiat_training.data.report import bias_verdict, dataset_stats, write_report


def dataset(counts: dict[str, int], mapped=True, per_image=5):
    names = list(counts)
    samples, i = [], 0
    for c, name in enumerate(names):
        for start in range(0, counts[name], per_image):
            n = min(per_image, counts[name] - start)
            boxes = [[10 * k, 10, 10 * k + 8, 30] for k in range(n)]
            samples.append(Sample(f'/x/{i}.png', 640, 480, boxes=boxes, labels=[c] * n,
                                  attributes={'occlusion': np.array([k % 3 for k in range(n)], np.float32),
                                              'truncation': np.zeros(n, np.float32)}))
            i += 1
    return DetectionDataset(samples, names, source='test', mapped=mapped)


def test_thousand_dogs_one_cat_is_severe_with_remedies():
    v = bias_verdict(dataset({'dog': 1000, 'cat': 1}))
    assert v['verdict'] == 'severely imbalanced' and v['imbalance_ratio'] == 1000
    assert v['rarest'] == 'cat' and v['commonest'] == 'dog'
    text = ' '.join(v['remedies'])
    assert 'resample' in text and "more data for 'cat'" in text and 'weight' in text
    assert v['class_weights']['cat'] > 100 * v['class_weights']['dog']
    assert v['repeat_factors']['cat'] > 1 and v['repeat_factors']['dog'] == 1


def test_balanced_and_mild_and_missing():
    assert bias_verdict(dataset({'a': 300, 'b': 200}))['verdict'] == 'balanced'
    mild = bias_verdict(dataset({'a': 1000, 'b': 200}))
    assert mild['verdict'] == 'imbalanced' and 'class_weights' in mild['remedies'][0]
    missing = bias_verdict(dataset({'a': 300, 'b': 0}))
    assert missing['missing_classes'] == ['b'] and any("'b' has no boxes" in r for r in missing['remedies'])
    unmapped = bias_verdict(dataset({'a': 300, 'b': 0}, mapped=False))
    assert unmapped['missing_classes'] == [] and unmapped['absent_classes'] == ['b']


def test_stats_and_files(tmp_path):
    ds = dataset({'car': 40, 'person': 7})
    ds.issues.append(ReadIssue('box_outside_image', 'l.txt', 3, None, 'box outside'))
    stats = dataset_stats(ds, (416, 416))
    assert stats['images'] == 10 and stats['boxes'] == 47
    assert stats['per_class']['car']['boxes'] == 40 and stats['per_class']['person']['images'] == 2
    assert stats['per_class']['car']['width_px']['median'] == 8
    assert stats['per_class']['car']['occlusion'] == {'0': 16, '1': 16, '2': 8}
    assert stats['per_class']['car']['smaller_than_8px_at_input'] == 40     # 8 px * 416/640 = 5.2 px
    assert stats['boxes_per_image']['max'] == 5
    out = write_report(ds, tmp_path)
    assert json.loads((tmp_path / 'report.json').read_text())['boxes'] == 47
    md = (tmp_path / 'report.md').read_text()
    assert '## Bias verdict' in md and 'l.txt:3' in md and '![Boxes per class](boxes_per_class.png)' in md
    assert '<table>' in (tmp_path / 'report.html').read_text()
    for png in ('boxes_per_class.png', 'boxes_per_image.png', 'box_size_aspect.png', 'box_centres.png',
                'occlusion_truncation.png'):
        assert (tmp_path / png).stat().st_size > 1000
    assert out['bias']['verdict'] == 'imbalanced'
