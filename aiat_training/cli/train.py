"""``aiat-train``: fine-tune, evaluate and export the detector.

  aiat-train fit CONFIG [--resume] [--out DIR] [--on-error raise|skip]
  aiat-train eval (--bundle DIR | --checkpoint PT) --config CONFIG [--split val|test|train] [--out DIR]
  aiat-train export CHECKPOINT --out DIR [--weights ema|model] [--score-threshold 0.35] [--opset 17]
  aiat-train tune CONFIG --search SEARCH.yaml --trials N [--workers N | --gpus 0,1] [--storage URL]
  aiat-train ablate-augment [--out DIR] [--seeds 3]
  aiat-train advise ...   (when aiat_training.advise exists)

Multi-GPU: ``torchrun --nproc_per_node=N -m aiat_training.cli.train fit CONFIG``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_fit(args) -> int:
    from aiat_training.data.loader import TrainingDataset
    from aiat_training.train.config import load_fit_config
    from aiat_training.train.data_setup import read_splits
    from aiat_training.train.trainer import Trainer

    cfg = load_fit_config(args.config)
    if args.out:
        cfg.output.dir = Path(args.out)
    if args.on_error:
        cfg.data.on_error = args.on_error
    splits = read_splits(cfg)
    train = splits['train']
    issues = train.issues          # the splits share the dataset's read issues
    if issues:
        from aiat_training.data.issues import summarize
        print(f'aiat-train: {len(issues)} broken input(s) skipped: {summarize(issues)}; first: {issues[0]}',
              file=sys.stderr)
    train_set = TrainingDataset(train, cfg.input, cfg.augmentation, augment=True, seed=cfg.train.seed)
    trainer = Trainer(cfg, train.class_names, train_set, splits.get('val'), progress=not args.quiet)
    try:
        summary = trainer.fit(resume=args.resume)
    finally:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if trainer.dist.is_main:
        summary.pop('history', None)
        _print(summary)
    return 0


def _dataset_split(config_path, split: str):
    from aiat_training.train.config import load_fit_config
    from aiat_training.train.data_setup import read_splits

    cfg = load_fit_config(config_path)
    splits = read_splits(cfg)
    if split not in splits:
        raise SystemExit(f'{config_path}: split {split!r} is empty or missing (have {sorted(splits)})')
    return splits[split]


def cmd_eval(args) -> int:
    from aiat_training.train.evaluate import evaluate_bundle
    from aiat_training.train.export import export_checkpoint

    out = Path(args.out)
    bundle = args.bundle
    if bundle is None:
        report = export_checkpoint(args.checkpoint, out / 'bundle')
        bundle = report['bundle']
    dataset = _dataset_split(args.config, args.split)
    metrics = evaluate_bundle(bundle, dataset, out, batch_size=args.batch_size)
    summary = {k: metrics[k] for k in ('bundle', 'images', 'ground_truth_boxes', 'mAP', 'mAP50')
               if k in metrics}
    summary['operating_point'] = metrics['operating_point']
    summary['per_class'] = metrics['per_class']
    summary['report'] = str(out)
    _print(summary)
    return 0


def cmd_export(args) -> int:
    from aiat_training.train.export import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.out, weights=args.weights,
                               score_threshold=args.score_threshold, nms_iou_threshold=args.nms_iou_threshold,
                               opset=args.opset, simplify=not args.no_simplify, tolerance=args.tolerance,
                               resize=args.resize, flexible=False if args.fixed else None)
    _print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='aiat-train', description='Fine-tune, evaluate and export the detector.')
    sub = parser.add_subparsers(dest='command', required=True)

    fit = sub.add_parser('fit', help='train from a YAML config (docs/training_fit_config.md)')
    fit.add_argument('config', type=Path)
    fit.add_argument('--resume', action='store_true', help='continue from OUTPUT/checkpoints/last.pt '
                     '(best.pt if last.pt is corrupt); an error if the run has no checkpoint yet')
    fit.add_argument('--on-error', choices=('raise', 'skip'), help='override data.on_error: stop at the first '
                     'broken label file or undecodable image, or skip it and report it')
    fit.add_argument('--out', type=Path, help='override output.dir')
    fit.add_argument('--quiet', action='store_true', help='no progress bar')
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser('eval', help='COCO mAP, per-class AP, PR curves, confusion, mean IoU '
                        'through the inference core (Detector + ONNX Runtime)')
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument('--bundle', type=Path, help='a model bundle directory')
    src.add_argument('--checkpoint', type=Path, help='a checkpoint (exported to OUT/bundle first)')
    ev.add_argument('--config', type=Path, required=True, help='fit config naming the dataset and split')
    ev.add_argument('--split', default='val', choices=('train', 'val', 'test'))
    ev.add_argument('--out', type=Path, default=Path('runs/eval'), help='report directory')
    ev.add_argument('--batch-size', type=int, default=8)
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser('export', help='checkpoint -> model bundle, with an ONNX Runtime vs PyTorch check')
    ex.add_argument('checkpoint', type=Path)
    ex.add_argument('--out', type=Path, required=True, help='bundle directory to write')
    ex.add_argument('--weights', choices=('ema', 'model'), default='ema')
    ex.add_argument('--score-threshold', type=float, default=0.35, help='bundle operating threshold')
    ex.add_argument('--nms-iou-threshold', type=float, default=0.6)
    ex.add_argument('--opset', type=int, default=17)
    ex.add_argument('--no-simplify', action='store_true', help='skip onnxsim')
    ex.add_argument('--tolerance', type=float, default=1e-3, help='max allowed |ORT - torch|')
    ex.add_argument('--resize', choices=('keep_aspect', 'letterbox', 'stretch'),
                    help='bundle input.resize (default: the run\'s export.resize, keep_aspect)')
    ex.add_argument('--fixed', action='store_true', help='export a fixed-size bundle even when the model '
                    'could be flexible (default: the run\'s export.flexible, auto)')
    ex.set_defaults(func=cmd_export)

    from aiat_training import ablation
    from aiat_training.tune import cli as tune_cli
    tune = sub.add_parser('tune', help='hyperparameter search on Optuna (docs/tuning.md)',
                          description=tune_cli.__doc__.split('\n\n')[0])
    tune_cli.add_arguments(tune)
    tune.set_defaults(func=tune_cli.run)
    abl = sub.add_parser('ablate-augment', help='augmentation ablation on rendered data '
                         '(docs/augmentation_ablation.md)', description=ablation.__doc__.split('\n\n')[0])
    ablation.add_arguments(abl)
    abl.set_defaults(func=ablation.run)

    if importlib.util.find_spec('aiat_training.advise') is not None:
        adv = sub.add_parser('advise', help='training advice (aiat_training.advise)', add_help=False)
        adv.add_argument('args', nargs=argparse.REMAINDER)
        adv.set_defaults(func=lambda a: __import__('aiat_training.advise', fromlist=['main']).main(a.args) or 0)
    return parser


def main(argv=None) -> int:
    from aiat_training.config import ConfigError
    from aiat_training.data.classmap import ClassMappingError
    from aiat_training.data.issues import DatasetError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['advise']:  # its own parser: argparse's REMAINDER drops leading --options
        from aiat_training.advise import main as advise_main
        return advise_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        from aiat_training.train.checkpoint import CheckpointError
    except ImportError:             # no torch: only the torch-free subcommands can run
        CheckpointError = ConfigError
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ClassMappingError, DatasetError, CheckpointError, FileNotFoundError) as exc:
        print(f'aiat-train: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
