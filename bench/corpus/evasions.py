"""Character-level evasions: what real text does to a value on its way into a prompt (copied from
a wrapped terminal, a PDF, a chat app with emphasis, a spreadsheet export ...).

Each function takes the value and a random source and returns the changed surface, or ``None``
when the evasion does not apply to that value (no digits to space out, no letters to re-case).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from bench.corpus.values import DIGITS, SECRETS

CONTROL = [chr(c) for c in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0323", "\u0336"]
VARIATION = ["\ufe0f", "\ufe0e"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


def _interior(value: str, r: random.Random, ok: Callable[[str], bool] = str.isalnum) -> int | None:
    """An index i (0 < i < len) to insert before, between two characters where ``ok`` holds."""
    spots = [i for i in range(1, len(value)) if ok(value[i - 1]) and ok(value[i])]
    return r.choice(spots) if spots else None


def _split(value: str, sep: str, r: random.Random) -> str | None:
    spaces = [i for i, ch in enumerate(value) if ch == " "]
    if spaces:
        i = r.choice(spaces)
        return value[:i] + sep + value[i + 1:]
    if "@" in value:
        i = value.index("@") + r.choice([0, 1])
        return value[:i] + sep + value[i:]
    i = _interior(value, r)
    if i is None or len(value) < 8:
        return None
    return value[:i] + sep + value[i:]


def line_break(value: str, category: str, r: random.Random) -> str | None:
    return _split(value, "\n", r)


def crlf(value: str, category: str, r: random.Random) -> str | None:
    return _split(value, "\r\n", r)


def tab(value: str, category: str, r: random.Random) -> str | None:
    """Separators turned into TABs, as a spreadsheet or TSV export does (not inside secrets)."""
    if category in SECRETS:
        return None
    seps = [i for i, ch in enumerate(value) if ch in " -"]
    if not seps:
        return None
    return "".join("\t" if i in seps else ch for i, ch in enumerate(value))


def _insert(value: str, r: random.Random, chars: list[str], after_letter: bool = False) -> str | None:
    i = _interior(value, r, str.isalpha if after_letter else str.isalnum)
    if i is None:
        i = _interior(value, r)
    if i is None:
        return None
    return value[:i] + r.choice(chars) + value[i:]


def control_char(value: str, category: str, r: random.Random) -> str | None:
    return _insert(value, r, CONTROL)


def combining_mark(value: str, category: str, r: random.Random) -> str | None:
    if category in SECRETS:
        return None  # a secret with an accent is another secret
    return _insert(value, r, COMBINING, after_letter=True)


def variation_selector(value: str, category: str, r: random.Random) -> str | None:
    return _insert(value, r, VARIATION)


def zero_width(value: str, category: str, r: random.Random) -> str | None:
    return _insert(value, r, ZERO_WIDTH)


def underscore(value: str, category: str, r: random.Random) -> str | None:
    return f"_{value}_"


def spaced_digits(value: str, category: str, r: random.Random) -> str | None:
    if category not in DIGITS:
        return None
    chars = [ch for ch in value if ch.isalnum()]
    if sum(ch.isdigit() for ch in chars) < 6:
        return None
    return " ".join(chars)


def lower_case(value: str, category: str, r: random.Random) -> str | None:
    if category in SECRETS or value.lower() == value:
        return None
    return value.lower()


def upper_case(value: str, category: str, r: random.Random) -> str | None:
    if category in SECRETS or value.upper() == value:
        return None
    return value.upper()


def glued(value: str, category: str, r: random.Random) -> str | None:
    """Marker only: the embedding glues the value to its short label (``ssn078-05-1120``)."""
    return value if category not in ("PERSON", "ADDRESS", "PRIVATE_KEY") else None


EVASIONS: dict[str, Callable[[str, str, random.Random], str | None]] = {
    "line_break": line_break, "crlf": crlf, "tab": tab, "control_char": control_char,
    "combining_mark": combining_mark, "variation_selector": variation_selector,
    "zero_width": zero_width, "underscore": underscore, "spaced_digits": spaced_digits,
    "glued": glued, "lower_case": lower_case, "upper_case": upper_case,
}

#: Evasions that may split a value in two (each half is a probe of its own for secrets).
SPLITTING = frozenset({"line_break", "crlf", "tab", "control_char", "zero_width", "variation_selector"})


def apply(name: str, value: str, category: str, r: random.Random) -> str | None:
    if name == "none":
        return value
    return EVASIONS[name](value, category, r)


def fragments(surface: str) -> list[str]:
    """Pieces of a surface between the characters an evasion inserted."""
    pieces: list[str] = []
    cur = ""
    for ch in surface:
        if ch in string.whitespace or ch in CONTROL or ch in ZERO_WIDTH or ch in VARIATION:
            if cur:
                pieces.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces
