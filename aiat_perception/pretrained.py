"""Name and version of the pretrained COCO bundle kept in the user cache.

The version is written into the bundle's provenance (``pretrained_version``); a cached bundle of an
older version (version 1: fixed 416x416 input, ``resize: stretch``) is rebuilt, not reused.
"""
from __future__ import annotations

from typing import Optional

PRETRAINED_NAME = 'nanodet-coco-416'
# 1: fixed 416x416, stretch. 2: flexible input (dynamic height/width), resize keep_aspect.
# 3: keep_aspect may squeeze toward the square by up to 4:3 (input.max_stretch).
PRETRAINED_VERSION = 3
VERSION_KEY = 'pretrained_version'


def outdated_reason(bundle) -> Optional[str]:
    """Why a cached pretrained bundle must be rebuilt (None: it is current)."""
    version = bundle.provenance.get(VERSION_KEY, 1)
    if version != PRETRAINED_VERSION:
        return (f'it is pretrained bundle version {version!r} (resize {bundle.input.resize}), this '
                f'code builds version {PRETRAINED_VERSION}')
    return None
