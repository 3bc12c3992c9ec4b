"""Where the NER model has to look: only the sentences that could hold a name.

spaCy's NER is most of the cost of detection (~26 ms of a ~1 KB English prompt on one core of
this machine; everything else together is ~12 ms). The entities the NER model is asked for by
the policies (PERSON, and LOCATION / ORGANIZATION / NRP when a policy enables them) are proper
nouns, which cased scripts write with a capital. A sentence in which no word could start a
proper noun cannot hold one the model would find, so the model does not need to read it:

- a word starting with an upper-case letter that is not the sentence's first word is a
  candidate (``Maria`` in "write to Maria", ``SSN`` or ``LENA FISCHER`` too);
- the first word of a sentence is a candidate unless it is an ordinary word that starts
  sentences (the language's spaCy stop words and the name module's ordinary words:
  ``The``, ``Please``, ``Thanks``); ``Maria called`` stays a candidate;
- text without any cased letter (CJK, Arabic, Devanagari) holds no candidate: the model of a
  cased language finds nothing useful there (the name resources of ``pii.names`` handle it).

Candidate sentences (and only those) are given to the model, neighbours merged into one window,
each window whole, so the model sees the sentence around a name as it would in the full text.
When the candidates cover most of a text, the text is read whole. Entities are mapped back onto
the tokens of the whole text. Lower-case names (``lena fischer``) never depended on the model
(the name lists find them after a cue), and all-caps runs are recased and re-read on their own.

Gating is used only when every NER entity asked for is such a proper-noun type; a policy asking
the model for DATE_TIME gets the full pass.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import regex

__all__ = ["CASED_ENTITIES", "candidate_windows", "ordinary_starters"]

# Presidio entity names that come from the NER model and are written as proper nouns.
CASED_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP"})

# A sentence ends at . ! ? (or their CJK forms) followed by white space, or at a line break.
# Not after an initial ("J. Smith") or a title ("Mr. Smith", "Dr. Ruiz", "M. Dupont").
_SPLIT = regex.compile(
    r"(?<!(?<![\p{L}])(?:\p{Lu}|Mr|Mrs|Ms|Mx|Dr|Prof|St|Sr|Sra|Jr|Mme|Mlle|Hr|Fr|Frau|Herr|Sig|Dott|Dhr|Mevr|No|Nr|Vol|Inc|Ltd|Co|vs|etc|e\.g|i\.e))"
    r"(?<=[.!?。！？])[ \t]+|\n+")
# A word that starts with an upper-case letter (any cased script).
_CAP_WORD = regex.compile(r"(?<![\p{L}\p{M}\p{N}_])\p{Lu}[\p{L}\p{M}'’\-]*")
# What may stand before a sentence's first word: white space, quotes, bullets, numbering.
_LEAD = regex.compile(r"[\s\"'“”‘’«»\(\[\-\*•#>\d.):]*")
_WHOLE_TEXT_SHARE = 0.8   # candidates cover more than this: read the text whole
# Capitalised inside a sentence, and still no proper noun the model could be asked for.
_NEVER_CANDIDATE = frozenset("""i i'm i'll i've i'd monday tuesday wednesday thursday friday saturday
sunday""".split())


@functools.lru_cache(maxsize=16)
def ordinary_starters(language: str) -> frozenset[str]:
    """Lower-cased words that start sentences and are no name: those ``pii.names`` already
    treats as never a name on their own (spaCy's stop words of en, de, fr, es, it, nl, pt, and
    ordinary English words that are also names). The same for every language the model reads."""
    from trustproxy.pii import names

    return names.stop_words() | frozenset(getattr(names, "_COMMON", ()))


def _segments(text: str) -> Iterable[tuple[int, int]]:
    start = 0
    for m in _SPLIT.finditer(text):
        if m.start() > start:
            yield start, m.start()
        start = m.end()
    if start < len(text):
        yield start, len(text)


def _is_candidate(text: str, start: int, end: int, starters: frozenset[str]) -> bool:
    lead = _LEAD.match(text, start, end)
    first = lead.end() if lead else start
    for m in _CAP_WORD.finditer(text, start, end):
        word = m.group().casefold().replace("’", "'").rstrip("'-")
        if m.start() != first:
            if word not in _NEVER_CANDIDATE:
                return True
        elif word not in starters and word not in _NEVER_CANDIDATE:
            return True
    return False


def candidate_windows(text: str, language: str) -> list[tuple[int, int]] | None:
    """``[start, end)`` windows of ``text`` the NER model must read (may be empty), or ``None``
    when it should read the whole text."""
    starters = ordinary_starters(language)
    windows: list[tuple[int, int]] = []
    covered = 0
    prev_end = -1
    for s, e in _segments(text):
        if not _is_candidate(text, s, e, starters):
            continue
        if windows and prev_end >= 0 and text[prev_end:s].strip() == "":
            windows[-1] = (windows[-1][0], e)   # neighbours: one window
        else:
            windows.append((s, e))
        covered += e - s
        prev_end = e
    if covered > _WHOLE_TEXT_SHARE * len(text):
        return None
    return windows
