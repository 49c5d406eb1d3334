"""``aiat-data``: know your dataset before training.

    aiat-data report  --format kitti --path data/kitti/training --out reports/kitti [--no-verify-images]
    aiat-data split   --config config/training_example.yaml --out splits/kitti
    aiat-data augment-preview --config config/training_example.yaml --out preview.png

The dataset comes from the ``data``/``class_mapping`` sections of ``--config`` and/or the flags
(flags win). Exit status: 0 ok, 1 bad input (message names the file and the problem).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from aiat_training.config import ConfigError, DataSection, TrainingConfig, _format_errors, load_config
from aiat_training.data.classmap import ClassMapping, ClassMappingError
from aiat_training.data.issues import DatasetError, summarize
from aiat_training.data.readers import FORMATS, read_dataset


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', type=Path, help='training config YAML (data, class_mapping, ... sections)')
    parser.add_argument('--format', choices=FORMATS, help='dataset format')
    parser.add_argument('--path', type=Path, help='dataset location (see docs/training_config.md, data.path)')
    parser.add_argument('--images', type=Path, help='image directory (BDD100K, COCO)')
    parser.add_argument('--subset', help='Cityscapes split / YOLO split key / VOC image set')
    parser.add_argument('--class-map', type=Path, help='class-mapping YAML (classes, map, unmapped)')
    parser.add_argument('--on-error', choices=('raise', 'skip'), help='stop at the first broken input, '
                        'or skip broken items and report them')
    parser.add_argument('--sequence-regex', help='regex on file stems whose first group is the sequence id')


def _config(args) -> TrainingConfig:
    config = load_config(args.config) if args.config else TrainingConfig()
    overrides = {key: getattr(args, key) for key in ('format', 'path', 'images', 'subset', 'on_error',
                                                     'sequence_regex') if getattr(args, key, None) is not None}
    if overrides:
        data = config.data.model_dump()
        data.update(overrides)
        try:
            config.data = DataSection.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, 'command line').replace(': ', ': data.', 1)) from None
    if config.data.path is None:
        raise ConfigError('data.path: no dataset given (use --path or a --config with data.path)')
    return config


def _load(args, verify_images: bool = False):
    config = _config(args)
    mapping = (ClassMapping.from_yaml(args.class_map) if getattr(args, 'class_map', None)
               else config.class_mapping.to_mapping())
    d = config.data
    dataset = read_dataset(d.format, d.path, d.images, d.subset, mapping, d.on_error, d.sequence_regex)
    if verify_images:
        from aiat_training.data.verify import verify_images as verify
        dataset = verify(dataset, d.on_error, progress=True)
    if dataset.issues:
        print(f'{len(dataset.issues)} broken input(s) skipped: {summarize(dataset.issues)}', file=sys.stderr)
        for issue in dataset.issues[:10]:
            print(f'  {issue}', file=sys.stderr)
        if len(dataset.issues) > 10:
            print(f'  ... {len(dataset.issues) - 10} more (all in the report)', file=sys.stderr)
    return config, dataset


def cmd_report(args) -> int:
    from aiat_training.data.report import write_report
    config, dataset = _load(args, verify_images=args.verify_images)
    stats = write_report(dataset, args.out, (config.input.height, config.input.width), plots=not args.no_plots)
    print(json.dumps({'out': str(args.out), 'images': stats['images'], 'boxes': stats['boxes'],
                      'issues': stats['issues']['total'], 'verdict': stats['bias']['verdict'],
                      'imbalance_ratio': stats['bias'].get('imbalance_ratio'),
                      'remedies': stats['bias']['remedies']}, indent=2))
    return 0


def cmd_split(args) -> int:
    from aiat_training.data.split import split_dataset, split_summary, write_split
    config, dataset = _load(args)
    s = config.split
    fractions = tuple(args.fractions) if args.fractions else (s.train, s.val, s.test)
    seed = s.seed if args.seed is None else args.seed
    group = s.group_by_sequence or args.group_by_sequence
    stratify = s.stratify and not args.no_stratify
    split = split_dataset(dataset, fractions, seed=seed, stratify=stratify, group_by_sequence=group)
    out = args.out or s.lists_dir
    if out is None:
        raise ConfigError('split.lists_dir: no output directory (use --out or split.lists_dir)')
    settings = {'fractions': list(fractions), 'seed': seed, 'stratify': stratify, 'group_by_sequence': group}
    files = write_split(dataset, split, out, settings)
    summary = split_summary(dataset, split)
    print(json.dumps({'files': {k: str(v) for k, v in files.items()}, 'settings': settings,
                      'images': {k: v['images'] for k, v in summary.items()},
                      'sequences': {k: v['sequences'] for k, v in summary.items()}}, indent=2))
    return 0


def cmd_augment_preview(args) -> int:
    from aiat_training.data.loader import TrainingDataset
    from aiat_training.data.preview import write_contact_sheet
    config, dataset = _load(args)
    train_set = TrainingDataset(dataset, config.input, config.augmentation, augment=True)
    path = write_contact_sheet(train_set, args.out, samples=args.samples, variants=args.variants,
                               seed=args.seed)
    print(json.dumps({'out': str(path), 'samples': min(args.samples, len(dataset)),
                      'variants': args.variants}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='aiat-data', description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('report', help='counts, box statistics, bias verdict: Markdown, HTML, JSON')
    _dataset_args(p)
    p.add_argument('--out', type=Path, required=True, help='output directory')
    p.add_argument('--no-plots', action='store_true', help='skip the matplotlib plots')
    p.add_argument('--verify-images', action=argparse.BooleanOptionalAction, default=True,
                   help='decode every image fully to find truncated/corrupt files (default: on; '
                   'a progress bar on a terminal); --no-verify-images reads only the headers')
    p.set_defaults(func=cmd_report)
    p = sub.add_parser('split', help='reproducible train/val/test file lists')
    _dataset_args(p)
    p.add_argument('--out', type=Path, help='output directory (default: split.lists_dir)')
    p.add_argument('--fractions', type=float, nargs=3, metavar=('TRAIN', 'VAL', 'TEST'))
    p.add_argument('--seed', type=int)
    p.add_argument('--group-by-sequence', action='store_true', help='keep each sequence in one split')
    p.add_argument('--no-stratify', action='store_true', help='do not balance class presence')
    p.set_defaults(func=cmd_split)
    p = sub.add_parser('augment-preview', help='contact sheet of augmented samples with boxes')
    _dataset_args(p)
    p.add_argument('--out', type=Path, required=True, help='output image (.png/.jpg)')
    p.add_argument('--samples', type=int, default=4, help='rows (dataset samples)')
    p.add_argument('--variants', type=int, default=4, help='augmented variants per sample')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(func=cmd_augment_preview)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ClassMappingError, DatasetError, FileNotFoundError, ValueError) as exc:
        print(f'aiat-data: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
