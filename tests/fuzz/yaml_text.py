"""Random edits of YAML text, shared by the fuzz tests of the vehicle's YAML readers."""
from __future__ import annotations

from typing import Sequence

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
