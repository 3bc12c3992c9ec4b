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

from trustproxy.policy.schema import CustomRecognizer

__all__ = ["RegexRecognizer", "Rule", "build_recognizers", "compile_custom", "SECRET_ENTITIES",
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
        entity = self.supported_entities[0]
        out: list[RecognizerResult] = []
        for rule, rx in self._rules:
            try:
                matches = list(rx.finditer(text)) if self._timeout is None else _matches(rx, text, self._timeout)
            except TimeoutError:
                from trustproxy.errors import GuardFailed

                raise GuardFailed(f"Recognizer '{getattr(self, 'name')}' took longer than its regex time limit "
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
                name: str = getattr(self, "name")  # noqa: B009 (Presidio's attribute is untyped)
                expl = AnalysisExplanation(recognizer=name, original_score=rule.score,
                                           pattern_name=rule.name, pattern=rule.pattern)
                out.append(RecognizerResult(
                    entity_type=entity, start=start, end=end, score=rule.score,
                    analysis_explanation=expl,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    }))
        return EntityRecognizer.remove_duplicates(out)


def _matches(rx: Any, text: str, timeout: float) -> list[Any]:
    """``finditer`` under one deadline for the whole text (``regex``'s own ``timeout`` counts per
    search, and ``finditer`` searches again from every position)."""
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


def _not_placeholder(v: str) -> bool:
    return not _PLACEHOLDER.match(v) and v.lower() not in {"none", "null", "true", "false"}


def _mixed_key(v: str) -> bool:
    """A random 40-char key: has upper, lower and digit (excludes hex SHAs, words)."""
    return (any(c.isupper() for c in v) and any(c.islower() for c in v)
            and any(c.isdigit() for c in v))


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
           r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = (r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)?\d{2}"
         r"|(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}"
         rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}"
         rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+(?:19|20)\d{{2}})")
_DOB_CTX = (r"(?:\bd\.?o\.?b\b\.?|date\s+of\s+birth|birth\s*date|birthday|\bborn(?:\s+on)?"
            r"|\bgeboren(?:\s+am)?|\bn[ée]e?\s+le)")

_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl"
           r"|Way|Terrace|Ter|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl|Alley"
           r"|Loop|Plaza|Row)")
_US_ADDRESS = (
    r"\b\d{1,6}[A-Z]?\s+(?:[NSEW]\.?\s+|(?:North|South|East|West)\s+)?"
    r"(?:(?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th))\.?\s+){1,4}" + _SUFFIX + r"\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|#)\.?\s*#?[A-Za-z0-9\-]{1,6})?"
    r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})?"
    r"(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"
)
_DE_ADDRESS = (r"\b[A-ZÄÖÜ][a-zäöüß\-]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)"
               r"\s+\d{1,4}\s?[a-z]?\b(?:,\s*\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+)?")
_FR_ADDRESS = (r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|bd|chemin|impasse|quai)"
               r"\s+(?:(?:de|du|des|la|le|d')\s*)*[A-ZÉÈ][\w'\-]+(?:\s+[A-ZÉÈ][\w'\-]+){0,3}"
               r"(?:,\s*\d{5}\s+[A-ZÉÈ][\w\-]+)?")

_URL_PASSWORD = r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:([^\s@/]{1,128})@"
_KV_PASSWORD = (r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|db_pass(?:word)?|pass)"
                r"[\"']?\s*[=:]\s*(?:\"([^\"\r\n]{1,128})\"|'([^'\r\n]{1,128})'"
                r"|([^\s\"';&,<>()]{1,128}))")


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
        ("AWS_ACCESS_KEY", ds("AWS", AWSKeyDetector, 0.95, 0), None),
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
            Rule("PuTTY key", r"PuTTY-User-Key-File-\d+:.*?Private-MAC:\s*[0-9a-f]+", 0.95),
        ], None),
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
            Rule("secret key/value",
                 r"(?i)(?<![A-Za-z0-9])(?:api[_\-]?key|secret[_\-]?key|client[_\-]?secret"
                 r"|access[_\-]?token|auth[_\-]?token)[\"']?\s*[=:]\s*[\"']?"
                 r"([A-Za-z0-9_\-+/=.]{16,200})", 0.8)],
         lambda v: _not_placeholder(v) and _has_digit_and_letter(v)),
    ]


SECRET_ENTITIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN",
    "STRIPE_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "JWT", "PRIVATE_KEY",
    "PASSWORD", "GENERIC_SECRET",
)


def _pii_rules() -> list[tuple[str, list[Rule], Callable[[str], bool] | None]]:
    num_ctx = r"\s*(?:number|num|no\.?|nr\.?|#|id)?\s*(?:is|:|=|#|-)?\s*"
    return [
        ("STREET_ADDRESS", [Rule("US street address", _US_ADDRESS, 0.9),
                            Rule("DE street address", _DE_ADDRESS, 0.7),
                            Rule("FR street address", _FR_ADDRESS, 0.7)], None),
        ("DATE_OF_BIRTH", [Rule("date with birth context",
                                rf"(?i){_DOB_CTX}\s*(?:[:=\-]|is|was)?\s*(?:on\s+)?({_DATE})"
                                r"(?![0-9])", 0.85)], None),
        ("ABA_ROUTING_NUMBER", [Rule(
            "routing number with context",
            r"(?i)(?:\baba|routing|\brtn\b|transit)" + num_ctx + r"([0123678]\d{3}-?\d{4}-?\d)"
            + r"(?![0-9])", 0.85)], _aba_valid),
        ("MEDICAL_RECORD_NUMBER", [Rule(
            "MRN with context",
            r"(?i)(?:(?<![A-Za-z])mrn|medical\s+record|patient\s+(?:id|number)|chart\s+(?:number|no))"
            + num_ctx + r"([A-Z]{0,3}-?\d{5,10})(?![0-9])", 0.85)], _min_digits(5)),
        ("US_BANK_NUMBER", [Rule(
            "bank account with context",
            r"(?i)(?:bank\s+account|checking\s+account|savings\s+account|account\s+(?:number|no\.?|#)"
            r"|\bacct\.?)" + num_ctx + r"(\d{8,17})(?![0-9])", 0.8)], None),
        ("US_DRIVER_LICENSE", [Rule(
            "driver licence with context",
            r"(?i)(?:driver'?s?\s+licen[sc]e|driving\s+licen[sc]e|\bDL)" + num_ctx
            + r"([A-Z]{0,2}\d[\d\-]{4,14}[A-Z0-9]?)(?![A-Za-z0-9])", 0.8)], _min_digits(5)),
        ("US_PASSPORT", [Rule(
            "passport with context",
            r"(?i)passport" + num_ctx + r"([A-Z]?\d{8,9})(?![A-Za-z0-9])", 0.8)], None),
    ]


PII_ENTITIES: tuple[str, ...] = (
    "STREET_ADDRESS", "DATE_OF_BIRTH", "ABA_ROUTING_NUMBER", "MEDICAL_RECORD_NUMBER",
    "US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_PASSPORT",
)
OUR_ENTITIES: tuple[str, ...] = SECRET_ENTITIES + PII_ENTITIES

# Presidio recognizers replaced by ours above (theirs flag any 8-17 digit number or "S3"/"EC2"
# once a context word such as "lic" appears as a substring of "public").
REPLACED_PRESIDIO = ("UsBankRecognizer", "UsLicenseRecognizer", "UsPassportRecognizer")

_AWS_CONTEXT = ["aws", "secret", "secret_access_key", "aws_secret_access_key"]


def build_recognizers(language: str = "en") -> list[EntityRecognizer]:
    """Our recognizers for ``language`` (patterns are language-neutral)."""
    out: list[EntityRecognizer] = []
    for n, (entity, rules, validate) in enumerate(_secret_rules() + _pii_rules()):
        ctx = _AWS_CONTEXT if entity == "AWS_SECRET_KEY" else None
        name = f"{entity.title().replace('_', '')}Recognizer{n}"
        out.append(RegexRecognizer(entity, rules, name=name, language=language, context=ctx,
                                   validate=validate))
    return out


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
