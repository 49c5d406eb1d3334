"""Outcome counts of the fuzz targets (how many cases were valid, which documented errors).

Each fuzz module records one outcome per generated case; at the end of the module the counts are
printed (visible with ``-s``) and written as JSON to ``$AIAT_FUZZ_REPORT_DIR`` (default: the
temp directory), one file per module and process, for the long-run figures in issue notes.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict


class Outcomes:
    def __init__(self, module: str):
        self.module = module.rsplit('.', 1)[-1]
        self.counts: Dict[str, Counter] = defaultdict(Counter)
        self.started = time.monotonic()

    def record(self, target: str, outcome: str) -> None:
        self.counts[target][outcome] += 1

    def error(self, target: str, exc: BaseException) -> None:
        self.record(target, type(exc).__name__ + ':' + getattr(exc, 'field', '').split('[')[0]
                    if getattr(exc, 'field', None) else type(exc).__name__)

    def report(self) -> Path:
        summary = {target: {'cases': sum(c.values()), 'outcomes': dict(c.most_common())}
                   for target, c in sorted(self.counts.items())}
        out_dir = Path(os.environ.get('AIAT_FUZZ_REPORT_DIR', tempfile.gettempdir()))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f'aiat-fuzz-{self.module}-{os.getpid()}.json'
        path.write_text(json.dumps({'module': self.module, 'python': sys.version.split()[0],
                                    'seconds': round(time.monotonic() - self.started, 2),
                                    'targets': summary}, indent=1))
        print(f'\n[fuzz outcomes] {self.module}: ' + json.dumps(summary) + f' -> {path}')
        return path
