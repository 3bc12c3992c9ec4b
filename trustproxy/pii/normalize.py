"""An evasion-resistant view of a text, with a map back to the original offsets.

``normalize(text) -> (norm, offsets)``; ``offsets[i]`` is the index in ``text`` of the
character that produced ``norm[i]``, and ``offsets[len(norm)] == len(text)``. Map a span found in
``norm`` back with :func:`to_original` (it covers whole original characters, also when one
original character expanded to several under NFKC, and leaves out dropped characters that only
trail the span).

Per original character, in order:

- Unicode format characters (category Cf: zero-width space/joiners, BOM, soft hyphen, bidi
  marks) and control characters other than whitespace are dropped;
- every dash / minus sign (category Pd, U+2212 ...) becomes ``-``; every space separator (NBSP,
  thin space, ideographic space ...) becomes `` ``; line/paragraph separators become ``\\n``;
- decimal digits of any script (``unicodedata.decimal``) become ASCII digits;
- anything else is NFKC-normalised (full-width letters, ligatures, superscripts ...).

Markdown emphasis is treated as format noise: runs of two or more ``*`` and a single ``*``
that opens or closes a word (alphanumeric on exactly one side) are dropped, so
``**123**-45-6789`` reads ``123-45-6789``. A ``*`` between two alphanumerics (``2*3``) stays.
``_`` is kept: it is part of identifiers and of many key formats.
"""

from __future__ import annotations

import unicodedata

__all__ = ["normalize", "to_original"]

_EXTRA_DASHES = frozenset("\u2212\u2043\ufe63\uff0d\u02d7\u2796")
_KEEP_CONTROLS = frozenset("\t\n\r\f\v")


def _fold_char(c: str) -> str:
    """The normalised form of one character ('' if dropped)."""
    cat = unicodedata.category(c)
    if cat == "Cf" or (cat == "Cc" and c not in _KEEP_CONTROLS):
        return ""
    if cat == "Pd" or c in _EXTRA_DASHES:
        return "-"
    if cat == "Zs":
        return " "
    if cat in ("Zl", "Zp"):
        return "\n"
    d = unicodedata.decimal(c, None)
    if d is not None:
        return str(d)
    out = unicodedata.normalize("NFKC", c)
    if out == c:
        return c
    # NFKC output may itself hold dashes/spaces/digits to fold (e.g. full-width forms)
    return "".join(_fold_simple(x) for x in out)


def _fold_simple(c: str) -> str:
    cat = unicodedata.category(c)
    if cat == "Cf":
        return ""
    if cat == "Pd" or c in _EXTRA_DASHES:
        return "-"
    if cat == "Zs":
        return " "
    d = unicodedata.decimal(c, None)
    return str(d) if d is not None else c


def _markdown_noise(text: str) -> set[int]:
    """Indexes of ``*`` characters that are emphasis markers (see module docstring)."""
    drop: set[int] = set()
    i, n = 0, len(text)
    while i < n:
        if text[i] != "*":
            i += 1
            continue
        j = i
        while j < n and text[j] == "*":
            j += 1
        before = text[i - 1] if i > 0 else ""
        after = text[j] if j < n else ""
        if j - i >= 2 or (before.isalnum() != after.isalnum()):
            drop.update(range(i, j))
        i = j
    return drop


def normalize(text: str) -> tuple[str, list[int]]:
    """Return the normalised view of ``text`` and its offset map (``len(norm) + 1`` entries)."""
    drop = _markdown_noise(text) if "*" in text else set()
    if text.isascii() and not drop:
        return text, list(range(len(text) + 1))
    out: list[str] = []
    offsets: list[int] = []
    for i, c in enumerate(text):
        if i in drop:
            continue
        if c.isascii():
            out.append(c)
            offsets.append(i)
            continue
        folded = _fold_char(c)
        out.append(folded)
        offsets.extend([i] * len(folded))
    offsets.append(len(text))
    return "".join(out), offsets


def to_original(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Map the normalised span ``[start, end)`` to the original ``[s, e)``."""
    if end <= start:
        s = offsets[start]
        return s, s
    return offsets[start], offsets[end - 1] + 1
