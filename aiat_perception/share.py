"""Where the package's data files are: ``config/`` (parameter files, graphs, scenarios), ``launch/``.

From a source checkout (editable install included) they are the tree's own; from an install (colcon,
``pip install``) they are in ``<prefix>/share/aiat_perception``, found through the ament index when
it is set up, else next to the installed Python package (``<prefix>/lib/pythonX.Y/site-packages``),
else under ``sys.prefix``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List

PACKAGE = 'aiat_perception'
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _is_share(path: Path) -> bool:
    return (path / 'config' / 'launch').is_dir()


def share_candidates() -> List[Path]:
    candidates = [SOURCE_ROOT]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # ament_index_python missing, or the package is not in the index
        pass
    # <prefix>/lib/pythonX.Y/site-packages/aiat_perception -> <prefix>/share/aiat_perception
    for parent in Path(__file__).resolve().parents[1:5]:
        candidates.append(parent / 'share' / PACKAGE)
    candidates.append(Path(sys.prefix) / 'share' / PACKAGE)
    return candidates


def share_dir() -> Path:
    """The directory holding ``config/`` and ``launch/``; FileNotFoundError naming where it looked."""
    candidates = share_candidates()
    for candidate in candidates:
        if _is_share(candidate):
            return candidate
    raise FileNotFoundError(f'{PACKAGE}: no config/launch directory in any of '
                            f'{", ".join(str(c) for c in candidates)}')


def config_dir() -> Path:
    return share_dir() / 'config'
