"""Random edits of YAML text, shared by the fuzz tests of the vehicle's YAML readers."""
from __future__ import annotations

from typing import Callable, Sequence

from hypothesis import strategies as st


def mutate_text(draw, text: bytes, snippets: Sequence[bytes]) -> bytes:
    """1-3 edits of ``text``: a snippet inserted (twice as likely), a cut, or random bytes."""
    text = bytearray(text)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(['insert', 'insert', 'cut', 'bytes']))
        if op == 'insert':
            text[at:at] = draw(st.sampled_from(list(snippets)))
        elif op == 'cut':
            del text[at:at + draw(st.integers(1, 40))]
        else:
            text[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(text)


def field_paths(data, prefix=()):
    """Every (path to a container, key) in the parsed document ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix, key
            yield from field_paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield prefix, index
            yield from field_paths(value, prefix + (index,))


def container_of(data, prefix, key):
    """The dict or list holding ``key`` at ``prefix`` in ``data``; None when an earlier edit
    removed the path or replaced a container on it by a scalar (a string cannot be edited)."""
    parent = data
    try:
        for step in prefix:
            parent = parent[step]
        if not isinstance(parent, (dict, list)):
            return None
        parent[key]
    except (KeyError, IndexError, TypeError):
        return None
    return parent


def mutate_fields(draw, data, paths: Sequence[tuple], hostile, rename: Callable, extra_keys: Sequence) -> list:
    """1-3 edits of the parsed document ``data`` in place at keys drawn from ``paths`` ((prefix, key)
    pairs): a value replaced by a ``hostile`` one (three times as likely), a key deleted, a dict key
    renamed to ``rename(draw, key)``, or one of ``extra_keys`` added. Returns the edits as 'op:path'."""
    mutations = []
    for _ in range(draw(st.integers(1, 3))):
        prefix, key = draw(st.sampled_from(paths))
        parent = container_of(data, prefix, key)
        if parent is None:
            continue
        op = draw(st.sampled_from(['replace', 'replace', 'replace', 'delete', 'rename', 'add']))
        if op == 'replace':
            parent[key] = draw(hostile)
        elif op == 'delete':
            del parent[key]
        elif op == 'rename' and isinstance(parent, dict):
            parent[rename(draw, key)] = parent.pop(key)
        elif op == 'add' and isinstance(parent, dict):
            parent[draw(st.sampled_from(list(extra_keys)))] = 1
        mutations.append(f'{op}:{".".join(map(str, prefix + (key,)))}')
    return mutations
