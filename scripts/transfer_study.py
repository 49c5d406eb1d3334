"""Transfer-learning study: head-only vs fine-tune-all vs from-scratch, same image budget per run,
val mAP against epochs and against training-set size. Writes a Markdown table, two plots and the
raw JSON.

    # the study (about an hour on 2 CPU cores at the defaults; use a GPU machine when there is one)
    .venv/bin/python scripts/transfer_study.py --data runs/sim_dataset/training --out docs
    # a smoke run (a minute): tiny synthetic data, tiny inputs, written under runs/
    .venv/bin/python scripts/transfer_study.py --smoke

``--data`` is a KITTI-format directory (e.g. written by the simulator); without it a synthetic
dataset of drawn shapes is generated. Every run sees the same number of training images
(``--budget``), so smaller training sets get more epochs. The validation set is fixed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiat_training.data.classmap import ClassMapping  # noqa: E402
from aiat_training.data.loader import TrainingDataset  # noqa: E402
from aiat_training.data.readers import read_dataset  # noqa: E402
from aiat_training.train.config import fit_config_from_dict  # noqa: E402
from aiat_training.data.synthetic import write_synthetic_kitti  # noqa: E402
from aiat_training.train.trainer import Trainer  # noqa: E402

STRATEGIES = ('head_only', 'finetune_all', 'scratch')
LR = {'head_only': 0.002, 'finetune_all': 0.001, 'scratch': 0.003}


def run_one(strategy, train, val, args, out_dir) -> dict:
    epochs = max(1, math.ceil(args.budget / len(train)))
    cfg = fit_config_from_dict({
        'input': {'height': args.size, 'width': args.size},
        'model': {'strategy': strategy},
        'optimizer': {'lr': LR[strategy]},
        'schedule': {'epochs': epochs, 'warmup_iters': max(1, args.budget // args.batch // 10)},
        'train': {'batch_size': args.batch, 'num_workers': args.workers, 'seed': args.seed,
                  'eval_every': max(1, epochs // args.evals), 'log_images': 0, 'log_every': 50},
        'output': {'dir': str(out_dir)},
    })
    train_set = TrainingDataset(train, cfg.input, cfg.augmentation, augment=True, seed=args.seed)
    trainer = Trainer(cfg, train.class_names, train_set, val, progress=not args.quiet)
    start = time.perf_counter()
    summary = trainer.fit()
    curve = [{'epoch': h['epoch'], 'images_seen': h['iteration'] * args.batch, 'val_mAP': h['val_mAP'],
              'val_mAP50': h['val_mAP50']} for h in summary['history'] if 'val_mAP' in h]
    last = curve[-1] if curve else {'val_mAP': 0.0, 'val_mAP50': 0.0}
    return {'strategy': strategy, 'train_images': len(train), 'epochs': epochs,
            'iterations': summary['iterations'], 'seconds': time.perf_counter() - start,
            'final_val_mAP': last['val_mAP'], 'final_val_mAP50': last['val_mAP50'],
            'best_val_mAP': summary['best_mAP'], 'curve': curve}


def compare_with_pretrained(run_dir: Path, val, args) -> dict:
    """Export the run's best checkpoint and evaluate it and the pretrained COCO bundle on the
    validation set through the inference core (Detector + ONNX Runtime)."""
    from aiat_training.nanodet.pretrained import ensure_pretrained_bundle
    from aiat_training.train.evaluate import evaluate_bundle
    from aiat_training.train.export import export_checkpoint

    export = export_checkpoint(run_dir / 'checkpoints' / 'best.pt', args.export_bundle)
    out = {'bundle': str(args.export_bundle), 'export_check': export['onnxruntime_vs_torch']}
    for name, bundle in (('fine_tuned', args.export_bundle), ('pretrained_coco', ensure_pretrained_bundle())):
        m = evaluate_bundle(bundle, val)
        out[name] = {'mAP': m['mAP'], 'mAP50': m['mAP50'], **m['operating_point'],
                     'per_class_AP50': {k: v['AP50'] for k, v in m['per_class'].items()}}
    return out


def bundle_note(c: dict) -> str:
    rows = ['', '## Fine-tuned bundle against the pretrained COCO bundle', '',
            f'Same validation images, through the inference core (Detector, ONNX Runtime); recall and '
            f'precision at each bundle\'s operating score threshold, IoU 0.5. Bundle: `{c["bundle"]}`.', '',
            '| bundle | mAP | mAP50 | recall | precision | mean IoU of matches |', '|---|---|---|---|---|---|']
    for name in ('pretrained_coco', 'fine_tuned'):
        m = c[name]
        rows.append(f'| {name} | {m["mAP"]:.3f} | {m["mAP50"]:.3f} | {m["recall"]:.3f} | {m["precision"]:.3f} | '
                    f'{m["mean_iou_of_matches"]:.3f} |')
    return '\n'.join(rows) + '\n'


def write_outputs(results, args, out_dir: Path, dataset_note: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'transfer_study.json').write_text(json.dumps(
        {'settings': vars(args), 'dataset': dataset_note, 'runs': results}, indent=2, default=str))
    sizes = sorted({r['train_images'] for r in results})
    lines = ['# Transfer-learning study', '',
             f'Dataset: {dataset_note}. Input {args.size}x{args.size}, batch {args.batch}, '
             f'{args.budget} training images seen per run (so smaller sets get more epochs), '
             f'validation on {args.val} fixed images, seed {args.seed}. '
             'Numbers: final validation mAP@[.5:.95] / mAP@0.5 (EMA weights, pycocotools, decoded by the '
             'inference core). Generated by `scripts/transfer_study.py`.', '',
             '| strategy | ' + ' | '.join(f'{s} images' for s in sizes) + ' |',
             '|---|' + '---|' * len(sizes)]
    for strategy in STRATEGIES:
        cells = []
        for s in sizes:
            r = next((r for r in results if r['strategy'] == strategy and r['train_images'] == s), None)
            cells.append('—' if r is None else f'{r["final_val_mAP"]:.3f} / {r["final_val_mAP50"]:.3f}')
        lines.append(f'| {strategy} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Images actually seen per run (whole epochs, incomplete last batches dropped) and run '
              'time on the machine that ran it: ' + ', '.join(
                  f'{r["strategy"]}@{r["train_images"]}: {r["iterations"] * args.batch} images, {r["seconds"]:.0f} s'
                  for r in results) + '.', '']
    verdict = []
    for s in sizes:
        by = {r['strategy']: r['final_val_mAP'] for r in results if r['train_images'] == s}
        if 'scratch' in by and 'finetune_all' in by:
            better = by['finetune_all'] > by['scratch']
            verdict.append(f'at {s} images fine-tune-all {"beats" if better else "does NOT beat"} from-scratch '
                           f'({by["finetune_all"]:.3f} vs {by["scratch"]:.3f} mAP)')
    if verdict:
        lines += ['Result: ' + '; '.join(verdict) + '.', '']
    lines += ['![val mAP vs images seen](transfer_study_epochs.png)', '',
              '![val mAP vs training-set size](transfer_study_sizes.png)', '']
    (out_dir / 'transfer_study.md').write_text('\n'.join(lines))

    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 3.8), sharey=True, squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for r in results:
            if r['train_images'] == size and r['curve']:
                ax.plot([c['epoch'] for c in r['curve']], [c['val_mAP'] for c in r['curve']], marker='o',
                        label=r['strategy'])
        ax.set(xlabel=f'epoch ({size} training images)', title=f'{size} training images')
        ax.legend()
    axes[0][0].set_ylabel('val mAP@[.5:.95]')
    fig.suptitle('Validation mAP against epochs (same image budget per run)')
    fig.tight_layout()
    fig.savefig(out_dir / 'transfer_study_epochs.png', dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in STRATEGIES:
        pts = sorted((r['train_images'], r['final_val_mAP']) for r in results if r['strategy'] == strategy)
        if pts:
            ax.plot(*zip(*pts), marker='o', label=strategy)
    ax.set(xscale='log', xlabel='training images', ylabel='val mAP@[.5:.95]',
           title=f'Validation mAP against training-set size ({args.budget} images seen per run)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / 'transfer_study_sizes.png', dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, help='KITTI-format directory (default: synthetic shapes)')
    parser.add_argument('--map', nargs='+', default=['Car=car', 'Pedestrian=person'],
                        help='KITTI type=model class (model classes named like COCO classes start from '
                        'their pretrained head rows); other types are dropped')
    parser.add_argument('--export-bundle', type=Path,
                        help='export the fine-tune-all model of the largest size here and compare its '
                        'val recall with the pretrained COCO bundle')
    parser.add_argument('--sizes', type=int, nargs='+', default=[50, 200, 500])
    parser.add_argument('--val', type=int, default=100)
    parser.add_argument('--budget', type=int, default=1500, help='training images seen per run')
    parser.add_argument('--size', type=int, default=320, help='network input side')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--evals', type=int, default=6, help='validations per run (about)')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--strategies', nargs='+', default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument('--out', type=Path, default=Path('docs'))
    parser.add_argument('--smoke', action='store_true', help='tiny synthetic run into runs/transfer_smoke')
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.val, args.budget, args.size, args.batch, args.evals = [8, 16], 8, 32, 64, 4, 2
        args.workers = 0
        if args.out == Path('docs'):
            args.out = Path('runs/transfer_smoke')

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data is None:
            need = max(args.sizes) + args.val
            root = write_synthetic_kitti(tmp / 'data', num_images=need, width=2 * args.size,
                                         height=int(1.5 * args.size), max_objects=4, seed=args.seed)
            note = f'{need} synthetic images (drawn cars and pedestrians, `aiat_training.data.synthetic`)'
        else:
            root = args.data
            note = f'KITTI-format `{args.data}`'
        pairs = dict(item.split('=', 1) for item in args.map)
        classes = list(dict.fromkeys(pairs.values()))
        data = read_dataset('kitti', root, mapping=ClassMapping(classes=classes, map=pairs, unmapped='drop'))
        if len(data) < max(args.sizes) + args.val:
            raise SystemExit(f'{root}: {len(data)} images, need {max(args.sizes) + args.val}')
        val = data.subset(range(len(data) - args.val, len(data)))
        results = []
        for size in args.sizes:
            train = data.subset(range(size))       # nested subsets: a bigger set contains the smaller
            for strategy in args.strategies:
                r = run_one(strategy, train, val, args, tmp / f'{strategy}_{size}')
                print(json.dumps({k: v for k, v in r.items() if k != 'curve'}), flush=True)
                results.append(r)
                write_outputs(results, args, args.out, note)
        if args.export_bundle is not None and 'finetune_all' in args.strategies:
            comparison = compare_with_pretrained(tmp / f'finetune_all_{max(args.sizes)}', val, args)
            (args.out / 'transfer_study_bundle.json').write_text(json.dumps(comparison, indent=2))
            with (args.out / 'transfer_study.md').open('a') as f:
                f.write(bundle_note(comparison))
    print(f'wrote {args.out / "transfer_study.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
