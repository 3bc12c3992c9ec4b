"""Curated toxicity patterns: a versioned data file (``data/patterns-v1.yaml``) compiled once into
regular expressions that score a text on detoxify's category names.

The file holds named word lists (``lexicons``) and ``rules``; a rule's ``pattern`` refers to word
lists as ``{name}``, and ``{gap}`` stands for up to three words that are not negations. Text is
normalised (NFKC, lower case, straight quotes, one space) before matching. A negation shortly
before a match in the same clause ("you should *not* hurt yourself", "*nobody* should be ...")
cancels it unless the rule says ``negatable: false``.

Matching uses the ``regex`` module with a time limit per search: a pathological text cannot stall a
worker, it fails the window (``PatternTimeout``, a ``GuardFailed``: the reply is stopped).
"""

from __future__ import annotations

import functools
import hashlib
import re as _re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypeVar

import regex
import yaml
from pydantic import BaseModel, ConfigDict, Field

from trustproxy.errors import GuardFailed
from trustproxy.limits import cpu_bounded
from trustproxy import literals

T = TypeVar("T")

Category = Literal["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
DEFAULT_PATTERNS = "patterns-v1.yaml"
SEARCH_TIMEOUT_S = 0.1  # CPU per rule and text (trustproxy.limits); windows are a few thousand characters

# Words that, shortly before a match in the same clause, negate it (en, de, fr, es).
NEGATIONS = frozenset("""
not never no nobody noone none neither nor without cannot
nicht nie niemals kein keine keinen niemand
ne n' jamais pas personne aucun
nunca nadie jamás ni
""".split())
_CLAUSE_END = _re.compile(r"[.!?;:,\u2014\u2013]|\b(?:but|because|although|though|aber|mais|pero)\b")
_TOKEN = _re.compile(r"[\w']+")
NEGATION_LOOKBACK_WORDS = 6
GAP = r"(?:(?!(?:not|never|no|nicht|nie|niemals|kein|keine|pas|jamais|nunca)\b)[\w'-]+ ){0,3}"
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})
_SPACE = _re.compile(r"\s+")
_LEET = str.maketrans("013457@$", "oieastas")
# a word mixing letters with digits/symbols (not a number, not a version like v1.2 or a hex id)
_LEET_WORD = _re.compile(r"(?<![\w@$])(?=[\w@$]*[a-z])(?=[\w@$]*[013457@$])(?![\w@$]*[2689])[a-z013457@$]{3,12}(?![\w@$])")
_SPACED = _re.compile(r"(?<!\w)(?:[a-z] ){2,}[a-z](?!\w)")
_INVISIBLE = _re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


class PatternTimeout(GuardFailed):
    """A pattern search ran over its time limit (fail closed)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatternRule(_Strict):
    id: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$", description="Stable rule name, e.g. threat.harm_you.")
    lang: str = Field(description="Language of the phrasing (en, de, fr, es).")
    scores: dict[Category, float] = Field(description="Category -> score (0-1) when the rule matches.")
    pattern: str = Field(description="Regular expression over normalised text; {lexicon} references.")
    negatable: bool = Field(True, description="A negation shortly before the match cancels it.")
    examples: list[str] = Field(default_factory=list, description="Texts the rule must match.")
    counter: list[str] = Field(default_factory=list, description="Texts the rule must not match.")


class BenignRule(_Strict):
    id: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    pattern: str = Field(description="Technical or clinical use of a trap word, hidden from the profanity model.")
    context: str | None = Field(None, description="Only when this also occurs in the text (e.g. clinical words).")


class PatternFile(_Strict):
    version: str = Field(description="Pattern set version, e.g. patterns-v1 (shown by /readyz).")
    date: str
    languages: list[str]
    benign: list[BenignRule] = Field(default_factory=list)
    defuse_under_negation: list[str] = Field(default_factory=list, description="Lexicons whose words, negated, are hidden from the profanity model.")
    lexicons: dict[str, str] = Field(description="Named alternations, '|'-separated.")
    rules: list[PatternRule]


def normalise(text: str) -> str:
    """NFKC, invisible characters removed, straight quotes, lower case, single spaces; then simple
    obfuscation undone: digits and symbols inside words ("k1ll y0urself" -> "kill yourself") and
    spaced-out letters ("k y s" -> "kys")."""
    t = unicodedata.normalize("NFKC", text)
    t = _INVISIBLE.sub("", t).translate(_QUOTES).lower()
    t = _SPACE.sub(" ", t).strip()
    t = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), t)
    return _SPACED.sub(lambda m: m.group().replace(" ", ""), t)


def _split_top(alts: str) -> list[str]:
    """Split on '|' outside parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in alts:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [a.strip() for a in out if a.strip()]


def _expand(pattern: str, lexicons: dict[str, str]) -> str:
    def sub(m: _re.Match[str]) -> str:
        name = m.group(1)
        if name == "gap":
            return "\0GAP\0"
        if name not in lexicons:
            raise ValueError(f"unknown lexicon {{{name}}}")
        alts = sorted(_split_top(lexicons[name]), key=len, reverse=True)  # longest first
        return "(?:" + "|".join(alts) + ")"

    expanded = _re.sub(r"\{([a-z_]+)\}", sub, pattern)
    expanded = _re.sub(r" (?=[*?+])", r"\\s", expanded)   # " *" -> optional whitespace
    expanded = expanded.replace(" ", r"\s+")
    return expanded.replace("\0GAP\0", GAP.replace(" ", r"\s+"))


@dataclass(frozen=True)
class Match:
    rule: str
    scores: dict[str, float]


class PatternSet:
    """A compiled pattern file. ``scores(text)`` -> {category: score}; ``matches(text)`` -> the
    rules that fired (ids and scores only). Immutable after loading; safe to share."""

    def __init__(self, data: PatternFile, digest: str, source: str) -> None:
        self.version = data.version
        self.date = data.date
        self.languages = tuple(data.languages)
        self.digest = digest
        self.source = source
        self.rules = tuple(data.rules)
        compiled = []
        for r in data.rules:
            if any(unicodedata.category(ch) == "Cc" for ch in r.pattern):
                raise ValueError(f"{source}: rule {r.id}: control character in pattern (in YAML double "
                                 "quotes write \\\\b, not \\b)")
            try:
                rx = regex.compile(r"(?<!\w)(?:" + _expand(r.pattern, data.lexicons) + r")(?!\w)")
            except (regex.error, ValueError) as e:
                raise ValueError(f"{source}: rule {r.id}: {e}") from e
            compiled.append((r, rx, required_alternatives(rx.pattern)))
        self._compiled = tuple(compiled)
        try:
            self._benign = tuple(
                (_word_rx(b.pattern, data.lexicons), _word_rx(b.context, data.lexicons) if b.context else None)
                for b in data.benign)
            terms = "|".join("{" + n + "}" for n in data.defuse_under_negation)
            self._defuse = (regex.compile(r"(?<![\w'])(?:" + _expand(terms, data.lexicons) + r")(?![\w'])")
                            if terms else None)
        except (regex.error, ValueError) as e:
            raise ValueError(f"{source}: benign / defuse_under_negation: {e}") from e
        # Pre-checks: which required literals a text holds, found in one Aho-Corasick pass. A
        # rule (or a benign rewrite) needs a member of each of its literal sets.
        self._benign_needs = tuple((required_literals(rx.pattern),
                                    required_literals(ctx.pattern) if ctx is not None else None)
                                   for rx, ctx in self._benign)
        if any("_" in w for needs in self._benign_needs for n in needs for g in n or () for w in g):
            # a rewrite writes "_": a literal holding one could appear after it
            self._benign_needs = tuple((None, None) for _ in self._benign)
        all_needs = ([needs for _, _, alts in compiled for needs in alts or ()]
                     + [n for pair in self._benign_needs for n in pair])
        self._literals = frozenset(w for needs in all_needs for g in needs or () for w in g)
        self._finder = literals.literal_finder(self._literals)
        # rules with no literal run always; the others when one alternative's sets are all met
        self._always = tuple(i for i, (_, _, alts) in enumerate(compiled) if alts is None)
        self._gated = tuple((i, alts) for i, (_, _, alts) in enumerate(compiled) if alts is not None)

    def describe(self) -> dict[str, Any]:
        return {"version": self.version, "date": self.date, "sha256": self.digest[:16],
                "rules": len(self.rules), "languages": list(self.languages), "file": self.source}

    def matches(self, text: str) -> list[Match]:
        return self.matches_many([text])[0]

    def matches_many(self, texts: list[str]) -> list[list[Match]]:
        """The rules that fire on each text."""
        return [self._matches(t, self._present(t)) for t in map(normalise, texts)]

    def _present(self, t: str) -> set[str]:
        """The required literals that occur in the normalised text ``t`` (overlapping
        occurrences included; a few microseconds for 1 KB)."""
        return literals.present(self._finder, t)

    def _matches(self, t: str, present: set[str]) -> list[Match]:
        """The rules that fire on the normalised text ``t``. A rule runs only if, for one of its
        alternatives (``required_alternatives``), each required-literal set has a member in
        ``present``: most rules are skipped for most texts."""
        # ``_holds`` per alternative, written out as loops: this runs for every scored window,
        # and the generator form costs 3-4x as much (0.12 vs 0.04 ms a text). Each alternative's
        # most selective set comes first, so most fail at once.
        run = list(self._always)
        for i, alts in self._gated:
            for alt in alts:
                for g in alt:
                    if present.isdisjoint(g):
                        break
                else:
                    run.append(i)
                    break
        return self._run([self._compiled[i][:2] for i in sorted(run)], t)

    @staticmethod
    def _run(rules: list[tuple[PatternRule, Any]], t: str) -> list[Match]:
        out: list[Match] = []
        for rule, rx in rules:
            try:
                found = _bounded(lambda t, timeout: list(rx.finditer(t, timeout=timeout)), t)
                for m in found:
                    if rule.negatable and _negated(t, m.start()):
                        continue
                    out.append(Match(rule.id, {str(c): v for c, v in rule.scores.items()}))
                    break
            except TimeoutError as e:
                raise PatternTimeout(f"toxicity pattern {rule.id} ran over its time limit") from e
        return out

    def for_model(self, text: str) -> str:
        """``text`` as the profanity model should see it: benign technical uses of trap words and
        negated insult words replaced by ``_``. (The patterns themselves see the original.)"""
        t = normalise(text)
        return self._for_model(t, self._present(t))

    def _for_model(self, t: str, present: set[str]) -> str:
        try:
            for (rx, context), (needs, ctx_needs) in zip(self._benign, self._benign_needs):
                if not (_holds(present, needs) and _holds(present, ctx_needs)):
                    continue  # no match of the rewrite (or of its context) can be in the text
                if context is None or _bounded(context.search, t) is not None:
                    t = _bounded(rx.sub, "_", t)
            if self._defuse is not None:
                t = _bounded(self._defuse.sub, lambda m: "_" if _negated(m.string, m.start()) else m.group(), t)
        except TimeoutError as e:
            raise PatternTimeout("toxicity benign-use patterns ran over their time limit") from e
        return t

    def model_and_scores(self, texts: list[str]) -> tuple[list[str], list[dict[str, float]]]:
        """``[for_model(t)]`` and ``scores_many(texts)`` with each text normalised and searched
        for literals once."""
        model: list[str] = []
        found: list[list[Match]] = []
        for t in map(normalise, texts):
            present = self._present(t)
            found.append(self._matches(t, present))
            # a benign rewrite only removes text: literals absent before are absent after
            model.append(self._for_model(t, present))
        return model, [_best(f) for f in found]

    def scores(self, text: str) -> dict[str, float]:
        return self.scores_many([text])[0]

    def scores_many(self, texts: list[str]) -> list[dict[str, float]]:
        return [_best(found) for found in self.matches_many(texts)]


def _best(found: list[Match]) -> dict[str, float]:
    best: dict[str, float] = {}
    for m in found:
        for c, v in m.scores.items():
            best[c] = max(best.get(c, 0.0), v)
    return best


def _holds(present: set[str], needs: tuple[frozenset[str], ...] | None) -> bool:
    return needs is None or all(not present.isdisjoint(g) for g in needs)


def _bounded(call: Callable[..., T], *args: Any) -> T:
    """``call(*args, timeout=...)`` under the pattern time limit, counted in CPU (``limits``)."""
    return cpu_bounded(lambda limit: call(*args, timeout=limit), SEARCH_TIMEOUT_S)


def required_alternatives(pattern: str) -> tuple[tuple[frozenset[str], ...], ...] | None:
    """Like :func:`required_literals`, per top-level alternative: a pattern ``A|B|C`` (with
    look-arounds at its ends) can match only where one alternative's literal sets are all met,
    which is much more selective than one set per position taken across all of them (``{group}
    (?:can't|...)|go back ...`` needs a group word *and* a verb, not any of them). ``None`` when
    some alternative can match without a literal."""
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]
        from re._constants import ASSERT, ASSERT_NOT, AT, BRANCH, SUBPATTERN  # type: ignore[import-not-found]

        core = [it for it in sre_parse.parse(pattern) if it[0] not in (ASSERT, ASSERT_NOT, AT)]
        while len(core) == 1 and core[0][0] is SUBPATTERN and core[0][1][1:3] == (0, 0):
            core = list(core[0][1][-1])  # a group without flags around the whole pattern
        alts = [_literal_sets(b) for b in core[0][1][1]] if len(core) == 1 and core[0][0] is BRANCH else None
    except Exception:  # noqa: BLE001 - syntax of the regex module only (or another Python)
        return None
    if alts is not None:
        return tuple(tuple(sorted(set(a), key=_selective)) for a in alts) if all(alts) else None
    whole = required_literals(pattern)
    return (whole,) if whole else None


def _selective(c: frozenset[str]) -> tuple[int, int]:
    return -min(map(len, c)), len(c)


def _literal_sets(items: Any) -> list[frozenset[str]]:
    """Every match of the parsed sequence ``items`` contains a member of each returned set."""
    from re._constants import BRANCH, LITERAL, MAX_REPEAT, MIN_REPEAT, SUBPATTERN  # type: ignore[import-not-found]

    out: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in [*items, (None, None)]:
        if op is LITERAL:
            run.append(chr(av))
            continue
        if run:
            out.append(frozenset({"".join(run).lower()}))
            run = []
        if op is SUBPATTERN:
            out += _literal_sets(av[-1])
        elif op is BRANCH:
            alts = [min(_literal_sets(b), key=_selective, default=None) for b in av[1]]
            if alts and all(a is not None for a in alts):
                out.append(frozenset().union(*alts))  # type: ignore[arg-type]
        elif op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:
            out += _literal_sets(av[2])
    return out


def required_literals(pattern: str) -> tuple[frozenset[str], ...] | None:
    """Sets of strings (lower-cased) such that every match of ``pattern`` contains a member of
    each set, or ``None`` when nothing is known (a pattern the stdlib parser does not read, or
    one that can match without any literal). A rule is run on a text only if each of its sets
    has a member in the text: most replies hold none of a threat rule's words. Derived from
    the parsed pattern (a prefilter in the manner of RE2's), so it follows the data file
    without a second list to keep."""
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - other Pythons
        return None

    try:
        sets = _literal_sets(sre_parse.parse(pattern))
    except Exception:  # noqa: BLE001 - syntax of the regex module only: no prefilter
        return None
    return tuple(sorted(set(sets), key=_selective)) or None


def _word_rx(pattern: str, lexicons: dict[str, str]) -> regex.Pattern[str]:
    return regex.compile(r"(?<!\w)(?:" + _expand(pattern, lexicons) + r")(?!\w)")


def _negated(t: str, start: int) -> bool:
    before = t[:start]
    ends = list(_CLAUSE_END.finditer(before))
    clause = before[ends[-1].end():] if ends else before
    words = _TOKEN.findall(clause)[-NEGATION_LOOKBACK_WORDS:]
    return any(w in NEGATIONS or w.endswith("n't") for w in words)


def parse(text: str, source: str) -> PatternSet:
    data = PatternFile.model_validate(yaml.safe_load(text))
    return PatternSet(data, hashlib.sha256(text.encode("utf-8")).hexdigest(), source)


@functools.lru_cache(maxsize=4)
def load_patterns(name: str = DEFAULT_PATTERNS) -> PatternSet:
    """The packaged pattern file ``name`` (compiled once per process)."""
    text = resources.files("trustproxy.toxicity").joinpath("data", name).read_text(encoding="utf-8")
    return parse(text, name)
