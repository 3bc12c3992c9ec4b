"""Recognizers Presidio lacks: secrets and credentials, street addresses, dates of birth, bank
details, medical record numbers, and policy-defined custom recognizers.

Secret formats come from detect-secrets' plugin ``denylist`` regexes where it has them (AWS
access keys, GitHub, GitLab, Slack, Stripe, Twilio, JWT, basic auth in URLs, ...); formats it
lacks are ours. Everything is a Presidio ``PatternRecognizer`` (:class:`RegexRecognizer`) that
adds what the stock class lacks: reporting only a capture group (the password in
``postgres://u:PASS@h``), case-sensitive patterns, validators, and extending a key match to the
end of the token so no tail of a secret is left unmasked.

Low-precision numbers (bank account, driver licence, passport, routing, MRN) only match with
their context words *inside* the regex (``routing number: ...``), never alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from presidio_analyzer import (
    AnalysisExplanation,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts

from trustproxy import literals
from trustproxy.policy.schema import CustomRecognizer

__all__ = ["RegexRecognizer", "Rule", "PatternPass", "build_recognizers", "merge_recognizers", "compile_custom", "SECRET_ENTITIES",
           "OUR_ENTITIES"]

_FLAGS = regex.DOTALL | regex.MULTILINE  # case-sensitive unless a rule says (?i)
_TOKEN_TAIL = regex.compile(r"[A-Za-z0-9_\-+/=]*")


@dataclass(frozen=True)
class Rule:
    """One regex of a :class:`RegexRecognizer`. If the regex has capture groups, the first
    group that matched is the reported span. ``extend`` grows the span to the end of the token."""

    name: str
    pattern: str
    score: float
    extend: bool = False
    #: a cheap pre-check, never a change of what matches: the rule runs only on a text holding one
    #: of these lower-case literals (``need``) or a match of ``need_rx``. Each must occur in every
    #: match of ``pattern`` (so a text without them cannot match; the tests check this on samples).
    need: tuple[str, ...] = ()
    need_rx: str | None = None


class RegexRecognizer(PatternRecognizer):
    """A PatternRecognizer with group spans, per-recognizer flags, validation and extension."""

    def __init__(self, entity: str, rules: Sequence[Rule], *, name: str | None = None,
                 language: str = "en", context: Sequence[str] | None = None,
                 validate: Callable[[str], bool] | None = None, flags: int = _FLAGS,
                 timeout: float | None = None) -> None:
        super().__init__(
            supported_entity=entity, name=name or f"{entity.title().replace('_', '')}Recognizer",
            supported_language=language,
            patterns=[Pattern(r.name, r.pattern, r.score) for r in rules],
            context=list(context or ()), global_regex_flags=flags,
        )
        self._rules = [(r, regex.compile(r.pattern, flags)) for r in rules]
        self._validate = validate
        self._timeout = timeout

    def analyze(self, text: str, entities: list[str],
                nlp_artifacts: NlpArtifacts | None = None,
                regex_flags: int | None = None) -> list[RecognizerResult]:
        return self.scan(text, _Prechecks(text), self.id)

    def scan(self, text: str, pre: _Prechecks, rec_id: str) -> list[RecognizerResult]:
        """Matches of the rules whose pre-checks pass (``rec_id``: the identifier reported)."""
        entity = self.supported_entities[0]
        name: str = getattr(self, "name")  # noqa: B009 (Presidio's attribute is untyped)
        out: list[RecognizerResult] = []
        for rule, rx in self._rules:
            if not pre.passes(rule):
                continue
            try:
                matches = list(rx.finditer(text)) if self._timeout is None else _matches(rx, text, self._timeout)
            except TimeoutError:
                from trustproxy.errors import GuardFailed

                raise GuardFailed(f"Recognizer '{name}' took longer than its regex time limit "
                                  f"({self._timeout} s); the request was not sent.", code="guard_timeout") from None
            for m in matches:
                start, end = _group_span(m)
                if rule.extend:
                    end = _TOKEN_TAIL.match(text, end).end()
                if end <= start:
                    continue
                value = text[start:end]
                if self._validate is not None and not self._validate(value):
                    continue
                expl = AnalysisExplanation(recognizer=name, original_score=rule.score,
                                           pattern_name=rule.name, pattern=rule.pattern)
                out.append(RecognizerResult(
                    entity_type=entity, start=start, end=end, score=rule.score,
                    analysis_explanation=expl,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: rec_id,
                    }))
        return EntityRecognizer.remove_duplicates(out) if len(out) > 1 else out


class IbanScanner(RegexRecognizer):
    """IBANs however they are spaced or broken over lines (``ES82 5531 6820\\n8367 ...``,
    ``IBANGB36 JJTJ ...``, lower case): from a country code and two check digits, the longest run
    of the next letters and digits (single spaces or one line break between them) that
    python-stdnum accepts as an IBAN (country length and format, ISO 7064 mod 97-10)."""

    _START = regex.compile(r"(?i)(?<![A-Za-z0-9])(?:iban[\s:.\-]*)?([A-Z]{2})[ \t]?(\d{2})(?=[ \t\r\n]{0,3}[A-Z0-9])")
    _NEXT = regex.compile(r"(?:[ \t]{1,2}|[ \t]*\r?\n[ \t]*)?([A-Za-z0-9])")
    # right after an IBAN, the next one may follow without a boundary (two lines joined)
    _AFTER = regex.compile(r"(?i)\s*([A-Z]{2})[ \t]?(\d{2})(?=[ \t\r\n]{0,3}[A-Z0-9])")

    def __init__(self, language: str = "en") -> None:
        super().__init__("IBAN_CODE", [Rule("IBAN (any spacing)", r"[A-Z]{2}\d{2}", 0.9, need_rx=r"(?i)[a-z]{2}[ \t]?\d{2}")],
                         name="IbanCodeRecognizer", language=language)

    def scan(self, text: str, pre: _Prechecks, rec_id: str) -> list[RecognizerResult]:
        if not pre.passes(self._rules[0][0]):
            return []
        from stdnum import iban as std_iban

        out: list[RecognizerResult] = []
        pos = 0
        after = False
        while True:
            m = (self._AFTER.match(text, pos) if after else None) or self._START.search(text, pos)
            after = False
            if m is None:
                break
            chars = [m.group(1).upper(), m.group(2)]
            ends: list[int] = []
            i = m.end()
            while len(ends) < 30:
                n = self._NEXT.match(text, i)
                if n is None:
                    break
                chars.append(n.group(1).upper())
                i = n.end()
                ends.append(i)
            found = None
            for k in range(len(ends), 10, -1):  # 4 + 11 = the shortest IBAN (Norway: 15)
                if std_iban.is_valid("".join(chars[:2]) + "".join(chars[2:2 + k])):
                    found = ends[k - 1]
                    break
            if found is None:
                pos = m.start() + 1
                continue
            start = m.start(1)
            name: str = getattr(self, "name")  # noqa: B009
            out.append(RecognizerResult(
                entity_type="IBAN_CODE", start=start, end=found, score=0.9,
                analysis_explanation=AnalysisExplanation(recognizer=name, original_score=0.9,
                                                         pattern_name="IBAN (any spacing)"),
                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: name,
                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: rec_id}))
            pos, after = found, True
        return out


class _Prechecks:
    """The pre-checks of :class:`Rule` on one text, each computed at most once.

    With ``finder`` (an Aho-Corasick automaton over every rule's ``need`` literals, see
    :func:`need_finder`), one pass over the lower-cased text finds which literals occur, and each
    rule's check is a set lookup; without it, each rule searches the text for its own literals."""

    __slots__ = ("text", "_low", "_rx", "_finder", "_found")

    def __init__(self, text: str, finder: Any = None) -> None:
        self.text = text
        self._low: str | None = None
        self._rx: dict[str, bool] = {}
        self._finder = finder
        self._found: set[str] | None = None

    def passes(self, rule: Rule) -> bool:
        if rule.need:
            if self._low is None:
                self._low = self.text.lower()
            if self._finder is not None:
                if self._found is None:
                    self._found = literals.present(self._finder, self._low)
                if self._found.isdisjoint(rule.need):
                    return False
            elif not any(w in self._low for w in rule.need):
                return False
        if rule.need_rx is not None:
            hit = self._rx.get(rule.need_rx)
            if hit is None:
                hit = self._rx[rule.need_rx] = _need_rx(rule.need_rx).search(self.text) is not None
            if not hit:
                return False
        return True


def need_finder(rules: Iterable[Rule]) -> Any:
    """The literal finder (``trustproxy.literals``) over the ``need`` literals of ``rules``."""
    return literals.literal_finder(w for r in rules for w in r.need)


_NEED_RX: dict[str, Any] = {}


def _need_rx(pattern: str) -> Any:
    rx = _NEED_RX.get(pattern)
    if rx is None:
        try:  # ``re`` scans the plain character classes of pre-checks several times faster
            rx = re.compile(pattern, re.DOTALL | re.MULTILINE)
        except re.error:
            rx = regex.compile(pattern, _FLAGS)
        _NEED_RX[pattern] = rx
    return rx


class PatternPass(EntityRecognizer):
    """All of our pattern rule sets as one Presidio recognizer: one call per text instead of one
    per rule set (Presidio pays result bookkeeping and a context-enhancement loop per recognizer),
    rule sets of types not asked for skipped, and each rule's pre-check computed once per text.
    Results keep the rule set's readable name (``CreditCardRecognizer``) for dry runs."""

    def __init__(self, sets: Sequence[RegexRecognizer], language: str = "en") -> None:
        self._sets = list(sets)
        self._finder = need_finder(rule for rec in self._sets for rule, _ in rec._rules)
        super().__init__(supported_entities=sorted({s.supported_entities[0] for s in self._sets}),
                         name="TrustproxyPatternRecognizer", supported_language=language, context=[])

    def load(self) -> None:
        pass

    @property
    def rule_sets(self) -> list[RegexRecognizer]:
        return list(self._sets)

    def analyze(self, text: str, entities: list[str],
                nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        wanted = set(entities or self.supported_entities)
        pre = _Prechecks(text, self._finder)
        out: list[RecognizerResult] = []
        for rec in self._sets:
            if rec.supported_entities[0] in wanted:
                out.extend(rec.scan(text, pre, self.id))
        return out


def _matches(rx: Any, text: str, timeout: float) -> list[Any]:
    """``finditer`` under one limit for the whole text (``regex``'s own ``timeout`` counts per
    search, and ``finditer`` searches again from every position), counted in CPU time: a thread
    that only waited for a core is not failed (``trustproxy.limits``)."""
    from trustproxy.limits import cpu_bounded

    return cpu_bounded(lambda lim: _matches_once(rx, text, lim), timeout)


def _matches_once(rx: Any, text: str, timeout: float) -> list[Any]:
    import time

    deadline = time.monotonic() + timeout
    out: list[Any] = []
    pos = 0
    while pos <= len(text):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        m = rx.search(text, pos, timeout=remaining)
        if m is None:
            break
        out.append(m)
        pos = m.end() if m.end() > m.start() else m.start() + 1
    return out


def _group_span(m: Any) -> tuple[int, int]:
    for g in range(1, (m.re.groups or 0) + 1):
        if m.start(g) >= 0:
            return m.start(g), m.end(g)
    return m.start(), m.end()


def _ds(plugin: type, *idx: int) -> list[str]:
    """detect-secrets denylist patterns of ``plugin`` (inline ``(?i)`` kept from its flags)."""
    pats = list(plugin.denylist)  # type: ignore[attr-defined]
    chosen = [pats[i] for i in idx] if idx else pats
    return [("(?i)" if p.flags & re.IGNORECASE else "") + p.pattern for p in chosen]


# --- validators -------------------------------------------------------------------------

_PLACEHOLDER = regex.compile(
    r"""(?ix)^(?:
        [$%{<\[(].*                       # ${VAR} $VAR %(x)s <password> [redacted] (...)
      | \*+ | x+ | \.+ | -+ | _+
      | (?:[a-z_][a-z_]*\.)*[a-z_]+[(\[]? # code: password=password, self.password, os.environ[
    )$""")


# a variable or template reference, a bracketed word: a placeholder even when it holds digits
_WRAPPED = regex.compile(r"\$\{?[A-Za-z_]\w*\}?|%\(?\w+\)?[sd]?%?|<[^<>]*>|\[[^\[\]]*\]|\{\{?[^{}]*\}\}?|\([^()]*\)")


def sigil_random(v: str) -> bool:
    """A random token that happens to open with ``$ % { < [ (`` (``(uZt83Mv&Lq9Wa``): eight or
    more characters with a digit, a capital and a small letter, and no wrapped reference."""
    return (len(v) >= 8 and any(c.isdigit() for c in v) and any(c.isupper() for c in v)
            and any(c.islower() for c in v) and _WRAPPED.fullmatch(v) is None)


def _not_placeholder(v: str) -> bool:
    # "min_length:" after "password:" is the next YAML key, not a value
    return ((not _PLACEHOLDER.match(v) or (v[:1] in "$%{<[(" and sigil_random(v)))
            and v.lower() not in {"none", "null", "true", "false"}
            and not regex.fullmatch(r"[A-Za-z_][\w.\-]*:", v))


def _mixed_key(v: str) -> bool:
    """A random 40-char key: has upper, lower and digit (excludes hex SHAs, words)."""
    return (any(c.isupper() for c in v) and any(c.islower() for c in v)
            and any(c.isdigit() for c in v))


def _is_b64_shape(v: str) -> bool:
    return regex.fullmatch(r"[A-Za-z0-9+/]{8,}={0,2}", v) is not None


def _has_digit_and_letter(v: str) -> bool:
    return any(c.isdigit() for c in v) and any(c.isalpha() for c in v)


def _jwt_valid(v: str) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector
    return bool(JwtTokenDetector.is_formally_valid(v))


def _aba_valid(v: str) -> bool:
    d = [int(c) for c in v if c.isdigit()]
    return len(d) == 9 and sum(x * w for x, w in zip(d, (3, 7, 1) * 3)) % 10 == 0


def _min_digits(n: int) -> Callable[[str], bool]:
    return lambda v: sum(c.isdigit() for c in v) >= n


def _digits_between(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda v: lo <= sum(c.isdigit() for c in v) <= hi


def _address_ok(v: str) -> bool:
    """Not a quantity ("3 new Features Way" stays possible; "12 GB Drive" is no address)."""
    words = v.split()
    if regex.search(r"[\p{Han}\p{Hiragana}\p{Katakana}]", v):  # CJK: no spaces between words
        return sum(c.isdigit() for c in v) >= 1 and len(v) >= 6
    return len(words) >= 2 and not regex.match(r"(?i)^\d+\s+(?:gb|mb|kb|tb|ms|px|x)\b", v)


# Issuer ranges in use (ISO/IEC 7812 IINs of the card schemes, incl. the Mastercard 2-series
# 2221-2720): (prefix low, prefix high, lengths).
_IIN: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)),                       # Visa
    (51, 55, (16,)), (2221, 2720, (16,)),       # Mastercard
    (34, 34, (15,)), (37, 37, (15,)),           # American Express
    (6011, 6011, (16, 19)), (644, 649, (16, 19)), (65, 65, (16, 19)),  # Discover
    (622126, 622925, (16, 19)),                 # Discover / UnionPay co-brand
    (3528, 3589, (16, 19)),                     # JCB
    (62, 62, (16, 17, 18, 19)), (81, 81, (16,)),  # UnionPay
    (300, 305, (14, 16, 19)), (36, 36, (14, 16, 19)), (38, 39, (14, 16, 19)),  # Diners
    (50, 50, (12, 13, 16, 19)), (56, 58, (12, 13, 16, 19)), (63, 63, (16, 19)),
    (67, 67, (12, 13, 16, 19)),                 # Maestro
    (2200, 2204, (16, 17, 18, 19)),             # Mir
    (60, 60, (16,)), (65, 65, (16,)), (508, 508, (16,)), (353, 353, (16,)),  # RuPay
    (9792, 9792, (16,)),                        # Troy
    (1, 1, (15,)),                              # UATP
)


def card_valid(v: str) -> bool:
    """A card number: Luhn checksum and an issuer range with its length."""
    d = "".join(c for c in v if c.isdigit())
    if not 12 <= len(d) <= 19 or not luhn_valid(d) or len(set(d)) < 2:
        return False
    for lo, hi, lengths in _IIN:
        n = len(str(lo))
        if lo <= int(d[:n]) <= hi and len(d) in lengths:
            return True
    return False


_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_valid(v: str) -> bool:
    """UK National Insurance number format (HMRC rules: letters D, F, I, Q, U, V never used;
    O never second; some prefixes never issued)."""
    s = "".join(c for c in v.upper() if c.isalnum())
    if not regex.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", s):
        return False
    return s[:2] not in _NINO_BAD_PREFIX


def pan_valid(v: str) -> bool:
    from stdnum.in_ import pan

    if v.islower() and all(c in "0123456789abcdef" for c in v):
        return False
    try:
        return bool(pan.is_valid(v.upper()))
    except Exception:  # noqa: BLE001 - stdnum raises on odd input
        return False


def _stdnum_valid(module: str) -> Callable[[str], bool]:
    import importlib

    mod = importlib.import_module(f"stdnum.{module}")

    def check(v: str) -> bool:
        if len(v.split()) == 2 and all(p.isdigit() for p in v.split()):
            v = "".join(v.split())  # one break inside the digits (the label came first)
        try:
            return bool(mod.is_valid(v))
        except Exception:  # noqa: BLE001 - stdnum raises on odd input
            return False
    return check


_PROSE_WORDS = frozenset("""incorrect wrong expired required too not the set stored reset missing
invalid correct weak strong same case being still now hashed encrypted empty changed locked
different simple secure long short easy hard visible blank known unknown given shown needed
mandatory optional saved written sent attached below above here there fine ok okay good bad
your my our their his her its a an this that same also already never always working broken
""".split())


def _prose_password(v: str) -> bool:
    """A password written in a sentence: anything but an ordinary word."""
    v = v.strip("\"'“”‘’`.,;:!?)")
    if len(v) < 4 or not _not_placeholder(v):
        return False
    low = v.lower()
    if low in _PROSE_WORDS:
        return False
    if v.isalpha() and v.islower() and (low.endswith(("ed", "ing", "ly")) or len(v) < 6):
        return False
    return True


def _basic_credentials(v: str) -> bool:
    import base64
    import binascii

    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return ":" in text and text.isprintable()


_HASH_LIKE = regex.compile(r"(?i)^(?:[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def _secret_word_ok(v: str) -> bool:
    """A token after "token"/"key"/"secret": random-looking, and no SHA or UUID."""
    return (_not_placeholder(v) and _has_digit_and_letter(v) and not _HASH_LIKE.match(v)
            and not regex.fullmatch(r"[a-z_]+[0-9]?", v))


def _cred_pair(v: str) -> bool:
    """Decodes to ``user:password`` (a short user part, no spaces, some password)."""
    import base64

    try:
        text = base64.b64decode(v + "=" * (-len(v) % 4)).decode("utf-8")
    except Exception:  # noqa: BLE001
        return False
    user, _, pw = text.partition(":")
    return 1 <= len(user) <= 64 and len(pw) >= 3 and " " not in text


def luhn_valid(v: str) -> bool:
    d = [int(c) for c in v if c.isdigit()]
    if len(d) < 2:
        return False
    total = 0
    for i, x in enumerate(reversed(d)):
        if i % 2:
            x *= 2
            x -= 9 if x > 9 else 0
        total += x
    return total % 10 == 0


def iban_valid(v: str) -> bool:
    s = "".join(c for c in v if c.isalnum()).upper()
    if len(s) < 15 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    r = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in r)) % 97 == 1
    except ValueError:
        return False


def mod11_valid(v: str) -> bool:
    """ISO 7064-style mod 11 with weights 2..n from the right; check digit may be X (=10)."""
    s = [c for c in v.upper() if c.isdigit() or c == "X"]
    if len(s) < 2 or "X" in s[:-1]:
        return False
    body, check = s[:-1], s[-1]
    total = sum(int(c) * w for c, w in zip(reversed(body), range(2, len(body) + 2)))
    expect = (11 - total % 11) % 11
    return (10 if check == "X" else int(check)) == expect


CHECKSUMS: dict[str, Callable[[str], bool]] = {
    "luhn": luhn_valid, "iban": iban_valid, "mod11": mod11_valid,
}

# --- pattern fragments ----------------------------------------------------------------------

_B = r"(?<![A-Za-z0-9])"    # start boundary that also works after '_' or ':'
_E = r"(?![A-Za-z0-9])"

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|"
           r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
           # de, fr, es, it, nl, pt month names (any word of letters after a birth cue is
           # accepted below too; these make the English forms strict)
           r"|januar|februar|märz|maerz|mai|juni|juli|oktober|dezember"
           r"|janvier|février|fevrier|mars|avril|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre"
           r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
           r"|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre"
           r"|januari|februari|maart|mei|augustus|oktober"
           r"|janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|novembro|dezembro)\.?")
_DATE = (r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)?\d{2}"
         r"|(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}"
         r"|(?:19|20)\d{2}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"
         rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}"
         rf"|\d{{1,2}}(?:st|nd|rd|th|er|º|°)?\.?\s+(?:of\s+|de\s+)?{_MONTHS},?\s+(?:de\s+)?(?:19|20)\d{{2}})")
_DOB_CTX = (r"(?:\bd\.?o\.?b\b\.?|date\s+of\s+birth|birth\s*date|birthday|\bborn(?:\s+on)?"
            r"|\bgeboren(?:\s+(?:am|op))?|\bgeb\.|geburtsdatum|geburtstag|\bn[ée]e?\s+le|date\s+de\s+naissance"
            r"|\bnat[oa]\s+(?:il|a\s+\p{L}+\s+il)|data\s+di\s+nascita|\bnacid[oa]\s+(?:el|en\s+\p{L}+\s+el)"
            r"|fecha\s+de\s+nacimiento|f\.\s?nac\.|geboortedatum|\bnascid[oa]\s+(?:em|a)"
            r"|data\s+de\s+nascimento|生年月日|出生日期|出生于|生于|誕生日|जन्म\s*तिथि|तारीख\s+जन्म|جنم"
            r"|تاريخ\s+الميلاد|تاريخ\s+الولادة|مواليد)")

def _usps_suffixes(any_case: bool = False) -> str:
    """Street suffixes of USPS Publication 28, Appendix C1 (names and abbreviations), as the
    ``usaddress`` package ships them (``usaddress.STREET_NAMES``)."""
    import usaddress

    words = sorted({w for w in usaddress.STREET_NAMES if w.isalpha() and len(w) >= 2},
                   key=len, reverse=True)
    long = [w for w in words if len(w) > 3]
    short = [w for w in words if len(w) <= 3]
    if any_case:
        return "(?i:" + "|".join(words) + ")"
    # an abbreviation is written capitalised ("Is" is Island, "is" a verb)
    return "(?:(?i:" + "|".join(long) + ")|(?=[A-Z])(?i:" + "|".join(short) + "))"


_SUFFIX = _usps_suffixes()
_SUFFIX_ANY_CASE = _usps_suffixes(any_case=True)
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Bldg|Building|Rm|Room|#)"
_NAME_WORD = r"(?:[A-Z][A-Za-z'\-]+|[A-Z]{2,}|\d{1,3}(?:st|nd|rd|th|ST|ND|RD|TH))"
_US_ADDRESS = (
    r"(?<![\w\-.])\d{1,6}[A-Z]?(?:-\d{1,4})?\s+(?:(?i:[NSEW]|NE|NW|SE|SW)\.?\s+|(?i:North|South|East|West)\s+)?"
    r"(?:(?:[A-Z][a-z]{0,2}\.|" + _NAME_WORD + r")\s+){1,4}" + _SUFFIX + r"(?![A-Za-z])\.?"
    r"(?:\s+(?i:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
    r"(?:,?\s+" + _UNIT + r"\.?\s*#?[A-Za-z0-9\-]{1,6})?"
    r"(?:,\s*[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){0,2})?"
    r"(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"
    r"(?:,?\s+[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}(?![A-Za-z0-9]))?"   # a UK postcode
)
_DE_ADDRESS = (r"(?<![\w\-])(?:(?:[A-ZÄÖÜ][a-zäöüß]+-)+(?:Straße|Strasse|Str\.|Weg|Gasse|Platz|Allee|Ring|Damm|Ufer|Chaussee|Steig|Pfad)"
               r"|(?:[A-ZÄÖÜ][a-zäöüß]+-)*[A-ZÄÖÜ][a-zäöüß\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|pfad))"
               r"\s+\d{1,4}\s?[a-z]?(?:-\d{1,4}[a-z]?)?(?![\w])(?:,\s*(?:D-)?\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+(?:\s[a-zäöü]+\s[A-ZÄÖÜ][a-zäöüß]+)?)?"
               r"|(?<![\w\-])(?:Am|An\sder|Im|In\sder|Auf\sdem|Zum|Zur)\s[A-ZÄÖÜ][a-zäöüß]+\s\d{1,4}[a-z]?,\s*\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+")
_FR_ADDRESS = (r"(?<![\w])\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|chemin|impasse|quai|place|allée|route|cours|passage|square)"
               r"\s+(?:(?:de|du|des|la|le|l'|d')\s*)*[A-ZÉÈÀÂ][\w'\-]+(?:\s+(?:de\s|du\s|des\s|la\s|le\s|l'|d')?[A-ZÉÈÀÂ][\w'\-]+){0,3}"
               r"(?:,?\s*\d{5}\s+[A-ZÉÈ][\w\-]+(?:[ \-][A-ZÉÈ][\w\-]+)*)?")
_ES_PT_IT_ADDRESS = (
    r"(?<![\w])(?:(?i:calle|c/|avenida|avda\.|av\.|paseo|plaza|camino|carretera|ronda|travesía|"
    r"rambla|glorieta|pasaje|callejón|cuesta|urbanización|alameda|via|viale|piazza|piazzale|corso|vicolo|"
    r"largo|contrada|strada|borgo|rua|travessa|praça|rodovia|estrada|avenue|ladeira|vila|setor|quadra))"
    r"\s+(?:(?:de|del|de\sla|de\slos|de\slas|della|delle|dei|degli|di|da|das|do|dos|d')\s*)*"
    r"[A-ZÁÉÍÓÚÑÀÈÌÒÙÂÊÔÃÕÇ][\w'\-]+(?:\s+(?:(?:de|del|la|las|los|della|di|da|das|do|dos|e|y)\s+)?[A-ZÁÉÍÓÚÑÀÈÌÒÙÂÊÔÃÕÇ][\w'\-]+){0,4}"
    r",?\s+(?:n[º°o]\.?\s*)?\d{1,5}[A-Za-z]?(?:\s?[/\-]\s?\d{1,3}[A-Za-z]?|,?\s(?:\d{1,2}[º°ª]\s?[A-Za-z]?|Apto\.?\s?\d+|Bloco\s\w+|Piso\s\d+|Puerta\s\d+|int\.\s?\d+|Casa\s\d+|Sala\s\d+))*"
    r"(?:(?:,\s*|\s+)(?:\d{5}(?:-\d{3})?|CEP:?\s*\d{5}-?\d{3})\s*[,\-]?\s*[A-ZÁÉÍÓÚÑÀÈÌÒÙ][\w\-]+(?:\s+(?:de\s|del\s)?[A-ZÁÉÍÓÚÑ][\w\-]+)*)?"
    r"(?:\s*[\-,]\s*[A-Z]{2}(?![A-Za-z]))?")
_NL_ADDRESS = (r"(?<![\w\-])\p{Lu}[\p{Ll}\-]+(?:straat|laan|weg|plein|gracht|kade|singel|dijk|steeg|hof|park|pad|dreef|markt|baan|boulevard|plantsoen|erf|wal|haven|veld|burg|brink|hoek|rade|berg)"
               r"\s+\d{1,4}[a-zA-Z]?(?:-\d{1,4})?(?:,?\s*\d{4}\s?[A-Z]{2}\s+\p{Lu}[\p{Ll}]+(?:[ \-]\p{Lu}?[\p{Ll}]+)*)?")
# Japanese: prefecture, municipality (市区町村郡), town, then chōme-ban-gō; digits may stand apart
# (the normalised view sets a space between digits and CJK letters)
_JA_ADDRESS = (r"(?:〒?\s?\d{3}-\d{4}\s*)?(?:東京\s{0,2}都|北海\s{0,2}道|(?:京都|大阪)\s{0,2}府|\p{Han}{2,3}\s{0,2}県)\s?[\p{Han}ケヶの]{1,8}?[市区町村郡]"
               r"[\p{Han}\p{Hiragana}\p{Katakana}ー ]{0,14}?\d{1,4}\s?(?:丁\p{Cf}?目|[-−の])\s?\d{1,4}\s?(?:番地?|[-−の])?\s?(?:\d{1,4}\s?号?)?"
               r"(?:\s*[\p{Han}\p{Katakana}\p{Hiragana}ー]{1,20}\s?\d{1,4}\s?号?室?)?")
# Chinese: province / autonomous region / SAR / municipality, city or county, district, street,
# number 号 (+ building, unit, room)
# Chinese: a provincial-level division by name (the 34 of the PRC's administrative division
# codes), city or county, district, street, number 号 (+ building, unit, room)
_ZH_PROVINCE = (r"(?:(?:河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾)省"
                r"|(?:内蒙古|广西壮族|广西|西藏|宁夏回族|宁夏|新疆维吾尔|新疆)自治区|(?:香港|澳门)特别行政区|(?:北京|天津|上海|重庆)市)")
_ZH_ADDRESS = (_ZH_PROVINCE + r"\s?\p{Han}{1,8}?(?:市|区|县|州|盟)(?:\s?\p{Han}{1,8}?(?:区|县|镇|乡|街道))?"
               r"\s?[\p{Han} \r\n]{1,12}?(?:路|街|道|巷|胡同|大道|里|弄)(?:\p{Han}{1,4}段)?\s?\d{1,5}\s?号(?:\s?\p{Han}{0,10}\s?\d{1,5}\s?(?:号楼|栋|单元|室|层))*"
               r"|" + _ZH_PROVINCE + r"\s?[\p{Han} ]{1,16}?(?:路|街|道|巷)\s?\d{1,5}\s?号")
# India (Devanagari): house number, locality, town, PIN code (6 digits, first 1-9)
_IN_ADDRESS = (r"(?<![\d/])\d{1,5}(?:/\d{1,5})?,?\s+\p{Devanagari}[\p{Devanagari}\u200c\u200d\p{Mn}]*(?:\s\p{Devanagari}[\p{Devanagari}\u200c\u200d\p{Mn}]*){0,3},"
               r"\s*\p{Devanagari}[\p{Devanagari}\u200c\u200d\p{Mn}]*(?:\s\p{Devanagari}[\p{Devanagari}\u200c\u200d\p{Mn}]*){0,2}[\s,\-]*[1-9]\d{2}\s?\d{3}(?!\d)")
# es/it/pt written in any case: a street-type word, a house number and a postcode within a line
_STREET_POSTCODE = (
    r"(?i)(?<![\w])(?:calle|avenida|avda\.|paseo|plaza|camino|carretera|ronda|travesía|rambla|glorieta|"
    r"via|viale|piazza|piazzale|corso|vicolo|largo|strada|rua|travessa|praça|rodovia|estrada|avenue|ladeira|"
    r"alameda|setor|quadra|vila)\s+\p{L}[\p{L}'\-]*(?:\s+\p{L}[\p{L}'\-]*){0,4},?\s+(?:n[º°o]\.?\s*)?\d{1,5}[a-z]?"
    r"(?:[\s,]+\p{L}[\p{L} ]{0,25}?\s?-\s?\p{L}{2})?[\s,]+(?:\d{5}-\d{3}|\d{5})(?![\d])"
    r"(?:\s*[\-,]?\s*\p{L}[\p{L}\-]*(?:\s\p{L}[\p{L}\-]*){0,2}(?=[.,;\n]|$))?")

# UK: flat/studio, house number, street with a suffix, locality and town, postcode
_UK_ADDRESS = (
    r"(?<![\w])(?:(?:Flat|Studio|Apartment|Unit|Room)\s+\d{1,4}[A-Za-z]?,?\s+)?(?:\d{1,4}[A-Za-z]?,?\s+)?"
    r"(?:[A-Z][a-z'\-]+\s+){1,3}" + _SUFFIX + r"(?![A-Za-z]),?\s+(?:[A-Z][a-z'\-]+[ ,\r\n]{1,3}){1,4}"
    r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}(?![A-Za-z0-9])")
# US address written in lower case: only with the city, the state and the ZIP code
_US_ADDRESS_LOWER = (
    r"(?<![\w\-.])\d{1,6}[a-z]?\s+(?:(?:[nsew]|ne|nw|se|sw|north|south|east|west)\.?\s+)?(?:[a-z][a-z'\-]+\.?\s+){1,4}"
    + _SUFFIX_ANY_CASE + r"(?![A-Za-z])\.?(?:,?\s+" + r"(?i:apt|apartment|suite|ste|unit|fl|floor|bldg|rm|room|#)" + r"\.?\s*#?[a-z0-9\-]{1,6})?"
    r",\s*[a-z]+(?:[ \-][a-z]+){0,2},\s*[a-z]{2}\s+\d{5}(?:-\d{4})?(?!\d)")
# Brazil: street, number, city - UF, CEP (any street type: the UF and CEP make the shape)
_BR_ADDRESS = (
    r"(?<![\w])\p{Lu}[\p{L}'\-]*(?:\s+(?:da|de|do|das|dos|e|\p{Lu}[\p{L}'\-]*)){0,5},?\s+(?:n[º°o]\.?\s*)?\d{1,5}[A-Za-z]?"
    r"(?:,?\s+(?i:apto\.?|apartamento|bloco|casa|sala|lote|quadra)\s*\w{1,5})*"
    r"(?:,\s*\p{Lu}[\p{L}'\-]*(?:\s+(?:da|de|do|das|dos|e|\p{Lu}[\p{L}'\-]*)){0,4})?"
    r",?\s+\p{Lu}[\p{L}'\-]*(?:\s+(?:da|de|do|das|dos|e|\p{Lu}[\p{L}'\-]*)){0,3}\s?[\-/]\s?[A-Z]{2},?\s+\d{5}-?\d{3}(?!\d)")
# Continental Europe: capitalised street words, a house number, a 5-digit postcode, the town
_EU_ADDRESS = (
    r"(?<![\w])(?!(?:Order|Version|Invoice|Ticket|Case|Room|Step|Page|Line|Item|Build|Release|Port|Node|Region|Zone"
    r"|Chapter|Section|Table|Figure|Issue|Sprint|Phase|Level|Tier|Batch|Job|Run|Task|Test|Week|Day|Year)\b)"
    r"\p{Lu}[\p{L}'’\-]+(?:\s+(?:(?:de|del|de\s+la|di|della|dei|da|do|dos|das|du|des|le|la|l'|d')\s+)?\p{Lu}[\p{L}'’\-]+){0,4}"
    r",?\s+\d{1,4}[A-Za-z]?(?:\s?(?:bis|ter))?(?:,?\s+(?:Apt\.?|Piso|Puerta|int\.|scala|Esc\.)\s*\w{1,4})*(?:,?\s+\d{1,2}[º°ª]\s?[A-Z]?)?"
    r",?\s+\d{5}\s+\p{Lu}[\p{L}'’\-]+(?:[\s\-]\p{Lu}?[\p{L}'’\-]+){0,3}(?=\s*(?:[.,;:)\"'\]\n]|$))")
# France: a street type and its name, then the postcode and town, without a house number
_FR_ADDRESS_NO_NUMBER = (
    r"(?i:(?<![\w])(?:rue|avenue|boulevard|chemin|impasse|allée|allee|place|quai|route|cours))\s+"
    r"(?:(?:de|du|des|la|le|l'|d')\s*)*\p{Lu}[\p{L}'\-]+(?:\s+\p{Lu}[\p{L}'\-]+){0,3},?\s+\d{5}\s+\p{Lu}[\p{L}'\-]+(?:[\s\-]\p{L}[\p{L}'\-]*){0,4}")

_URL_PASSWORD = r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{0,64}:([^\s@/]{1,128})@"
_KV_PASSWORD = (r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|db_pass(?:word)?|pass)"
                r"[\"']?\s*[=:]\s*(?:\"([^\"\r\n]{1,128})\"|'([^'\r\n]{1,128})'"
                r"|([^\s\"';&,<>(){}\[\]]{1,128}))")


def _secret_rules() -> list[tuple[str, list[Rule], Callable[[str], bool] | None]]:
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    def ds(name: str, plugin: type, score: float, *idx: int) -> list[Rule]:
        return [Rule(f"detect-secrets {name}", _B + p, score, extend=True)
                for p in _ds(plugin, *idx)]

    return [
        ("AWS_ACCESS_KEY", ds("AWS", AWSKeyDetector, 0.95, 0) + [
            # glued to the word before it ("keyAKIA..."): the key is upper case and digits, so a
            # lower-case letter right before it is a boundary too
            Rule("AWS access key glued to a word",
                 r"(?<=[a-z])(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])", 0.9,
                 need=("a3t", "abia", "acca", "akia", "asia"))], None),
        ("AWS_SECRET_KEY", [
            # detect-secrets: aws ... secret ... "KEY" (group 1)
            Rule("detect-secrets AWS secret", _ds(AWSKeyDetector, 1)[0], 0.95),
            Rule("AWS secret with key name",
                 r"(?i)aws.{0,20}?(?:secret|private).{0,25}?[=:]\s*[\"']?"
                 r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 0.9),
            # bare 40-char key: only with context words nearby (Presidio context enhancer)
            Rule("AWS secret (weak)", r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
                 0.1),
        ], _mixed_key),
        ("AWS_SECRET_KEY", [
            # written alone: 40 base64 characters with a '/' or '+' and upper, lower and digits
            Rule("AWS secret (shape)",
                 r"(?<![A-Za-z0-9/+=_\-.])(?=[A-Za-z0-9]*[/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_\-])", 0.7),
        ], _mixed_key),
        ("GITHUB_TOKEN", ds("GitHub", GitHubTokenDetector, 0.95)
         + [Rule("GitHub fine-grained PAT", _B + r"github_pat_[A-Za-z0-9_]{60,}", 0.95)], None),
        ("GITLAB_TOKEN", ds("GitLab", GitLabTokenDetector, 0.95), None),
        ("SLACK_TOKEN", ds("Slack", SlackDetector, 0.95), None),
        ("STRIPE_KEY", ds("Stripe", StripeDetector, 0.95)
         + [Rule("Stripe key", _B + r"(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{16,}", 0.9)], None),
        ("OPENAI_API_KEY", ds("OpenAI", OpenAIDetector, 0.95)
         + [Rule("OpenAI key", _B + r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?"
                 r"[A-Za-z0-9_\-]{20,}", 0.85, extend=True)], _has_digit_and_letter),
        ("ANTHROPIC_API_KEY",
         [Rule("Anthropic key", _B + r"sk-ant-[A-Za-z0-9_\-]{20,}", 0.95, extend=True)], None),
        ("GOOGLE_API_KEY", [Rule("Google API key", _B + r"AIza[0-9A-Za-z_\-]{35}", 0.95,
                                 extend=True)], None),
        ("JWT", ds("JWT", JwtTokenDetector, 0.9), _jwt_valid),
        ("PRIVATE_KEY", [
            Rule("PEM private key block",
                 r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?"
                 r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----", 0.99),
            Rule("PEM private key (no end)",
                 r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,\-]*", 0.95),
            # the header itself broken over a line ("-----BEGIN EC\r\nPRIVATE KEY-----")
            Rule("PEM private key, header broken",
                 r"-----BEGIN[\sA-Z0-9]*PRIVATE\s+KEY(?:\s+BLOCK)?-----[A-Za-z0-9+/=\s:,\-]*?"
                 r"(?:-----END[\sA-Z0-9]*PRIVATE\s+KEY(?:\s+BLOCK)?-----|(?=[^A-Za-z0-9+/=\s:,\-])|$)", 0.95,
                 need=("-----begin",)),
            Rule("PuTTY key", r"PuTTY-User-Key-File-\d+:.*?Private-MAC:\s*[0-9a-f]+", 0.95),
        ], None),
        ("PASSWORD", [
            Rule("password in a sentence",
                 r"(?i)(?:\b(?:my|the|your|our|his|her|new|temporary|temp|current|old|admin|root|wifi|wi-fi|mijn|mein|meine|mon|mi|il\s+mio|la\s+mia|minha|meu|de|het|el|la|le|das)\s+)"
                 r"(?:password|passwort|kennwort|pass\s?word|passcode|pwd|pin|contraseña|clave|mot\s+de\s+passe|senha|wachtwoord|パスワード|密码)"
                 r"(?:\s+(?:for|to|on|für|pour|para|per|voor|de|del|da)\s+\S+)?"
                 r"\s+(?:is\s+now|is|was|ist|lautet|es|est|è|é|era|war|blijft|=|:)\s*[:\-]?\s*"
                 r"[\"'“‘`]?([^\s\"'”’`]{4,128}?)[\"'”’`]?(?=[\s,;!?)]|[.](?:\s|$)|$)", 0.85),
            Rule("password set to",
                 r"(?i)\b(?:set|changed|reset|updated)\s+(?:the\s+|my\s+|your\s+|his\s+|her\s+)?(?:\w+\s+)?"
                 r"(?:password|passwort|pwd|passcode)\s+(?:to|into|as)\s*[:\-]?\s*[\"'“‘`]?([^\s\"'”’`]{4,128}?)[\"'”’`]?"
                 r"(?=[\s,;!?)]|[.](?:\s|$)|$)", 0.85),
            Rule("password label in prose",
                 r"(?i)\b(?:password|passwort|kennwort|contraseña|senha|wachtwoord|mot\s+de\s+passe|pwd|pw)\s*[:：][ \t]*"
                 r"[\"'“‘`]?([^\s\"'”’`]{4,128}?)[\"'”’`]?(?=[\s,;!?)]|[.](?:\s|$)|$)", 0.85)], _prose_password),
        # CJK text glues a password to its label ("我的密码是Hq7(mZ!2，但是", "パスワードはab12cdです"):
        # the ASCII run after the label and a copula, trailing punctuation left out
        ("PASSWORD", [Rule("password after a CJK label",
                           r"(?:密码|密碼|口令|パスワード|비밀번호)[ \t]*(?:是|为|為|は|:|：|：)?[ \t]*"
                           r"([!-~]*?[^\s.,;:?)\]\"'])(?=[.,;:?)\]\"']*(?:[^!-~]|$))", 0.85,
                           need=("密码", "密碼", "口令", "パスワード", "비밀번호"))],
         lambda v: len(v) >= 4 and _prose_password(v) and (
             any(c.isdigit() for c in v) or not v.isalnum() or (v.lower() != v and v.upper() != v))),
        ("PASSWORD", [Rule("HTTP Basic credentials",
                           r"(?i)\bBasic\s+([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])", 0.9),
                      # padding ends a base64 token, whatever follows it
                      Rule("HTTP Basic credentials (padded)",
                           r"(?i)\bBasic\s+([A-Za-z0-9+/]{8,}={1,2})", 0.9, need=("basic",))],
         _basic_credentials),
        ("PASSWORD", [Rule("HTTP Basic credentials broken over a line",
                           r"(?i)\bBasic\s+([A-Za-z0-9+/]{2,}(?:[ \t]{1,2}|[ \t]*\r?\n[ \t]*)[A-Za-z0-9+/]{2,}={0,2})"
                           r"(?![A-Za-z0-9+/=])", 0.9, need=("basic",))],
         lambda v: len(v.split()) == 2 and _basic_credentials("".join(v.split()))),
        ("PASSWORD", [Rule("base64 user:password",
                           r"(?<![A-Za-z0-9+/=_\-.])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[0-9])"
                           r"[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=_\-])", 0.7)],
         lambda v: _basic_credentials(v) and _cred_pair(v)),
        ("PASSWORD", [Rule("curl user:password",
                           r"(?:\s-u|--user)\s+['\"]?[^\s:'\"]{1,64}:([^\s'\"@]{1,128})", 0.85)],
         _not_placeholder),
        ("PASSWORD", [
            Rule("detect-secrets basic auth", _ds(BasicAuthDetector)[0], 0.9),
            Rule("URL password", _URL_PASSWORD, 0.9),
            Rule("password key/value", _KV_PASSWORD, 0.85),
        ], _not_placeholder),
        ("GENERIC_SECRET",
         ds("Twilio", TwilioKeyDetector, 0.85) + ds("SendGrid", SendGridDetector, 0.95)
         + ds("Discord", DiscordBotTokenDetector, 0.85) + ds("Mailchimp", MailchimpDetector, 0.85)
         + ds("PyPI", PypiTokenDetector, 0.95)
         + [Rule("Azure storage key", r"AccountKey=([a-zA-Z0-9+/=]{88})", 0.95),
            Rule("npm token", _B + r"npm_[A-Za-z0-9]{36}" + _E, 0.95),
            Rule("Hugging Face token", _B + r"hf_[A-Za-z0-9]{34,}" + _E, 0.9)], None),
        ("GENERIC_SECRET", [
            Rule("secret after its word",
                 r"(?i)\b(?:twilio|sendgrid|auth|api|access|secret|bearer)?[ _\-]?(?:token|secret|api[ _\-]?key|key|credentials?)\b"
                 r"[ \t]*(?:is[ \t]+|=[ \t]*|:[ \t]*)?[\"'`]?([A-Za-z0-9_\-+/=.]{20,200})", 0.6),
         ], _secret_word_ok),
        ("GENERIC_SECRET", [
            # a credential named in a sentence: "the credential sQ0vuZfdtSe3 shows up",
            # "I accidentally pasted 62a393e0c6... into the channel"
            Rule("credential in a sentence",
                 r"(?i)\b(?:credentials?|passphrase|(?:accidentally\s+)?(?:pasted|leaked|exposed|posted))"
                 r"[ \t]+(?:(?:the|my|our|a|an|this)[ \t]+)?(?:(?:key|token|secret|password)[ \t]+)?[\"'`]?"
                 r"([A-Za-z0-9_\-+/=.!@#$%^&*]{8,200})(?![A-Za-z0-9_\-+/=])", 0.6,
                 need=("credential", "passphrase", "pasted", "leaked", "exposed", "posted")),
            # the token a failed request was made with: "the API returns 401 with X",
            # "403 Forbidden for token X", "authentication failed using X"
            Rule("credential after an auth failure",
                 r"(?i)\b(?:40[13]|unauthori[sz]ed|forbidden|(?:authentication|auth|login)[ \t]+failed)\b"
                 r"[^\n]{0,40}?\b(?:with|for|using)[ \t]+(?:(?:the|my|our|a|an|this)[ \t]+)?"
                 r"(?:(?:key|token|secret|password|credential)[ \t]+)?[\"'`]?"
                 r"([A-Za-z0-9_\-+/=.!@#$%^&*]{8,200})(?![A-Za-z0-9_\-+/=])", 0.6,
                 need=("401", "403", "unauthori", "forbidden", "failed")),
         ], lambda v: _secret_word_ok(v.rstrip(".,;:!?")) and (_mixed_key(v) or len(v) >= 20)),
        ("GENERIC_SECRET", [
            Rule("secret key/value",
                 r"(?i)(?<![A-Za-z0-9])(?:[a-z0-9]+[_\-.])*(?:api[_\-]?key|secret(?:[_\-]?key)?|client[_\-]?secret"
                 r"|access[_\-]?token|auth[_\-]?token|api[_\-]?token|token|private[_\-]?key|access[_\-]?key"
                 r"|signing[_\-]?key|webhook[_\-]?secret)[\"']?\s*[=:]\s*[\"']?"
                 r"([A-Za-z0-9_\-+/=.:]{12,300})", 0.8),
            Rule("secret header",
                 r"(?i)\b(?:x-api-key|x-auth-token|api-key|x-access-token|private-token|x-token|authorization:\s*token)\s*:?\s*([^\s\"'<>\\]{8,300})",
                 0.85)],
         lambda v: _not_placeholder(v) and _has_digit_and_letter(v)),
    ]


# Tokens of a known format broken over a line (a wrapped terminal, a YAML value re-flowed):
# (type, name, prefix, token alphabet, strict form of the whole token). A candidate is a prefix
# (itself possibly broken) and the rest of the token across one break; it counts only if the
# pieces joined are the strict form and the first piece alone is not (a whole token followed by
# the next word is found by the strict rule, and the word stays).
_SPLIT_TOKENS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("AWS_ACCESS_KEY", "AWS access key", ("A3T", "ABIA", "ACCA", "AKIA", "ASIA"), "A-Z0-9",
     r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}"),
    ("GENERIC_SECRET", "Twilio key", ("AC", "SK"), "a-zA-Z0-9", r"(?:AC|SK)[a-f0-9]{32}"),
    ("GENERIC_SECRET", "Hugging Face token", ("hf_",), "A-Za-z0-9_", r"hf_[A-Za-z0-9]{34,40}"),
    ("GENERIC_SECRET", "npm token", ("npm_",), "A-Za-z0-9_", r"npm_[A-Za-z0-9]{36}"),
    ("GITHUB_TOKEN", "GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), "A-Za-z0-9_",
     r"gh[pousr]_[A-Za-z0-9]{36}"),
    ("SLACK_TOKEN", "Slack token", ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"),
     "A-Za-z0-9\\-", r"xox[abposr]-(?:\d+-)+[A-Za-z0-9]{16,}"),
    ("OPENAI_API_KEY", "OpenAI key", ("sk-proj-", "sk-svcacct-", "sk-admin-"), "A-Za-z0-9_\\-",
     r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"),
)
_BREAK = r"(?:[ \t\x0b\x0c]{1,2}|[ \t]*\r?\n[ \t]*)"


def _split_rules() -> list[tuple[str, list[Rule], Callable[[str], bool] | None]]:
    out: list[tuple[str, list[Rule], Callable[[str], bool] | None]] = []
    for entity, label, prefixes, alpha, strict in _SPLIT_TOKENS:
        spaced = "|".join((_BREAK + "?").join(regex.escape(c) for c in p) for p in prefixes)
        pat = (rf"(?<![A-Za-z0-9_\-])(?:{spaced})[{alpha}]*(?:{_BREAK}[{alpha}]+)?(?![{alpha}])")
        rx = regex.compile(strict)

        def ok(v: str, rx: Any = rx) -> bool:
            pieces = regex.split(r"\s+", v)
            return len(pieces) == 2 and rx.fullmatch("".join(pieces)) is not None \
                and rx.fullmatch(pieces[0]) is None
        out.append((entity, [Rule(f"{label} broken over a line", pat, 0.9,
                                  need=tuple({p[0].lower() for p in prefixes}))], ok))
    return out


SECRET_ENTITIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN",
    "STRIPE_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "JWT", "PRIVATE_KEY",
    "PASSWORD", "GENERIC_SECRET",
)


# What stands between a label and its value in the corpus languages: "no.", "n°", "Nr.", "番号",
# then a verb or particle ("is", "ist", "lautet", "est le", "es", "è", "é", "は", "是", "为", "है",
# "هو"). Labels come before values in every one of them but Japanese, Hindi (value, then "है"),
# which these links do not need.
_VERB = r"(?:is|ist|lautet|est(?:\s+le)?|es|è|é|era|war|was|هو|هي|है|は|是|为|為)"
_LINK = (r"[\s.]*(?:(?:number|num|no|nr|n[º°o]|n|id|numero|número|numéro|nummer|番号|号码|号|संख्या|नंबर|رقم)\.?)?"
         r"[\s.:#=\-：]*(?:" + _VERB + r"(?![\p{L}])[\s:：\-]*)?[\s#:：]*")
_IDLINK = (r"[\s.:#\-：]*(?:(?:nr|no|nummer|number|num)\.?[\s.:#\-：]*)?(?:" + _VERB
           + r"(?![\p{L}])[\s:：\-]*)?")
_BANK_LABELS = (
    r"(?:\bkonto(?:nummer|nr\.?)?|\bbankkonto|\bconto(?:\s+corrente)?|\bnumero\s+(?:di\s+)?conto"
    r"|\bcompte(?:\s+bancaire)?|\bn[°º]\s*de\s+compte|\brekening(?:nummer)?|\bconta(?:\s+corrente)?"
    r"|\bn[uú]mero\s+da\s+conta|\bcuenta(?:\s+bancaria)?|口座番号|銀行口座|口座|银行账号|账号|账户|帐号"
    r"|खाता\s*(?:संख्या|नंबर|नं\.?)|बैंक\s+खाता|رقم\s+الحساب|الحساب\s+البنكي)")
_MRN_LABELS = (
    r"(?:\bpatient(?:en|in)?[\s\-]?(?:nummer|nr\.?|id)|\bpati[ëe]nt(?:en)?nummer|\bdossier\s+(?:patient|m[ée]dical)"
    r"|\bnum[ée]ro\s+de\s+dossier|\bcartella\s+clinica|\bhistoria\s+cl[ií]nica|\bhistorial\s+m[ée]dico"
    r"|\bprontu[áa]rio|\bkrankenakte|\bfallnummer|\bpatient\s+file|カルテ(?:番号)?|診察券番号|患者(?:番号|ID)"
    r"|病历号?|病案号|住院号|मेडिकल\s+रिकॉर्ड|(?:मरीज़?|रोगी)\s+(?:का\s+)?रिकॉर्ड|रिकॉर्ड\s+नंबर"
    r"|الملف\s+الطبي|رقم\s+المريض)")
_DL_LABELS = (
    r"(?:driver'?s?\s+licen[sc]e|driving\s+licen[sc]e|\bDL\b|\bD\.L\.|\blic(?:ense|ence)?\s*(?:#|no\.?|number)"
    r"|\brijbewijs(?:nummer)?|\bcnh\b|carteira\s+(?:nacional\s+)?de\s+(?:motorista|habilita[çc][ãa]o)"
    r"|f[üu]hrerschein(?:nummer)?|permis\s+de\s+conduire|permiso\s+de\s+conducir|licencia\s+de\s+conducir"
    r"|\bpatente(?:\s+di\s+guida)?|運転免許(?:証)?(?:番号)?|免許証番号|驾驶证(?:号)?|驾照(?:号)?"
    r"|ड्राइविंग\s+लाइसेंस|رخصة\s+(?:ال)?قيادة)")
_PHONE_LABELS = (
    r"(?:\btelefone|\btelefoon|\btel[ée]fono|\bt[ée]l[ée]phone|\brufnummer|\bhandynummer|\bmobilnummer"
    r"|\bportable|\bgsm|\bwhatsapp|電話番号|携帯(?:電話)?(?:番号)?|电话号码|电话|手机(?:号码?)?"
    r"|फ़ोन|फोन|मोबाइल|رقم\s+(?:ال)?هاتف|الهاتف|هاتف|الجوال|جوال)")
_PHONE_CUES = (
    r"(?:\bcall(?:\s+(?:me|him|her|us|them))?(?:\s+back)?\s+(?:on|at)|\bring\s+(?:me\s+)?(?:on|at)"
    r"|\btext\s+(?:me\s+)?(?:on|at)|\breach(?:able)?\s+(?:me\s+|him\s+|her\s+)?(?:on|at)"
    r"|r[üu]ckruf(?:\s+bitte)?\s+unter|erreichbar\s+unter|\banrufen\s+unter|\bunter\s+der\s+nummer"
    r"|\b(?:rappel|appel)(?:ez|er)(?:-(?:moi|nous|le|la))?\s+au|\bjoignable\s+au"
    r"|\bllam(?:ar|e|eme|enos)\s+al|\bcontactar\s+al|\b(?:ri)?chiam(?:are|a|ami)\s+al|\bcontattare\s+al"
    r"|\bterugbellen\s+op|\bbel(?:len)?\s+(?:me\s+)?op|\bbereikbaar\s+op"
    r"|\bligar\s+para|\bliga[çc][ãa]o\s+para|\bretornar\s+(?:a\s+liga[çc][ãa]o\s+)?para|\btelefonar\s+para"
    r"|الاتصال\s+(?:على|ب)|اتصل\s+(?:على|ب)|回电|致电|拨打|打电话给?)")
_PHONE_VALUE = r"(\+?\(?\d[\d ().\-/]{5,20}\d)(?![\d])"


_NUMERIC_DATE = regex.compile(r"\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)?\d{2}|(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}")


def _broken_date(v: str) -> bool:
    pieces = v.split()
    return len(pieces) == 2 and _NUMERIC_DATE.fullmatch("".join(pieces)) is not None


def _pii_rules() -> list[tuple[str, list[Rule], Callable[[str], bool] | None]]:
    num_ctx = r"[\s.]*(?:number|num|no|nr|n[º°o]|#|id)?[\s.]*(?:is|:|=|#|-)?[\s#:]*"
    return [
        ("STREET_ADDRESS", [Rule("US street address", _US_ADDRESS, 0.9),
                            Rule("DE street address", _DE_ADDRESS, 0.7),
                            Rule("FR street address", _FR_ADDRESS, 0.7),
                            Rule("ES/IT/PT street address", _ES_PT_IT_ADDRESS, 0.7),
                            Rule("NL street address", _NL_ADDRESS, 0.7),
                            Rule("JA address", _JA_ADDRESS, 0.8),
                            Rule("ZH address", _ZH_ADDRESS, 0.8),
                            Rule("IN address", _IN_ADDRESS, 0.7),
                            Rule("ES/IT/PT street with postcode", _STREET_POSTCODE, 0.7),
                            Rule("US street address (lower case)", _US_ADDRESS_LOWER, 0.8),
                            Rule("UK address with postcode", _UK_ADDRESS, 0.8),
                            Rule("BR address (UF and CEP)", _BR_ADDRESS, 0.75),
                            Rule("EU street, number, postcode, town", _EU_ADDRESS, 0.7),
                            Rule("FR street and postcode", _FR_ADDRESS_NO_NUMBER, 0.7)], _address_ok),
        ("DATE_OF_BIRTH", [Rule("date with birth context",
                                rf"(?i){_DOB_CTX}\s*(?:[:=\-：]|is|was|ist|war|est|es|è|é|era|は|是|为|為|:)?\s*(?:on\s+|am\s+|le\s+|el\s+|il\s+|em\s+|op\s+)?({_DATE})"
                                r"(?![0-9])", 0.85)], None),
        ("DATE_OF_BIRTH", [Rule(
            # a numeric date broken by one line break or space (the pieces joined must be a date)
            "date with birth context, broken",
            rf"(?i){_DOB_CTX}\s*(?:[:=\-：]|is|was|ist|war|est|es|è|é|era|は|是|为|為)?\s*(?:on\s+|am\s+|le\s+|el\s+|il\s+|em\s+|op\s+)?"
            r"(\d[\d/.\-]{0,8}(?:[ \t]{1,2}|[ \t]*\r?\n[ \t]*)[\d/.\-]{1,9}\d)(?![0-9])", 0.85,
            need=_NEEDS["date with birth context"][0])], _broken_date),
        ("ABA_ROUTING_NUMBER", [Rule(
            "routing number with context",
            r"(?i)(?:\baba|routing|\brtn\b|transit)" + num_ctx + r"([0123678]\d{3}-?\d{4}-?\d)"
            + r"(?![0-9])", 0.85)], _aba_valid),
        ("MEDICAL_RECORD_NUMBER", [Rule(
            "MRN with context",
            r"(?i)(?:(?<![A-Za-z])mrn|\bmed\.?\s*rec(?:ord)?\.?|medical\s+record|patient\s+(?:id|number|no)|chart\s+(?:number|no|#))"
            + num_ctx + r"([A-Z]{0,4}[\-/]?\d[\d\-]{3,14}\d)(?![0-9])", 0.85),
            Rule("MRN with a label of another language", r"(?i)" + _MRN_LABELS + _LINK
                 + r"([A-Z]{0,4}[\-/]?\d[\d\-]{3,14}\d)(?![0-9])", 0.85,
                 need=("patient", "patiënt", "dossier", "cartella", "historia", "historial", "prontu",
                       "kranken", "fallnummer", "カルテ", "診察券", "患者", "病历", "病案", "住院",
                       "रिकॉर्ड", "الملف", "المريض"))], _min_digits(5)),
        ("US_BANK_NUMBER", [Rule(
            "bank account with context",
            r"(?i)(?:bank\s+account|checking\s+account|savings\s+account|account\s+(?:number|no\.?|#|nr)"
            r"|\bacct\.?|\ba/c|\bkonto(?:nummer)?|n[uú]mero\s+de\s+cuenta|\bcuenta|num[ée]ro\s+de\s+compte"
            r"|numero\s+di\s+conto|rekeningnummer|n[uú]mero\s+da\s+conta|conta\s+corrente)" + num_ctx
            + r"(\d[\d \-]{5,20}\d)(?![0-9])", 0.8),
            Rule("bank account with a label of another language", r"(?i)" + _BANK_LABELS + _LINK
                 + r"(\d(?:[ \-]?\d){5,16})(?![0-9])", 0.8,
                 need=("konto", "conto", "compte", "rekening", "conta", "cuenta", "口座", "账", "帐",
                       "खाता", "الحساب"))], _digits_between(6, 17)),
        ("US_DRIVER_LICENSE", [Rule(
            "driver licence with context",
            r"(?i)(?:driver'?s?\s+licen[sc]e|driving\s+licen[sc]e|\bDL|\bD\.L\.|\blic(?:ense|ence)?\s*(?:#|no\.?|number)"
            r"|f[üu]hrerschein(?:nummer)?|permis\s+de\s+conduire|permiso\s+de\s+conducir|patente|carteira\s+de\s+motorista)" + num_ctx
            + r"([A-Z]{0,2}\d[\d\-]{4,14}[A-Z0-9]?)(?![A-Za-z0-9])", 0.8),
            Rule("driver licence with a label of another language", r"(?i)" + _DL_LABELS + _LINK
                 # US state formats, or a UK DVLA number (5 of the surname, 6 digits, initials,
                 # a digit, 2 check characters)
                 + r"((?-i:[A-Z]{0,2}\d[\d\-]{4,14}[A-Z0-9]?|[A-Z9]{5}\d{6}\s?[A-Z9]{2}\d[A-Z0-9]{2}))"
                 r"(?![A-Za-z0-9])", 0.8,
                 need=("driv", "dl", "d.l.", *("lic" + w for w in _WS), "lic#", "licn", "licen", "rijbewijs", "cnh", "carteira", "führerschein",
                       "fuhrerschein", "permis", "licencia", "patente", "運転免許", "免許証", "驾驶证",
                       "驾照", "ड्राइविंग", "رخصة"))], _min_digits(5)),
        ("CREDIT_CARD", [Rule(
            "card number (Luhn, issuer ranges)",
            r"(?<![\d\-.])(?:\d[ \-]?){11,18}\d(?![\d])", 0.9)], card_valid),
        ("PHONE_NUMBER", [Rule(
            # NANP layout, whatever phonenumbers says of the area code: a leak is worse than
            # a mask
            "NANP formatted number",
            r"(?<![\w+.\-/:])(?:\+?1[ .\-]?)?(?:\(\d{3}\)\s?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w\-/]|\.\d)", 0.55),
            Rule("phone with its label",
                 r"(?i)(?:\bphone|\btel(?:e(?:phone|fon|fono))?|\bmobile|\bcell|\bfax|\bhandy|\bm[óo]vil|\bcellulare|\bportable|\bcelular|電話|电话|手机)"
                 r"(?:\s*(?:number|no\.?|nr\.?|#|num))?\s*[:=.]?\s*"
                 r"(\+?\(?\d[\d ().\-/]{5,20}\d)(?![\d])", 0.7),
            Rule("phone with a label of another language",
                 r"(?i)" + _PHONE_LABELS + r"(?:\s*(?:number|no\.?|nr\.?|#|num|nummer|番号|号码|नंबर))?"
                 r"\s*[:=.：]?\s*(?:" + _VERB + r"(?![\p{L}])[\s:：\-]*)?" + _PHONE_VALUE, 0.7,
                 need=("telefon", "telefoon", "teléfono", "telefono", "téléphone", "telephone", "rufnummer",
                       "handynummer", "mobilnummer", "portable", "gsm", "whatsapp", "電話", "携帯",
                       "电话", "手机", "फ़ोन", "फोन", "मोबाइल", "هاتف", "جوال")),
            Rule("phone after a call-back phrase",
                 r"(?i)" + _PHONE_CUES + r"\s*[:：]?\s*" + _PHONE_VALUE, 0.65,
                 need=("call", *(v + w + x for v in ("ring", "text") for w in _WS for x in ("me", "on", "at")),
                       "reach",
                       "rückruf", "ruckruf", "erreichbar", "anrufen", "unter", "rappel", "appel",
                       "joignable", "llam", "contactar", "chiam", "contattare", *("bel" + w for w in _WS),
                       "bellen", "bereikbaar", "ligar", "ligação", "ligacao", "retornar",
                       "telefonar", "الاتصال", "اتصل", "回电", "致电", "拨打", "打电话")),
            Rule("phone before a call-back phrase",
                 r"(?<![\d+])" + _PHONE_VALUE[:-len(r"(?![\d])")] + r"(?![\d])\s*(?:へ|に|まで)\s*(?:折り返|お電話|電話|ご連絡|連絡)", 0.65,
                 need=("折り返", "電話", "連絡")),
            Rule("phone before a Hindi call-back phrase",
                 _PHONE_VALUE + r"\s*पर\s+(?:वापस\s+)?(?:कॉल|फ़ोन|फोन)", 0.65,
                 need=("कॉल", "फ़ोन", "फोन"))], _digits_between(7, 15)),
        ("US_PASSPORT", [Rule(
            "passport with context",
            r"(?i)(?:passport|reisepass|passeport|pasaporte|passaporte|passaporto|paspoort)" + num_ctx
            + r"([A-Z]{0,2}\d{6,9}[A-Z]?)(?![A-Za-z0-9])", 0.8)], None),
    ]


PII_ENTITIES: tuple[str, ...] = (
    "STREET_ADDRESS", "DATE_OF_BIRTH", "ABA_ROUTING_NUMBER", "MEDICAL_RECORD_NUMBER",
    "US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_PASSPORT", "CREDIT_CARD", "PHONE_NUMBER",
)
NATIONAL_ID_ENTITIES: tuple[str, ...] = (
    "DE_TAX_ID", "ES_NIF", "ES_NIE", "FR_NIR", "IT_FISCAL_CODE", "NL_BSN", "UK_NINO", "UK_NHS",
    "BR_CPF", "CN_RESIDENT_ID", "JP_MY_NUMBER", "IN_AADHAAR", "IN_PAN", "SA_NATIONAL_ID",
)
NATIONAL_ID_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "en": ("US_SSN", "UK_NINO", "UK_NHS"), "de": ("DE_TAX_ID",), "es": ("ES_NIF", "ES_NIE"),
    "fr": ("FR_NIR",), "it": ("IT_FISCAL_CODE",), "nl": ("NL_BSN",), "pt": ("BR_CPF",),
    "zh": ("CN_RESIDENT_ID",), "ja": ("JP_MY_NUMBER",), "hi": ("IN_AADHAAR", "IN_PAN"),
    "ar": ("SA_NATIONAL_ID",),
}


def sa_national_id_valid(v: str) -> bool:
    """Saudi national id (citizens, first digit 1) or iqama (residents, 2): ten digits, the last
    a Luhn check digit (python-stdnum's ``luhn``). At most one break inside."""
    from stdnum import luhn

    if len(v.split()) > 2:
        return False
    d = "".join(c for c in v if c.isdigit())
    return len(d) == 10 and d[0] in "12" and bool(luhn.is_valid(d))


def my_number_valid(v: str) -> bool:
    """Japanese My Number (個人番号): 12 digits, check digit per the Cabinet Office ordinance."""
    d = [int(c) for c in v if c.isdigit()]
    if len(d) != 12:
        return False
    body = d[:11]
    total = sum(x * (n + 1 if n <= 6 else n - 5) for n, x in
                enumerate(reversed(body), start=1))
    r = total % 11
    return d[11] == (0 if r <= 1 else 11 - r)


def _national_id_rules() -> list[tuple[str, list[Rule], Callable[[str], bool] | None]]:
    """National identifiers, each confirmed by its python-stdnum checksum. Numbers that are
    only digits with a weak check (BSN, the German tax id) need their label in the regex."""
    return [
        ("DE_TAX_ID", [Rule(
            "DE tax id with label",
            r"(?i)(?:steuer-?id(?:entifikationsnummer)?|steuerliche\s+identifikationsnummer|\bidnr|tax\s+id|identifikationsnummer)"
            + _IDLINK + r"(\d{2}\s?\d{3}\s?\d{3}\s?\d{3})(?!\d)", 0.85)],
         _stdnum_valid("de.idnr")),
        ("ES_NIF", [Rule("ES DNI", r"(?<![\w])\d{8}[ \-]?[A-HJ-NP-TV-Z](?![\w])", 0.75)],
         _stdnum_valid("es.dni")),
        ("ES_NIE", [Rule("ES NIE", r"(?<![\w])[XYZ][ \-]?\d{7}[ \-]?[A-HJ-NP-TV-Z](?![\w])", 0.8)],
         _stdnum_valid("es.nie")),
        ("FR_NIR", [Rule(
            "FR NIR", r"(?<![\w])[12]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}"
            r"(?:\s?\d{2})(?![\w])", 0.8)], _stdnum_valid("fr.nir")),
        ("IT_FISCAL_CODE", [Rule(
            "IT codice fiscale",
            r"(?i)(?<![\w])[A-Z]{6}[\dLMNPQRSTUV]{2}[A-EHLMPR-T][\dLMNPQRSTUV]{2}[A-Z][\dLMNPQRSTUV]{3}[A-Z](?![\w])",
            0.9)], _stdnum_valid("it.codicefiscale")),
        ("NL_BSN", [Rule(
            "NL BSN with label",
            r"(?i)(?:\bbsn|burgerservicenummer|sofi-?nummer)" + _IDLINK + r"(\d{4}\.?\d{2}\.?\d{3}|\d{9}|(?=[\d \t\r\n]{10,12}(?!\d))\d{1,8}(?:[ \t]|\r?\n)\d{1,8})(?!\d)",
            0.85)], _stdnum_valid("nl.bsn")),
        ("UK_NINO", [Rule(
            "UK National Insurance number",
            r"(?i)(?<![\w])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D](?![\w])", 0.75)],
         nino_valid),
        ("UK_NHS", [Rule(
            "UK NHS number with label",
            r"(?i)\bnhs(?:\s*(?:number|no\.?|num|#))?" + _IDLINK + r"(\d{3}[ \-]?\d{3}[ \-]?\d{4})(?!\d)", 0.85)],
         _stdnum_valid("gb.nhs")),
        ("JP_MY_NUMBER", [Rule(
            "JP My Number with label",
            r"(?i)(?:マイナンバー|個人番号|my\s*number)[\s:：は]*(\d{4}[ \-]?\d{4}[ \-]?\d{4})(?!\d)", 0.85)],
         my_number_valid),
        ("IN_AADHAAR", [Rule(
            "IN Aadhaar", r"(?<![\w])[2-9]\d{3}[ \-]?\d{4}[ \-]?\d{4}(?![\w])", 0.6)],
         _stdnum_valid("in_.aadhaar")),
        # India's PAN: five letters (the fourth says who holds it: P a person, C a company ...),
        # four digits, a letter; python-stdnum checks the shape and the holder type. Written in
        # lower case too; an all-hex lower-case token is an abbreviated hash, not a PAN.
        ("IN_PAN", [Rule("IN PAN", r"(?i)(?<![\w])[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z](?![\w])", 0.6)],
         pan_valid),
        ("BR_CPF", [Rule("BR CPF", r"(?<![\w.\-])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\w])", 0.85),
                    Rule("BR CPF with label", r"(?i)\bcpf[\s.:#nº°-]*" + _IDLINK + r"(\d{11})(?!\d)", 0.85)],
         _stdnum_valid("br.cpf")),
        ("SA_NATIONAL_ID", [Rule(
            "SA national id / iqama with label",
            r"(?i)(?:رقم\s+(?:ال)?هوية(?:\s+(?:ال)?وطنية)?|(?:ال)?هوية\s+(?:ال)?وطنية|رقم\s+(?:ال)?إقامة|\biqama"
            r"|saudi\s+(?:national\s+)?id|national\s+id(?:\s+number)?)"
            r"(?:\s+\p{Arabic}+){0,3}" + _IDLINK + r"([12](?:[ \t]?\d){9})(?!\d)", 0.85,
            need=("هوية", "إقامة", "iqama", "national id", "saudi"))],
         sa_national_id_valid),
        ("CN_RESIDENT_ID", [Rule(
            "CN resident id", r"(?<![\w])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\w])",
            0.85)], _stdnum_valid("cn.ric")),
    ]
OUR_ENTITIES: tuple[str, ...] = SECRET_ENTITIES + PII_ENTITIES + NATIONAL_ID_ENTITIES

# Presidio recognizers replaced by ours above (theirs flag any 8-17 digit number or "S3"/"EC2"
# once a context word such as "lic" appears as a substring of "public").
REPLACED_PRESIDIO = ("UsBankRecognizer", "UsLicenseRecognizer", "UsPassportRecognizer",
                     "CreditCardRecognizer")

# Pre-checks per rule name (see Rule.need): lower-case literals one of which every match holds,
# or a cheap regex every match contains. Only a speed-up: tests/test_detect_ids.py checks on
# samples that a rule never matches a text its pre-check rejects.
_WS = (" ", "\t", "\n", "\r", "\x0b", "\x0c")
_B64_16 = r"[A-Za-z0-9+/]{16}"
_B64_40 = r"[A-Za-z0-9+/]{40}"
_ES_PT_IT_STREETS = ("calle", "c/", "avenida", "avda.", "av.", "paseo", "plaza", "camino", "carretera", "ronda",
                     "travesía", "rambla", "glorieta", "pasaje", "callejón", "cuesta", "urbanización",
                     "alameda", "via", "viale", "piazza", "piazzale", "corso", "vicolo", "largo", "contrada",
                     "strada", "borgo", "rua", "travessa", "praça", "rodovia", "estrada", "avenue", "ladeira",
                     "vila", "setor", "quadra")
_NEEDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    # addresses: the street word, the postcode, or the division character each match holds
    "UK address with postcode": ((), r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"),
    "JA address": ((), r"[都道府県]"),
    "ZH address": ((), r"[省区市]"),
    "ES/IT/PT street address": (_ES_PT_IT_STREETS, None),
    "ES/IT/PT street with postcode": (_ES_PT_IT_STREETS, r"\d{5}"),
    "FR street address": (("rue", "avenue", "av.", "boulevard", "bd", "chemin", "impasse", "quai", "place",
                           "allée", "route", "cours", "passage", "square"), None),
    "FR street and postcode": (("rue", "avenue", "boulevard", "chemin", "impasse", "allée", "allee", "place",
                                "quai", "route", "cours"), r"\d{5}\s"),
    "detect-secrets AWS": (("a3t", "abia", "acca", "akia", "asia"), None),
    "detect-secrets AWS secret": (("aws",), None),
    "AWS secret with key name": (("aws",), None),
    "AWS secret (weak)": ((), _B64_40),
    "AWS secret (shape)": ((), _B64_40),
    "detect-secrets GitHub": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), None),
    "GitHub fine-grained PAT": (("github_pat_",), None),
    "detect-secrets GitLab": (("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-",
                               "glimt-", "glptt-", "glagent-", "gloas-"), None),
    "detect-secrets Slack": (("xox", "hooks.slack.com"), None),
    "detect-secrets Stripe": (("k_live_",), None),
    "Stripe key": (("k_live_", "k_test_"), None),
    "detect-secrets OpenAI": (("sk-",), None),
    "OpenAI key": (("sk-",), None),
    "Anthropic key": (("sk-ant-",), None),
    "Google API key": (("aiza",), None),
    "detect-secrets JWT": (("eyj",), None),
    "PEM private key block": (("private key",), None),
    "PEM private key (no end)": (("private key",), None),
    "PuTTY key": (("putty-user-key-file-",), None),
    "password in a sentence": (("pass", "pwd", "pin", "contraseña", "clave", "senha", "wachtwoord",
                                "kennwort", "パスワード", "密码"), None),
    "password set to": (("pass", "pwd"), None),
    "password label in prose": (("pass", "kennwort", "contraseña", "senha", "wachtwoord", "pw"), None),
    "HTTP Basic credentials": (("basic",), None),
    "base64 user:password": ((), _B64_16),
    "curl user:password": (("-u",), None),
    "detect-secrets basic auth": (("://",), None),
    "URL password": (("://",), None),
    "password key/value": (("pass", "pwd"), None),
    "detect-secrets SendGrid": (("sg.",), None),
    "detect-secrets Mailchimp": (("-us",), None),
    "detect-secrets PyPI": (("pypi-",), None),
    "Azure storage key": (("accountkey=",), None),
    "npm token": (("npm_",), None),
    "Hugging Face token": (("hf_",), None),
    "secret after its word": (("token", "secret", "key", "credential"), None),
    "secret key/value": (("key", "secret", "token"), None),
    "secret header": (("key", "token"), None),
    "date with birth context": ((
        "dob", "d.ob", "do.b", "d.o.b", "birth", "born", "geb",
        # n[ée]e?\s+le: "e" or "é" and one white space before "le", or two white spaces
        *(c + w + "le" for c in "eé" for w in _WS), *(w1 + w2 + "le" for w1 in _WS for w2 in _WS),
        "naissance", "nato", "nata", "nascit", "nacid", "nacimiento", "nac.",
        "geboorte", "nascid", "nascimento", "生年月日", "出生", "生于", "誕生日", "जन्म", "तारीख",
        "جنم", "تاريخ", "مواليد"), None),
    "routing number with context": (("aba", "routing", "rtn", "transit"), None),
    "passport with context": (("pass", "pasaport", "paspoort"), None),
    "DE tax id with label": (("steuer", "idnr", "tax", "identifikationsnummer"), None),
    "NL BSN with label": (("bsn", "burgerservicenummer", "sofi"), None),
    "UK NHS number with label": (("nhs",), None),
    "JP My Number with label": (("マイナンバー", "個人番号", "my"), None),
    "BR CPF with label": (("cpf",), None),
    "IN PAN": ((), r"[A-Za-z]{3}[ABCFGHJLPTabcfghjlpt][A-Za-z]\d{4}[A-Za-z]"),
    "UK National Insurance number": ((), r"\d\s?[A-Da-d](?![\w])"),
    "IT codice fiscale": ((), r"[A-Za-z]{6}[\dLMNPQRSTUVlmnpqrstuv]{2}[A-EHLMPR-Ta-ehlmpr-t][\dLMNPQRSTUVlmnpqrstuv]{2}[A-Za-z]"),
    "FR NIR": ((), r"[12]\s?\d\d\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d\d|2[AB])\s?\d{3}"),
    "bank account with context": (("account", "acct", "a/c", "konto", "cuenta", "compte", "conto",
                                   "rekeningnummer", "conta"), None),
    "phone with its label": (("phone", "tel", "mobile", "cell", "fax", "handy", "móvil", "movil",
                              "portable", "celular", "電話", "电话", "手机"), None),
    "MRN with context": (("mrn", "med", "patient", "chart"), None),
    "driver licence with context": (("driv", "dl", "d.l.", *("lic" + w for w in _WS), "lic#", "licn",
                                     "licen", "führerschein", "fuhrerschein", "permis", "permiso",
                                     "patente", "carteira"), None),
}


def _with_needs(rules: list[Rule]) -> list[Rule]:
    import dataclasses

    out = []
    for r in rules:
        need = _NEEDS.get(r.name)
        if need is not None and not r.need and r.need_rx is None:
            r = dataclasses.replace(r, need=need[0], need_rx=need[1])
        out.append(r)
    return out


_AWS_CONTEXT = ["aws", "secret", "secret_access_key", "aws_secret_access_key"]


def build_recognizers(language: str = "en") -> list[EntityRecognizer]:
    """Our recognizers for ``language`` (patterns are language-neutral)."""
    out: list[EntityRecognizer] = []
    seen: dict[str, int] = {}
    for entity, rules, validate in (_secret_rules() + _split_rules() + _pii_rules()
                                    + _national_id_rules()):
        ctx = _AWS_CONTEXT if entity == "AWS_SECRET_KEY" else None
        # a readable name (shown in dry runs and the playground): CreditCardRecognizer, then
        # CreditCardRecognizer2 ... when one type has several rule sets
        seen[entity] = seen.get(entity, 0) + 1
        name = f"{entity.title().replace('_', '')}Recognizer" + (str(seen[entity]) if seen[entity] > 1 else "")
        out.append(RegexRecognizer(entity, _with_needs(rules), name=name, language=language,
                                   context=ctx, validate=validate))
    out.append(IbanScanner(language))
    return out


def merge_recognizers(recs: Iterable[EntityRecognizer], language: str = "en"
                      ) -> list[EntityRecognizer]:
    """``recs`` with our context-free rule sets folded into one :class:`PatternPass` (rule sets
    with context words stay apart: Presidio's context enhancer reads a recognizer's words)."""
    merged: list[RegexRecognizer] = []
    rest: list[EntityRecognizer] = []
    for r in recs:
        if isinstance(r, RegexRecognizer) and not r.context and r._timeout is None:
            merged.append(r)
        else:
            rest.append(r)
    return ([PatternPass(merged, language)] if merged else []) + rest


def _deny_regex(words: Iterable[str]) -> str:
    alts = "|".join(regex.escape(w.strip()) for w in sorted(set(words), key=len, reverse=True)
                    if w.strip())
    return rf"(?i)(?<!\w)(?:{alts})(?!\w)"


#: A policy's own regex may backtrack badly on some text: each scan of one text stops after this
#: long and the request fails closed (500 guard_timeout, naming the recognizer).
CUSTOM_REGEX_TIMEOUT_SECONDS = 0.25


def compile_custom(custom: Sequence[CustomRecognizer], language: str = "en"
                   ) -> list[EntityRecognizer]:
    """Compile policy custom recognizers. Raises ``ValueError`` naming the recognizer (never
    the pattern's matches) if a regex does not compile."""
    out: list[EntityRecognizer] = []
    for c in custom:
        rules: list[Rule] = []
        if c.regex:
            try:
                regex.compile(c.regex, _FLAGS)
            except regex.error as e:
                raise ValueError(f"custom recognizer {c.name!r}: invalid regex ({e.msg})") from e
            rules.append(Rule(f"custom {c.name}", c.regex, c.score))
        if c.deny_list:
            rules.append(Rule(f"custom {c.name} deny list", _deny_regex(c.deny_list), c.score))
        if not rules:
            raise ValueError(f"custom recognizer {c.name!r}: needs a regex or a deny_list")
        ctx = c.context or None
        if c.regex:
            out.append(RegexRecognizer(c.type, rules[:1], name=f"custom:{c.name}",
                                       language=language, context=ctx,
                                       validate=CHECKSUMS.get(c.checksum), timeout=CUSTOM_REGEX_TIMEOUT_SECONDS))
        if c.deny_list:
            out.append(RegexRecognizer(c.type, rules[-1:], name=f"custom:{c.name}:deny",
                                       language=language, context=ctx))
    return out
