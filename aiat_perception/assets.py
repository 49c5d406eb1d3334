"""Where the project keeps downloaded assets, and the real photos it gets from Debian packages.

Large or external files live in a cache outside the repository (``$AIAT_CACHE``, default
``~/.cache/aiat``) so that a fresh clone re-uses them. Debian packages are fetched with
``apt-get download`` (the Debian registry is reachable on every machine of this project) and
unpacked with ``dpkg-deb``; nothing is installed system-wide.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get('AIAT_CACHE', Path.home() / '.cache' / 'aiat'))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_dir() -> Path:
    """The project's ``shared/`` folder (reference outputs); ``$AIAT_SHARED`` overrides."""
    env = os.environ.get('AIAT_SHARED')
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / 'shared', REPO_ROOT / 'shared']
    for candidate in candidates:
        if (candidate / 'reference').is_dir():
            return candidate
    raise FileNotFoundError(
        'shared/ with reference outputs not found; looked in '
        + ', '.join(str(c) for c in candidates) + ' (set AIAT_SHARED)')


def shared_data(*parts: str) -> Path:
    """A path under the real sensor data in ``shared/data`` (../shared/data beside the repository, the
    CI layout; ``$AIAT_SHARED`` overrides the shared folder). Missing data is an error naming where
    it was looked for, never a skip."""
    env = os.environ.get('AIAT_SHARED')
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / 'shared', REPO_ROOT / 'shared']
    for candidate in candidates:
        path = candidate.joinpath('data', *parts)
        if path.exists():
            return path
    raise FileNotFoundError(
        f'real data {"/".join(parts)} not found under ' + ', '.join(str(c / 'data') for c in candidates)
        + ' (the shared data folder sits beside the repository; set AIAT_SHARED=<path to shared>)')


def reference_file(*parts: str) -> Path:
    path = shared_dir().joinpath('reference', *parts)
    if not path.is_file():
        raise FileNotFoundError(f'reference file missing: {path}')
    return path


def debian_package_dir(package: str) -> Path:
    """Unpacked contents of a Debian package (downloaded once into the cache)."""
    target = cache_dir('debian', package)
    marker = target / '.unpacked'
    if marker.exists():
        return target
    apt_get = shutil.which('apt-get')
    if apt_get is None:
        raise RuntimeError(f'apt-get not found: cannot fetch Debian package {package!r}')
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([apt_get, 'download', package], cwd=tmp,
                                capture_output=True, text=True)
        if result.returncode != 0:
            # A fresh machine may have no package lists yet.
            subprocess.run([apt_get, 'update', '-qq'], capture_output=True, text=True)
            result = subprocess.run([apt_get, 'download', package], cwd=tmp,
                                    capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'apt-get download {package} failed: {result.stderr.strip()}')
        debs = list(Path(tmp).glob('*.deb'))
        if len(debs) != 1:
            raise RuntimeError(f'apt-get download {package} produced {len(debs)} .deb files')
        subprocess.run(['dpkg-deb', '-x', str(debs[0]), str(target)], check=True)
    marker.touch()
    return target


def darknet_image(name: str = 'dog.jpg') -> Path:
    """A real photo from Debian's ``darknet`` package data (dog.jpg, horses.jpg, person.jpg, ...)."""
    root = debian_package_dir('darknet')
    matches = sorted(root.rglob(name))
    if not matches:
        available = sorted(p.name for p in root.rglob('*.jpg'))
        raise FileNotFoundError(f'{name} not in the darknet package; it has {available}')
    return matches[0]


def darknet_images() -> list:
    root = debian_package_dir('darknet')
    return sorted(p for p in root.rglob('*.jpg') if p.parent.name == 'data')


def vtest_video() -> Path:
    """``vtest.avi`` from Debian's ``opencv-doc``: a real street scene with pedestrians and a car."""
    root = debian_package_dir('opencv-doc')
    matches = sorted(root.rglob('vtest.avi'))
    if not matches:
        raise FileNotFoundError(f'vtest.avi not found in {root}')
    return matches[0]
