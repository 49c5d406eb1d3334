"""Reading one YAML file of the training side (configs, class mappings) with errors naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml


def load_yaml_file(path: Path, error: type, not_found: Optional[str] = None) -> Any:
    """The parsed content of ``path`` (UTF-8, a BOM allowed); a file that cannot be read, is not UTF-8,
    not valid YAML or nested too deeply raises ``error('<path>: <problem>')``; a missing file says
    ``not_found`` where given."""
    try:
        return yaml.safe_load(path.read_bytes().decode('utf-8-sig'))
    except yaml.YAMLError as exc:
        raise error(f'{path}: not valid YAML: {" ".join(str(exc).split())}') from None
    except UnicodeDecodeError as exc:
        from aiat_training.data.issues import decode_error_message
        raise error(f'{path}: {decode_error_message(exc)}') from None
    except RecursionError:
        raise error(f'{path}: not valid YAML: nested too deeply') from None
    except OSError as exc:
        if not_found is not None and isinstance(exc, FileNotFoundError):
            raise error(f'{path}: {not_found}') from None
        raise error(f'{path}: cannot read it: {exc.strerror or exc}') from None
