"""Personal names found with a name resource, where the NER model misses them (``Ana Ruiz``
in a plain sentence, ``lena fischer`` in lower case, ``LENA FISCHER`` in capitals).

The resource is the US Census Bureau's 1990 name frequency lists (public domain: 5,163 given
names and 88,799 surnames, as shipped by the ``names`` package; we keep the surnames covering
the most frequent 90 %, about 30,000). The census records the names of a population of
immigrants, so it holds most common Spanish, Italian, German, French, Dutch and Portuguese
surnames too. It is independent of any test corpus.

A pair of words is a name when:

- the first is a given name and the second a surname (score 0.8; in lower case 0.65, and only
  after a person cue such as "dear", "patient", "name is");
- the first is a given name and the second a capitalised word that is no ordinary word and no
  product noun (0.6);
- the first is a capitalised word with non-ASCII letters (``Jürgen``, ``José``) and the second a
  surname (0.6).

No word may be an ordinary word (spaCy's stop word lists of en, de, fr, es, it, nl, pt, and a
list of English words that are also names). Particles (``de la``, ``van``, ``dos``) and one middle initial may stand between.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator

import regex

__all__ = ["name_spans", "load"]

# Ordinary English words that are also given names or surnames: never a name on their own
# account (a capitalised "Will Power" or "Grant Access" is no person).
_COMMON = frozenset("""a an the and or of for to in on at by with from is are was be not no me you
him her them us it this that my your our their his its we they i he she all any some will may
mark bill grant rose june april august summer hope joy faith grace art pat sue don ray gene max
chase page lane dean miles frank earl guy jack drew rich sandy penny ruby crystal amber jade
dawn eve ivy holly iris lily violet autumn river sky angel precious destiny heaven king prince
major royal star rain storm stone hunter forest sage justice honor young white brown green black
gray grey long short little small large big new old good best well hill wood woods field fields
park parks street road lake bank banks bay bell bird bush cash cook cross day dye early east west
north south fox friend gold hall hand hart hay hood house hunt key kind knight lamb land law
love low mann march mason may mills moon moore more morning noble page paris parsons pike pool
post power price rice ring rock rose rush sharp shore snow spring stable steel strong sun sweet
swift taylor temple thomas tower town travel trust turner vale wall ward water waters way wells
west wild will wise wolf wood worth wright york team support sales service services office
desk admin billing help thanks thank please dear hello hi hey regards best cheers today tomorrow
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december christmas easter cloud server data code build test
deploy release version update order account payment invoice customer client patient user
""".split())
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del",
                        "della", "dos", "das", "do", "bin", "al", "el", "ten", "ter", "y",
                        "e", "los", "las", "st", "st."})
_WORD = regex.compile(r"[\p{L}][\p{L}'’\-]*\.?")


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's stop word lists of the Latin-script languages we identify (no model needed)."""
    import importlib

    out: set[str] = set()
    for lang in ("en", "de", "fr", "es", "it", "nl", "pt"):
        try:
            mod = importlib.import_module(f"spacy.lang.{lang}.stop_words")
        except ImportError:  # pragma: no cover - spaCy ships them all
            continue
        out |= {w.casefold() for w in mod.STOP_WORDS}
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def load() -> tuple[frozenset[str], frozenset[str]]:
    """(given names, surnames), case-folded."""
    import names as census

    base = os.path.dirname(census.__file__)

    def read(fname: str, cum_limit: float) -> set[str]:
        out: set[str] = set()
        with open(os.path.join(base, fname), encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and float(parts[2]) <= cum_limit:
                    out.add(parts[0].casefold())
        return out

    first = read("dist.female.first", 100.0) | read("dist.male.first", 100.0)
    last = read("dist.all.last", 90.0)
    return frozenset(first), frozenset(last)


def _words(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _WORD.finditer(text):
        yield m.start(), m.end(), m.group(0)


def _cap(w: str) -> bool:
    return w[:1].isupper() and (w[1:].islower() or w.isupper() or "'" in w or "-" in w
                                or "’" in w or w[1:2].islower())


def name_spans(text: str, product_noun: frozenset[str] = frozenset(),
               lower_ok: "Callable[[int], bool] | None" = None) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` of names in ``text`` (see module docstring). ``lower_ok(start)``
    says whether a lower-case pair at ``start`` has a person cue before it."""
    first, last = load()
    stops = stop_words()
    ws = list(_words(text))
    out: list[tuple[int, int, float]] = []
    i = 0
    n = len(ws)
    while i < n - 1:
        s0, e0, w0 = ws[i]
        f0 = w0.rstrip(".").casefold()
        j = i + 1
        # one middle initial ("Ana M. Ruiz") and particles ("Ana de la Cruz")
        if j < n and len(ws[j][2].rstrip(".")) == 1 and ws[j][2][:1].isupper() and j + 1 < n \
                and text[e0:ws[j][0]] == " ":
            j += 1
        k = j
        while k < n - 1 and ws[k][2].casefold() in _PARTICLES and _cap(ws[k + 1][2]):
            k += 1
        s1, e1, w1 = ws[k]
        gap_ok = all(text[ws[x][1]:ws[x + 1][0]] == " " for x in range(i, k))
        f1 = w1.rstrip(".").casefold()
        score = 0.0
        if gap_ok and f0 not in _COMMON and f1 not in _COMMON and f1 not in product_noun \
                and f0 not in stops and f1 not in stops:
            caps = _cap(w0) and _cap(w1)
            lower = w0.islower() and w1.islower() and len(f0) >= 3 and len(f1) >= 3 \
                and lower_ok is not None and lower_ok(s0)
            if f0 in first and f1 in last:
                score = 0.8 if caps else (0.65 if lower else 0.0)
            elif f0 in first and caps and len(f1) > 2:
                score = 0.6
            elif caps and f1 in last and not w0.isascii() and len(f0) > 2:
                score = 0.6
        if score:
            end = e1 - (1 if w1.endswith(".") else 0)
            # a following surname ("Maria Garcia Lopez")
            if k + 1 < n and text[e1:ws[k + 1][0]] == " " and _cap(ws[k + 1][2]) == _cap(w1) \
                    and ws[k + 1][2].casefold() in last and ws[k + 1][2].casefold() not in _COMMON:
                end = ws[k + 1][1]
                k += 1
            out.append((s0, end, score))
            i = k + 1
            continue
        i += 1
    return out
