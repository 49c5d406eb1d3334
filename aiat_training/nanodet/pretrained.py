"""The pretrained COCO NanoDet as a model bundle, created in the cache on first use.

``python -m aiat_training.nanodet.pretrained [PATH]`` prints the bundle directory.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Union

from aiat_perception.assets import cache_dir
from aiat_perception.inference.bundle import BundleError, load_bundle
from aiat_perception.pretrained import PRETRAINED_NAME, PRETRAINED_VERSION, VERSION_KEY, outdated_reason

from .coco import COCO_CLASSES
from .npm_package import ensure_nanodet_files

BUNDLE_NAME = PRETRAINED_NAME


def default_bundle_path() -> Path:
    return cache_dir('bundles', BUNDLE_NAME)


def ensure_pretrained_bundle(path: Optional[Union[str, Path]] = None) -> Path:
    """Directory of the pretrained COCO bundle; imported and exported once if not valid there
    (or of an older :data:`PRETRAINED_VERSION`). The bundle is flexible (dynamic height and
    width) with ``resize: keep_aspect``; ``Detector(..., resize='stretch')`` still stretches."""
    path = Path(path) if path is not None else default_bundle_path()
    if (path / 'bundle.yaml').is_file() and (path / 'model.pt2').is_file():
        try:
            if outdated_reason(load_bundle(path)) is None:
                return path
        except BundleError:
            pass  # damaged or from an older export: build it again
    if path.is_dir() and any(path.iterdir()) and not (path / 'bundle.yaml').is_file():
        raise FileExistsError(f'{path}: exists and is not a bundle directory; not overwriting it')
    from .export import export_bundle, nanodet_input          # torch is imported only when the bundle is built
    from .importer import INPUT_SIZE, load_pretrained

    files = ensure_nanodet_files()
    model = load_pretrained(frozen_bn=True, files=files)
    provenance = files.provenance()
    provenance['architecture'] = 'NanoDet-g: CSP backbone, PAN neck, GFL head (reg_max 10)'
    provenance['tool'] = 'aiat_training.nanodet.pretrained'
    provenance[VERSION_KEY] = PRETRAINED_VERSION
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export beside the target and move into place, so no reader sees a half-written bundle.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f'.{path.name}-') as tmp:
        # NanoDet's COCO training stretched mostly 640x480 photos to 416x416: its objects are
        # squeezed 4:3, and keep_aspect may squeeze that much too (docs/real_camera.md)
        spec = nanodet_input(*INPUT_SIZE, resize='keep_aspect', flexible=True, max_stretch=4.0 / 3.0)
        staged = export_bundle(model, Path(tmp) / path.name, COCO_CLASSES, input_spec=spec,
                               score_threshold=0.35, nms_iou_threshold=0.6,
                               provenance=provenance, name=BUNDLE_NAME, torch_program=True)
        if path.exists():
            shutil.rmtree(path)
        staged.replace(path)
    return path


def main(argv: Optional[list] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or any(a in ('-h', '--help') for a in argv):
        print('usage: python -m aiat_training.nanodet.pretrained [BUNDLE_DIR]')
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    print(ensure_pretrained_bundle(argv[0] if argv else None))
    return 0


if __name__ == '__main__':
    sys.exit(main())
