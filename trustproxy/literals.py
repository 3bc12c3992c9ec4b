"""Which of a fixed set of literal strings occur in a text, in one pass (pyahocorasick).

Used by the pre-checks that decide which regexes need to run at all (our PII pattern rules,
the toxicity rules): an Aho-Corasick automaton reports every occurrence, overlapping and nested
ones included, so ``w in text`` holds exactly for the ``w`` that :func:`present` returns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ahocorasick


def literal_finder(words: Iterable[str]) -> Any:
    """An automaton over ``words``, or ``None`` if there are none."""
    unique = sorted(set(words))
    if not unique:
        return None
    finder = ahocorasick.Automaton()
    for w in unique:
        finder.add_word(w, w)
    finder.make_automaton()
    return finder


def present(finder: Any, text: str) -> set[str]:
    """The words of ``finder`` that occur in ``text`` (none if there is no finder)."""
    return set() if finder is None else {w for _, w in finder.iter(text)}
