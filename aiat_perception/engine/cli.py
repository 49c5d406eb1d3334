"""``aiat-engine``: build and inspect TensorRT engines for a model bundle, on the target machine.

    aiat-engine build BUNDLE --precision fp32|fp16|int8 [--calibration DATA] [--batch MIN:OPT:MAX]
                             [--min-size HxW] [--max-size HxW]
                             [--workspace MB] [--timing-cache FILE] [--output ENGINE | --cache-dir DIR]
    aiat-engine inspect ENGINE [--bundle BUNDLE]

Without ``--output`` the engine goes into the engine cache (``$AIAT_ENGINE_CACHE``, default
``~/.cache/aiat/engines``) under a key of bundle, TensorRT version, GPU, precision and batch profile:
the directory the ``tensorrt`` backend and the nodes look in. Problems end in one line on stderr
(exit 1), never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='aiat-engine', description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)

    build = commands.add_parser('build', help='build a TensorRT engine from a bundle')
    build.add_argument('bundle', type=Path, help='model bundle directory')
    build.add_argument('--precision', choices=('fp32', 'fp16', 'int8'), default='fp16')
    build.add_argument('--calibration', help='int8: directory of images or a split file (one path a line)')
    build.add_argument('--calibration-batch', type=int, default=8)
    build.add_argument('--calibration-limit', type=int, default=512, help='at most this many images')
    build.add_argument('--calibration-cache', type=Path, help='default: ENGINE.calib')
    build.add_argument('--batch', default='1', help='N or MIN:OPT:MAX (optimization profile; default 1)')
    build.add_argument('--min-size', metavar='HxW', help='flexible bundles: smallest input height x width '
                       'the engine takes (default one size_multiple square)')
    build.add_argument('--max-size', metavar='HxW', help='flexible bundles: largest input height x width '
                       '(default: a square holding every aspect-keeping input of the trained pixel count '
                       'up to 4:1, e.g. 832x832 for 416x416; at most MAX_INPUT_PIXELS)')
    build.add_argument('--workspace', type=int, metavar='MB', help='builder workspace limit')
    build.add_argument('--timing-cache', type=Path, metavar='FILE',
                       help='read and update this timing cache (default in the cache: one per GPU/TensorRT)')
    build.add_argument('--output', type=Path, metavar='ENGINE', help='engine file (default: the engine cache)')
    build.add_argument('--cache-dir', type=Path, help='engine cache root (default $AIAT_ENGINE_CACHE)')
    build.add_argument('--device', type=int, default=0, help='CUDA device index')

    inspect = commands.add_parser('inspect', help='print an engine\'s metadata and check it')
    inspect.add_argument('engine', type=Path)
    inspect.add_argument('--bundle', type=Path, help='also check the engine against this bundle')
    return parser


def _build(args: argparse.Namespace) -> int:
    from ..inference.bundle import load_bundle
    from .builder import BuildOptions, build_engine, describe_shapes, machine_facts
    from .cache import cache_entry, default_cache_root, timing_cache_path, ENGINE_FILE
    from .calibration import calibration_image_paths
    from .metadata import workspace_bytes
    from .profile import input_size_range, parse_batch, parse_size, profile_shapes
    from .trt_api import import_tensorrt

    batch = parse_batch(args.batch)
    workspace_bytes(args.workspace)
    if args.precision == 'int8':
        if not args.calibration:
            raise ValueError('--precision int8 needs --calibration DATA (a directory of images or a '
                             'split file written by `aiat-data split`)')
        calibration_image_paths(args.calibration, args.calibration_limit)
    elif args.calibration:
        raise ValueError(f'--calibration is only used with --precision int8 (not {args.precision})')
    bundle = load_bundle(args.bundle)
    sizes = input_size_range(bundle.input, args.min_size and parse_size(args.min_size),
                             args.max_size and parse_size(args.max_size))
    shapes = profile_shapes(bundle.input, batch, sizes.max, sizes.min)
    import_tensorrt()    # the one-line "what to install" when it is missing
    machine = machine_facts(args.device)
    root = args.cache_dir or default_cache_root()
    engine = args.output or cache_entry(root, bundle, machine, args.precision, batch,
                                        calibration_source=args.calibration, min_size=sizes.min,
                                        max_size=sizes.max) / ENGINE_FILE
    timing = args.timing_cache or timing_cache_path(root, machine)
    print(f'building {args.precision} engine for {bundle.name!r} with TensorRT {machine.tensorrt_version} '
          f'on {machine.gpu_name} (sm {machine.compute_capability}); profile {describe_shapes(shapes)}',
          file=sys.stderr)
    result = build_engine(bundle, engine, BuildOptions(
        precision=args.precision, batch=batch, workspace_mb=args.workspace, calibration=args.calibration,
        calibration_batch=args.calibration_batch, calibration_limit=args.calibration_limit,
        calibration_cache=args.calibration_cache, timing_cache=timing, device_index=args.device,
        min_size=sizes.min, max_size=sizes.max))
    for warning in result.warnings:
        print(f'warning: {warning}', file=sys.stderr)
    print(json.dumps({'engine': str(result.engine_path), 'seconds': round(result.seconds, 1),
                      'metadata': result.metadata.to_dict()}, indent=2))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .metadata import differences, read_metadata
    meta = read_metadata(args.engine)
    report = {'engine': str(args.engine), 'metadata': meta.to_dict()}
    bundle = None
    if args.bundle:
        from ..inference.bundle import load_bundle
        bundle = load_bundle(args.bundle)
    machine = None
    from .trt_api import tensorrt_problem
    problem = tensorrt_problem()
    if problem is None:
        from .builder import machine_facts
        try:
            machine = machine_facts()
        except RuntimeError as exc:
            problem = str(exc)
    report['machine_checked'] = machine is not None
    if problem:
        report['machine_not_checked_because'] = problem
    report['differences'] = differences(meta, machine, bundle)
    print(json.dumps(report, indent=2))
    return 0 if not report['differences'] else 3


def main(argv: Optional[List[str]] = None) -> int:
    from ..inference.bundle import BundleError
    from .calibration import CalibrationError
    from .metadata import EngineMetadataError
    from .profile import ProfileError
    from .trt_api import TensorRTUnavailable
    from .builder import EngineBuildError

    args = build_parser().parse_args(argv)
    try:
        return _build(args) if args.command == 'build' else _inspect(args)
    except (TensorRTUnavailable, BundleError, CalibrationError, EngineMetadataError, ProfileError,
            EngineBuildError, ValueError, OSError) as exc:
        message = ' '.join(str(exc).split())
        print(f'aiat-engine {args.command}: {message}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
