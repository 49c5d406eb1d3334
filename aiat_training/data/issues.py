"""Problems found while reading a dataset: each names the file, the line (or place) and what is wrong."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Kinds of problem a reader reports.
MISSING_IMAGE = 'missing_image'          # label refers to an image that does not exist / cannot be read
BOX_OUTSIDE_IMAGE = 'box_outside_image'  # box reaches beyond the image by more than the tolerance
INVALID_BOX = 'invalid_box'              # zero/negative width or height, NaN
UNKNOWN_CLASS = 'unknown_class'          # class not in the format's list or not in the class mapping
MALFORMED = 'malformed'                  # a line/entry that cannot be parsed
MALFORMED_FILE = 'malformed_file'        # a whole file that cannot be parsed (bad JSON/XML/YAML, not UTF-8)
CORRUPT_IMAGE = 'corrupt_image'          # an image whose pixels cannot be decoded (truncated, corrupt)
KINDS = (MISSING_IMAGE, BOX_OUTSIDE_IMAGE, INVALID_BOX, UNKNOWN_CLASS, MALFORMED, MALFORMED_FILE,
         CORRUPT_IMAGE)

ON_ERROR = ('raise', 'skip')


@dataclass(frozen=True)
class ReadIssue:
    kind: str
    file: str
    line: int | None      # 1-based line for text formats
    where: str | None     # position inside structured files, e.g. 'annotations[3]' or 'object[2]'
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f':{self.line}'
        if self.where:
            place += f' ({self.where})'
        return one_line(f'{place}: {self.kind}: {self.message}')   # names from the data may hold '\n'

    def to_dict(self) -> dict:
        return {'kind': self.kind, 'file': self.file, 'line': self.line, 'where': self.where,
                'message': self.message}


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\n``, ``\\x1c``,
    ``\\u2028``): an error about a name taken from a hostile file stays one log line."""
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DatasetError(ValueError):
    """Raised for the first broken input when reading with ``on_error='raise'``; its text is one line."""

    def __init__(self, issue: ReadIssue, text: str | None = None):
        super().__init__(one_line(text or str(issue)))
        self.issue = issue


class IssueLog:
    """Collects issues; with ``on_error='raise'`` the first one raises :class:`DatasetError`."""

    def __init__(self, on_error: str = 'raise'):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.issues: list[ReadIssue] = []

    def report(self, kind: str, file, message: str, line: int | None = None,
               where: str | None = None) -> None:
        issue = ReadIssue(kind, str(file) if isinstance(file, Path) else file, line, where, message)
        if self.on_error == 'raise':
            raise DatasetError(issue)
        self.issues.append(issue)


def decode_error_message(exc: UnicodeDecodeError) -> str:
    """'not UTF-8 text (byte 0xff at offset 12)'."""
    bad = exc.object[exc.start:exc.start + 1]
    return f'not UTF-8 text (byte 0x{bad.hex() or "??"} at offset {exc.start})'


def read_text_file(path, kind: str = 'file') -> str:
    """The file as text (UTF-8, a BOM allowed); a non-UTF-8 file raises :class:`DatasetError`
    naming it instead of a bare UnicodeDecodeError."""
    path = Path(path)
    try:
        # decoded whole: the incremental decoder behind read_text() silently drops a cut-off BOM
        return path.read_bytes().decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        message = f'{kind}: {decode_error_message(exc)}'
        raise DatasetError(ReadIssue(MALFORMED_FILE, str(path), None, None, message),
                           f'{path}: {message}') from None


def summarize(issues: list[ReadIssue]) -> dict[str, int]:
    return dict(Counter(i.kind for i in issues))
