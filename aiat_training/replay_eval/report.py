"""report.json (summary), frames.jsonl (one record per sensor frame) and report.html (plots, tables,
a strip of annotated frames, worst first). The schema is documented in docs/replay.md."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

DISTANCE_COLUMNS = ('matched', 'median_abs_m', 'p95_abs_m', 'max_abs_m', 'mean_m', 'median_relative')

SCHEMA_VERSION = 1
STRIP_FRAMES = 8


def write_json(out_dir: Path, report: Dict[str, object], records: List[Dict[str, object]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'report.json').write_text(json.dumps(report, indent=1, sort_keys=False, allow_nan=False) + '\n')
    with open(out_dir / 'frames.jsonl', 'w') as f:
        for rec in records:
            f.write(json.dumps(rec, allow_nan=False) + '\n')


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, title: str) -> str:
    return f'<figure><img src="data:image/png;base64,{b64}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption></figure>'


def _plots(summary, records) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out = []
    for sensor, label in (('camera', 'IoU 0.5 (pycocotools, interpolated)'), ('lidar', 'BEV IoU (KITTI), best precision at recall or above'),
                          ('fusion', 'BEV IoU (KITTI), best precision at recall or above')):
        curves = (summary.get(sensor) or {}).get('pr_curves') or {}
        if curves:
            fig, ax = plt.subplots(figsize=(4.5, 3.5))
            for cls, c in curves.items():
                ax.plot(c['recall'], c['precision'], label=cls)
            ax.set_xlabel('recall'), ax.set_ylabel('precision'), ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
            ax.set_title(f'{sensor} PR curves: {label}', fontsize=8)
            ax.legend(fontsize=7)
            out.append(_img(_png(fig), f'{sensor} precision-recall per class'))
    ious = [i for r in records if r['sensor'] == 'camera' for i in r.get('ious', [])]
    if ious:
        fig, ax = plt.subplots(figsize=(4.5, 3.0))
        ax.hist(ious, bins=20, range=(0.5, 1.0))
        ax.set_xlabel('IoU of matched pairs (match at 0.5)'), ax.set_ylabel('pairs')
        out.append(_img(_png(fig), 'camera IoU distribution'))
    for sensor in ('camera', 'lidar', 'fusion', 'scan'):
        lat = [(r['index'], r['latency_ms']) for r in records if r['sensor'] == sensor and r.get('latency_ms') is not None]
        if len(lat) < 2:
            continue
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 2.8))
        a.hist([v for _, v in lat], bins=30)
        a.set_xlabel('ms'), a.set_ylabel('frames')
        b.plot([i for i, _ in lat], [v for _, v in lat], lw=0.8)
        b.set_xlabel('frame'), b.set_ylabel('ms')
        mode = (summary.get(sensor) or {}).get('latency_definition', '')
        fig.suptitle(f'{sensor} latency ({mode})', fontsize=8)
        out.append(_img(_png(fig), f'{sensor} latency histogram and time series'))
    return out


def _table(rows: List[List[object]], head: List[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f'{v:.3f}'
        return html.escape('-' if v is None else str(v))
    body = ''.join('<tr>' + ''.join(f'<td>{cell(v)}</td>' for v in row) + '</tr>' for row in rows)
    return '<table><tr>' + ''.join(f'<th>{html.escape(h)}</th>' for h in head) + '</tr>' + body + '</table>'


def _strip(collected, records) -> str:
    """Camera frames with ground truth (green), detections (red) and ignore regions (grey), worst first."""
    import cv2
    thumbs = {f.index: f for f in collected.of('camera') if f.thumb}
    scored = [r for r in records if r['sensor'] == 'camera' and r['status'] in ('evaluated', 'dropped') and r['index'] in thumbs]
    scored.sort(key=lambda r: (-(r.get('fp', 0) + r.get('fn', 0)), np.mean(r['ious']) if r.get('ious') else 0.0))
    cells = []
    for r in scored[:STRIP_FRAMES]:
        f = thumbs[r['index']]
        img = cv2.imdecode(np.frombuffer(f.thumb, np.uint8), cv2.IMREAD_COLOR)
        s = f.thumb_scale
        for box, color in ([(b, (128, 128, 128)) for b in r.get('ignore', [])] + [(g['box'], (0, 200, 0)) for g in r.get('gt', [])]
                           + [(d['box'], (0, 0, 255)) for d in r.get('detections', [])]):
            x0, y0, x1, y1 = (int(round(v * s)) for v in box)
            cv2.rectangle(img, (x0, y0), (x1, y1), color, 1)
        ok, png = cv2.imencode('.png', img)
        caption = f"frame {r['index']}: TP {r.get('tp', 0)} FP {r.get('fp', 0)} FN {r.get('fn', 0)}" + (
            ' (no output: dropped)' if r['status'] == 'dropped' else '')
        cells.append(f'<figure><img src="data:image/png;base64,{base64.b64encode(png.tobytes()).decode()}">'
                     f'<figcaption>{html.escape(caption)}</figcaption></figure>')
    if not cells:
        return ''
    return ('<h2>Frames, worst first</h2><p>green: ground truth, red: detections, grey: ignore regions</p>'
            '<div class="strip">' + ''.join(cells) + '</div>')


def write_html(out_dir: Path, report: Dict[str, object], records, collected) -> Path:
    summary = report['summary']
    parts = [f'<h1>Replay evaluation: {html.escape(Path(report["bag"]).name)}</h1>',
             f'<p>mode <b>{html.escape(report["mode"])}</b>; verdict <b>{html.escape(report["verdict"])}</b></p>']
    for note in report.get('notes', []):
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    if report.get('failed'):
        parts.append('<ul class="fail">' + ''.join(f'<li>{html.escape(f)}</li>' for f in report['failed']) + '</ul>')
    cam = summary.get('camera')
    if cam:
        parts.append(f'<h2>Camera</h2><p>mAP@0.5 {cam.get("map_50")}, mAP@[.5:.95] {cam.get("map_50_95")}; '
                     f'frames {cam["frames"]}, evaluated {cam["evaluated"]}, skipped (no ground truth) '
                     f'{cam["skipped_no_gt"]}, dropped {cam["dropped"]}, malformed {cam["malformed"]}</p>')
        parts.append(_table([[c, v['ap_50'], v['ap_50_95'], v['ground_truth'], v['detections']]
                             for c, v in cam['per_class'].items()],
                            ['class', 'AP@0.5', 'AP@[.5:.95]', 'ground truth', 'detections']))
        parts.append(_table([[k, v] for k, v in cam['per_size'].items()], ['object size (COCO areas)', 'mAP@[.5:.95]']))
    for sensor, title in (('lidar', 'Lidar'), ('fusion', 'Fusion (fused boxes against the 3D ground truth)')):
        lid = summary.get(sensor)
        if not lid:
            continue
        parts.append(f'<h2>{title}</h2><p>BEV mAP|R40 {lid.get("bev_map_r40")}; frames {lid["frames"]}, evaluated {lid["evaluated"]}</p>')
        parts.append(_table([[c, v['bev_ap_r40'], v['bev_iou_threshold'], v['ground_truth'], v['detections']]
                             for c, v in lid['per_class'].items()],
                            ['class', 'BEV AP|R40', 'BEV IoU', 'ground truth', 'counted detections']))
        parts.append(_table([[k, v['recall'], v['found'], v['ground_truth']] for k, v in lid['center_distance_recall'].items()],
                            [f'class/range (m), centre distance <= {lid["center_distance_m"]} m', 'recall', 'found', 'ground truth']))
        dist = lid.get('distance_error')
        if dist:
            rows = [['all', *(dist.get(k) for k in DISTANCE_COLUMNS)]]
            rows += [[f'class {c}', *(v.get(k) for k in DISTANCE_COLUMNS)] for c, v in dist['per_class'].items()]
            rows += [[f'range {r} m', *(v.get(k) for k in DISTANCE_COLUMNS)] for r, v in dist['per_range'].items()]
            parts.append(f'<p>Distance error: {html.escape(dist["definition"])}</p>'
                         + _table(rows, ['objects', *DISTANCE_COLUMNS]))
    scan = summary.get('scan')
    if scan:
        figures = scan.get('legs') or scan.get('persons') or {}
        parts.append('<h2>Laser scan</h2>' + _table([[k, v] for k, v in figures.items()], ['figure', 'value']))
    rows = [[s, (summary[s].get('latency_ms') or {}).get('p50'), (summary[s].get('latency_ms') or {}).get('p95'),
             (summary[s].get('latency_ms') or {}).get('p99'), (summary[s].get('latency_ms') or {}).get('max'),
             summary[s].get('drop_rate'), summary[s].get('latency_definition')]
            for s in ('camera', 'lidar', 'fusion', 'scan') if summary.get(s)]
    parts.append('<h2>Latency and drops</h2>' + _table(rows, ['sensor', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'drop rate', 'latency is']))
    parts.extend(_plots(summary, records))
    parts.append(_strip(collected, records))
    style = ('body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:8px 0}'
             'td,th{border:1px solid #ccc;padding:2px 8px}figure{display:inline-block;margin:4px}'
             '.strip figure img{height:160px}.note{background:#ffd;padding:4px}.fail{color:#b00}')
    page = f'<!doctype html><html><head><meta charset="utf-8"><title>replay report</title><style>{style}</style></head><body>{"".join(parts)}</body></html>'
    path = out_dir / 'report.html'
    path.write_text(page)
    return path
