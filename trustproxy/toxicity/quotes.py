"""Reported speech: quotations a reply attributes to someone ("the customer wrote "you idiot"").

Whether such quotes are scored is a policy choice (``output.toxicity.quoted_speech``):
``ignore`` (default) replaces the quoted words by ``"..."`` before scoring, so a support summary
that quotes an abusive customer passes; ``score`` scores them like any other text.

A quotation counts as reported speech when the text around it (same sentence) has a reporting
verb ("said", "wrote", "called", "the message read" ...; en, de, fr, es) whose subject is not the
writer ("I said", "we wrote" do not count). Quotes without such a verb are scored. A double-quoted
quotation may span sentences: ``QuoteMasker`` keeps that state from one sentence to the next, so
the result depends on the text only, never on how a stream was chunked. Single-quoted spans are
handled within one sentence.
"""

from __future__ import annotations

import re

MASK = '"..."'
_REPORTING = re.compile(
    r"(?<![\w'])(?:(?P<subj>i|we|i'm|we're|i am|we are)\s+(?:\w+\s+)?)?"
    r"(?:said|says|wrote|writes|typed|told|asked|replied|answered|responded|messaged|texted|emailed|"
    r"posted|tweeted|commented|shouted|yelled|screamed|chanted|called|named|labell?ed|read|reads|"
    r"quoted|quotes|quoting|stated|states|claimed|claims|reported|recalled|threatened|added|noted|"
    r"complained|insisted|muttered|cried|sent|repeated|used the (?:words|phrase)|"
    r"sagte|sagt|schrieb|schreibt|rief|meinte|antwortete|nannte|fragte|drohte|"
    r"a écrit|a dit|a répondu|a crié|a traité|a demandé|a menacé|écrit|dit|"
    r"escribió|dijo|respondió|gritó|llamó|preguntó|amenazó|escribe|dice)(?![\w'])",
    re.IGNORECASE)
_DOUBLE = re.compile(r'["\u201c\u201d\u201e\u00ab\u00bb]')
_SINGLE_SPAN = re.compile(r"(?<![\w])['\u2018]((?:[^'\u2018\u2019]|(?<=\w)['\u2019](?=\w)){1,400}?)['\u2019](?![\w])")


def _attributed(outside: str) -> bool:
    return any(m.group("subj") is None for m in _REPORTING.finditer(outside))


class QuoteMasker:
    """Per stream (or per prompt): ``mask(sentence)`` in order -> the sentence with reported
    quotations replaced by ``"..."``. Holds only whether a reported quotation is still open."""

    def __init__(self) -> None:
        self._open = False  # inside a reported double-quoted quotation that began earlier

    def mask(self, sentence: str) -> str:
        s, prefix = sentence, ""
        if self._open:
            m = _DOUBLE.search(s)
            if m is None:
                return MASK  # the whole sentence is inside the quotation
            prefix, s = MASK, s[m.end():]
            self._open = False
        marks = [m.start() for m in _DOUBLE.finditer(s)]
        if not (prefix or marks) and "'" not in s and "\u2018" not in s:
            return s  # no quotation of either kind: nothing to mask, attributed or not
        pairs = list(zip(marks[0::2], marks[1::2]))
        dangling = marks[-1] if len(marks) % 2 else None
        outside = _SINGLE_SPAN.sub(" ", _outside(s, pairs, dangling))
        if not (prefix or _attributed(outside)):
            return s
        out, last = [], 0
        for a, b in pairs:
            out += [s[last:a], MASK]
            last = b + 1
        if dangling is not None:
            out += [s[last:dangling], MASK]
            self._open = True
        else:
            out.append(s[last:])
        return prefix + _SINGLE_SPAN.sub(MASK, "".join(out))


def _outside(s: str, pairs: list[tuple[int, int]], dangling: int | None) -> str:
    parts, last = [], 0
    for a, b in pairs:
        parts.append(s[last:a])
        last = b + 1
    parts.append(s[last:dangling] if dangling is not None else s[last:])
    return " ".join(parts)


def mask_reported(text: str) -> str:
    """A whole text at once (no state carried to a next sentence)."""
    return QuoteMasker().mask(text)
