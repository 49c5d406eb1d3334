"""Dataset report: counts, box statistics, read issues and a class-imbalance verdict with remedies.

:func:`dataset_stats` returns plain JSON-able numbers; :func:`write_report` adds matplotlib plots and
writes ``report.json``, ``report.md`` and ``report.html`` into a directory.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.issues import summarize

# Verdict thresholds (max/min boxes-per-class ratio) and the box count below which a class needs data.
MILD_RATIO = 3.0
SEVERE_RATIO = 10.0
MIN_BOXES = 100
MAX_REPEAT = 10.0
SMALL_AT_INPUT = 8.0   # px at the network input: below the finest NanoDet stride


def _describe(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {'count': 0}
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {'count': int(len(values)), 'mean': float(values.mean()), 'min': float(values.min()),
            'p5': float(q[0]), 'p25': float(q[1]), 'median': float(q[2]), 'p75': float(q[3]),
            'p95': float(q[4]), 'max': float(values.max())}


def _box_table(dataset: DetectionDataset, input_size):
    rows = []   # class, w, h, w_in, h_in, cx_rel, cy_rel, occlusion, truncation
    for s in dataset.samples:
        if not len(s.boxes):
            continue
        b = s.boxes.astype(np.float64)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        nan = np.full(len(b), np.nan)
        rows.append(np.stack([s.labels, w, h, w * input_size[1] / s.width, h * input_size[0] / s.height,
                              (b[:, 0] + b[:, 2]) / 2 / s.width, (b[:, 1] + b[:, 3]) / 2 / s.height,
                              s.attributes.get('occlusion', nan), s.attributes.get('truncation', nan)], 1))
    return np.concatenate(rows) if rows else np.zeros((0, 9))


def bias_verdict(dataset: DetectionDataset, min_boxes: int = MIN_BOXES) -> dict:
    names = dataset.class_names
    boxes = np.zeros(len(names), np.int64)
    images_with = np.zeros(len(names), np.int64)
    for s in dataset.samples:
        np.add.at(boxes, s.labels, 1)
        images_with[np.unique(s.labels)] += 1
    present = boxes > 0
    out = {'boxes_per_class': dict(zip(names, boxes.tolist())), 'min_boxes': min_boxes}
    if not present.any():
        out.update(verdict='no boxes', imbalance_ratio=None, remedies=['label data: the dataset has no boxes'])
        return out
    ratio = float(boxes[present].max() / boxes[present].min())
    missing = [n for n, b in zip(names, boxes) if b == 0]
    scarce = {n: int(b) for n, b in zip(names, boxes) if 0 < b < min_boxes}
    # Inverse-frequency loss weights, normalised to mean 1 over the present classes.
    weights = np.where(present, boxes.sum() / np.maximum(boxes, 1) / present.sum(), 0.0)
    weights = weights / weights[present].mean()
    # Repeat-factor sampling (LVIS): r_c = sqrt(f_max / f_c) over image frequency, capped; an image
    # is repeated by the largest factor of the classes it holds.
    freq = images_with / max(len(dataset), 1)
    repeat = np.where(images_with > 0, np.minimum(MAX_REPEAT, np.sqrt(freq.max() / np.maximum(freq, 1e-12))), 0.0)
    repeat = np.maximum(repeat, np.where(images_with > 0, 1.0, 0.0))
    remedies = []
    if ratio >= SEVERE_RATIO:
        verdict = 'severely imbalanced'
        remedies.append('resample: repeat images holding rare classes (repeat_factors below), '
                        'and weight the classification loss (class_weights below)')
    elif ratio >= MILD_RATIO:
        verdict = 'imbalanced'
        remedies.append('weight the classification loss by class_weights (inverse frequency)')
    else:
        verdict = 'balanced'
    for name, count in scarce.items():
        remedies.append(f'more data for {name!r}: {count} boxes; collect at least {min_boxes - count} more '
                        '(or render them in simulation)')
    for name in missing if dataset.mapped else []:
        remedies.append(f'{name!r} has no boxes: the model cannot learn it from this dataset; '
                        'add data or remove the class')
    rarest = names[int(np.where(present, boxes, boxes.max() + 1).argmin())]
    commonest = names[int(boxes.argmax())]
    out.update(verdict=verdict, imbalance_ratio=ratio, commonest=commonest, rarest=rarest,
               missing_classes=missing if dataset.mapped else [],
               absent_classes=[] if dataset.mapped else missing, scarce_classes=scarce,
               class_weights={n: round(float(w), 4) for n, w in zip(names, weights)},
               repeat_factors={n: round(float(r), 3) for n, r in zip(names, repeat)},
               remedies=remedies or ['none needed'])
    return out


def dataset_stats(dataset: DetectionDataset, input_size=(416, 416)) -> dict:
    names = dataset.class_names
    table = _box_table(dataset, input_size)
    per_image = np.array([len(s.boxes) for s in dataset.samples], np.float64)
    stats = {
        'source': dataset.source,
        'classes': names,
        'images': len(dataset),
        'boxes': int(len(table)),
        'ignore_regions': int(sum(len(s.ignore) for s in dataset.samples)),
        'empty_images': int((per_image == 0).sum()),
        'sequences': len({s.sequence for s in dataset.samples if s.sequence is not None}),
        'image_sizes': {f'{w}x{h}': n for (w, h), n in _count((s.width, s.height) for s in dataset.samples)},
        'boxes_per_image': _describe(per_image),
        'dropped_by_mapping': dict(dataset.dropped_boxes),
        'issues': {'total': len(dataset.issues), 'by_kind': summarize(dataset.issues),
                   'first': [i.to_dict() for i in dataset.issues[:50]]},
        'input_size': list(input_size),
        'per_class': {},
    }
    for c, name in enumerate(names):
        rows = table[table[:, 0] == c]
        entry = {'boxes': int(len(rows)),
                 'images': int(sum(1 for s in dataset.samples if c in s.labels)),
                 'width_px': _describe(rows[:, 1]), 'height_px': _describe(rows[:, 2]),
                 'size_at_input_px': _describe(np.sqrt(rows[:, 3] * rows[:, 4])),
                 'aspect_w_over_h': _describe(rows[:, 1] / np.maximum(rows[:, 2], 1e-6)),
                 'smaller_than_8px_at_input': int((np.minimum(rows[:, 3], rows[:, 4]) < SMALL_AT_INPUT).sum())}
        area = rows[:, 1] * rows[:, 2]
        entry['coco_size'] = {'small': int((area < 32 ** 2).sum()),
                              'medium': int(((area >= 32 ** 2) & (area < 96 ** 2)).sum()),
                              'large': int((area >= 96 ** 2).sum())}
        for column, key in ((7, 'occlusion'), (8, 'truncation')):
            values = rows[:, column][~np.isnan(rows[:, column])]
            if len(values):
                entry[key] = _levels(values, key)
        stats['per_class'][name] = entry
    stats['bias'] = bias_verdict(dataset)
    return stats


def _count(items):
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _levels(values: np.ndarray, key: str) -> dict:
    if key == 'occlusion':
        return {str(int(k)): int(n) for k, n in zip(*np.unique(np.round(values), return_counts=True))}
    bins = [0.0, 0.15, 0.3, 0.5, 1.0001]   # KITTI difficulty uses truncation 0.15 / 0.3 / 0.5
    hist, _ = np.histogram(values, bins=bins)
    return {f'{lo:g}-{min(hi, 1):g}': int(n) for lo, hi, n in zip(bins[:-1], bins[1:], hist)}


# --- plots and documents -----------------------------------------------------------------------------
def _plots(dataset: DetectionDataset, stats: dict, out_dir: Path) -> dict[str, str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = dataset.class_names
    table = _box_table(dataset, stats['input_size'])
    files = {}

    def save(fig, name, title):
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=90)
        plt.close(fig)
        files[name] = title

    fig, ax = plt.subplots(figsize=(7, 3.2))
    counts = [stats['per_class'][n]['boxes'] for n in names]
    ax.bar(range(len(names)), counts, color='tab:blue')
    ax.set_xticks(range(len(names)), names, rotation=30, ha='right')
    ax.set_ylabel('boxes')
    if counts and max(counts) > 20 * max(1, min(c for c in counts if c) if any(counts) else 1):
        ax.set_yscale('log')
    ax.set_title('Boxes per class')
    save(fig, 'boxes_per_class.png', 'Boxes per class')

    fig, ax = plt.subplots(figsize=(7, 3))
    per_image = [len(s.boxes) for s in dataset.samples]
    ax.hist(per_image, bins=np.arange(0, max(per_image or [0]) + 2) - 0.5, color='tab:green')
    ax.set_xlabel('boxes in the image')
    ax.set_ylabel('images')
    ax.set_title('Boxes per image')
    save(fig, 'boxes_per_image.png', 'Boxes per image')

    if len(table):
        size = np.sqrt(table[:, 3] * table[:, 4])
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        bins = np.geomspace(max(size.min(), 0.5), max(size.max(), 1.0) * 1.01, 30)
        aspect = table[:, 1] / np.maximum(table[:, 2], 1e-6)
        abins = np.geomspace(max(aspect.min(), 1e-2), max(aspect.max(), 1e-2) * 1.01, 30)
        for c, name in enumerate(names):
            rows = table[:, 0] == c
            if rows.any():
                axes[0].hist(size[rows], bins=bins, histtype='step', label=name)
                axes[1].hist(aspect[rows], bins=abins, histtype='step', label=name)
        axes[0].axvline(SMALL_AT_INPUT, color='red', ls='--', lw=1)
        for ax in axes:
            ax.set_xscale('log')
            ax.set_ylabel('boxes')
        axes[0].set_xlabel(f'sqrt(w*h) at the {stats["input_size"][1]}x{stats["input_size"][0]} input (px)')
        axes[1].set_xlabel('aspect ratio w/h')
        axes[0].set_title('Box size')
        axes[1].set_title('Box aspect')
        axes[1].legend(fontsize=7)
        save(fig, 'box_size_aspect.png', 'Box size and aspect ratio')

        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        h = ax.hist2d(table[:, 5], table[:, 6], bins=20, range=[[0, 1], [0, 1]], cmap='viridis')
        ax.invert_yaxis()
        fig.colorbar(h[3], ax=ax, label='boxes')
        ax.set_xlabel('centre x / width')
        ax.set_ylabel('centre y / height')
        ax.set_title('Where boxes are')
        save(fig, 'box_centres.png', 'Box centre positions')

        attrs = [(7, 'occlusion'), (8, 'truncation')]
        attrs = [(col, key) for col, key in attrs if (~np.isnan(table[:, col])).any()]
        if attrs:
            fig, axes = plt.subplots(1, len(attrs), figsize=(5 * len(attrs), 3.2), squeeze=False)
            for ax, (col, key) in zip(axes[0], attrs):
                levels = sorted({lvl for n in names for lvl in stats['per_class'][n].get(key, {})})
                bottom = np.zeros(len(names))
                for lvl in levels:
                    vals = np.array([stats['per_class'][n].get(key, {}).get(lvl, 0) for n in names])
                    ax.bar(range(len(names)), vals, bottom=bottom, label=lvl)
                    bottom += vals
                ax.set_xticks(range(len(names)), names, rotation=30, ha='right')
                ax.set_title(key)
                ax.legend(fontsize=7, title='level')
            save(fig, 'occlusion_truncation.png', 'Occlusion / truncation per class')
    return files


def render_markdown(stats: dict, plots: dict[str, str]) -> str:
    b = stats['bias']
    lines = [f'# Dataset report: `{stats["source"]}`', '',
             f'- images: **{stats["images"]}** ({stats["empty_images"]} without boxes), '
             f'boxes: **{stats["boxes"]}**, ignore regions: {stats["ignore_regions"]}, '
             f'sequences: {stats["sequences"] or "none given"}',
             '- image sizes: ' + ', '.join(f'{k} ({v})' for k, v in list(stats['image_sizes'].items())[:5]),
             f'- boxes per image: median {stats["boxes_per_image"].get("median", 0):g}, '
             f'mean {stats["boxes_per_image"].get("mean", 0):.2f}, max {stats["boxes_per_image"].get("max", 0):g}',
             f'- read issues: {stats["issues"]["total"]} {stats["issues"]["by_kind"] or ""}',
             f'- dropped by the class mapping: {stats["dropped_by_mapping"] or "none"}', '',
             '## Bias verdict', '',
             f'**{b["verdict"]}**' + (f' — most/least boxes per class = {b["imbalance_ratio"]:.1f} '
                                       f'({b["commonest"]} / {b["rarest"]})' if b.get('imbalance_ratio') else ''),
             '']
    lines += [f'- {r}' for r in b['remedies']]
    lines += ['', '## Per class', '',
              '| class | boxes | images | loss weight | repeat factor | median size at input (px) | '
              '< 8 px at input | median aspect w/h | occlusion | truncation |',
              '|---|---|---|---|---|---|---|---|---|---|']
    for name in stats['classes']:
        c = stats['per_class'][name]
        lines.append(f'| {name} | {c["boxes"]} | {c["images"]} | {b.get("class_weights", {}).get(name, "-")} | '
                     f'{b.get("repeat_factors", {}).get(name, "-")} | '
                     f'{c["size_at_input_px"].get("median", float("nan")):.1f} | {c["smaller_than_8px_at_input"]} | '
                     f'{c["aspect_w_over_h"].get("median", float("nan")):.2f} | '
                     f'{_fmt(c.get("occlusion"))} | {_fmt(c.get("truncation"))} |')
    lines.append('')
    for file, title in plots.items():
        lines += [f'### {title}', '', f'![{title}]({file})', '']
    if stats['issues']['first']:
        lines += ['## Read issues (first 50)', '']
        for i in stats['issues']['first']:
            place = i['file'] + (f':{i["line"]}' if i['line'] else '') + (f' ({i["where"]})' if i['where'] else '')
            lines.append(f'- `{place}`: {i["kind"]}: {i["message"]}')
        lines.append('')
    return '\n'.join(lines)


def _fmt(levels):
    return ' '.join(f'{k}:{v}' for k, v in levels.items()) if levels else '-'


def write_report(dataset: DetectionDataset, out_dir: str | Path, input_size=(416, 416),
                 plots: bool = True) -> dict:
    """Write report.json, report.md (+ PNG plots) and report.html; returns the stats."""
    import markdown
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = dataset_stats(dataset, input_size)
    (out_dir / 'report.json').write_text(json.dumps(stats, indent=2, default=_json_default))
    plot_files = _plots(dataset, stats, out_dir) if plots else {}
    text = render_markdown(stats, plot_files)
    (out_dir / 'report.md').write_text(text)
    body = markdown.markdown(text, extensions=['tables'])
    (out_dir / 'report.html').write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Dataset report</title>'
        '<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}'
        'td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>' + body + '</body></html>')
    return stats


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    raise TypeError(f'not JSON serialisable: {type(value)}')
