"""The one way benchmarks and device scripts hand over their figures: JSON on stdout, and the same
text in a file when asked."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable, Optional


def emit_json(doc: Any, out: Optional[Path] = None, default: Optional[Callable] = None) -> None:
    """Print ``doc`` as indented JSON; also write it to ``out`` (its folder created) when given."""
    text = json.dumps(doc, indent=2, default=default)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + '\n')


def machine() -> dict:
    """Python, numpy, CPU count and load average: what a benchmark's figures depend on."""
    import numpy as np
    return {'python': platform.python_version(), 'numpy': np.__version__, 'cpus': os.cpu_count(),
            'load_average': list(os.getloadavg())}
