"""Which language a text is in, and what covers each language.

:func:`identify` names the language of one slot group's text: the script decides for scripts
that belong to few languages (Han without kana -> ``zh``, kana -> ``ja``, Hangul -> ``ko``,
Arabic, Devanagari, Cyrillic, Greek, Hebrew, Thai); Latin-script text is classified by
``py3langid`` (a naive Bayes model shipped inside the package; no download) restricted to
:data:`LATIN_LANGUAGES`, on its first :data:`SAMPLE` characters. A text with fewer than
:data:`MIN_LETTERS` letters, or no clear winner, gets ``None`` (the policy's language applies).

What covers a language (:func:`coverage`):

- ``ner``: a spaCy NER model for the language is configured (the policy's ``nlp_model`` for
  its ``language``, and ``languages:`` entries) -> names, places, organisations by NER;
- every language gets the pattern and checksum recognizers (cards, IBAN, e-mail, phones with the
  language's regions, national ids, secrets, dates of birth with the language's words for
  "born", street addresses of the covered countries), values typed by their JSON/CSV/``key=``
  keys, and names from the name resource (``trustproxy/pii/data/names``: the census lists and
  given names of es/pt/it/nl/de/fr for Latin script; surname and given-name lists of Chinese,
  Japanese, Arabic and Hindi, used with honorifics, labels, cue words and fields; see
  :mod:`trustproxy.pii.names`);
- a language with no NER model is *uncovered* for names: a policy decides what happens to such
  text with the pseudo entity ``UNCOVERED_LANGUAGE`` (``action: block`` refuses it; listing it
  under ``retention.require_zero_data_retention_for`` sends it only to zero-data-retention
  routes; otherwise it is screened with what there is and counted).
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from typing import Any

__all__ = ["identify", "coverage", "phone_regions", "LATIN_LANGUAGES", "UNCOVERED",
           "SAMPLE", "MIN_LETTERS"]

LATIN_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "pt")
UNCOVERED = "UNCOVERED_LANGUAGE"
SAMPLE = 400
MIN_LETTERS = 24
_MIN_PROB = 0.9

# phone number regions tried for a language (besides US/NANP, tried always)
PHONE_REGIONS: dict[str, tuple[str, ...]] = {
    "en": ("GB",), "de": ("DE", "AT", "CH"), "fr": ("FR", "BE", "CH"), "es": ("ES", "MX"),
    "it": ("IT",), "nl": ("NL", "BE"), "pt": ("BR", "PT"), "ja": ("JP",), "zh": ("CN",),
    "ko": ("KR",), "ru": ("RU",), "hi": ("IN",), "ar": ("SA", "AE", "EG"),
}

_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"), ("CJK", "zh"), ("ARABIC", "ar"),
    ("DEVANAGARI", "hi"), ("CYRILLIC", "ru"), ("GREEK", "el"), ("HEBREW", "he"), ("THAI", "th"),
)


def phone_regions(language: str | None) -> tuple[str, ...]:
    return PHONE_REGIONS.get(language or "", ())


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LATIN_LANGUAGES))
    return ident


def prepare() -> None:
    """Load the language model now (start-up), not on the first request."""
    _identifier()


def _script_language(sample: str) -> tuple[str | None, int]:
    """The language a non-Latin script gives away, and the count of letters seen."""
    counts: dict[str, int] = {}
    letters = 0
    for c in sample:
        if not c.isalpha():
            continue
        letters += 1
        if c.isascii():
            continue
        name = unicodedata.name(c, "")
        for key, lang in _SCRIPTS:
            if name.startswith(key) or (key == "CJK" and "IDEOGRAPH" in name):
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts:
        return None, letters
    # kana anywhere makes Han text Japanese
    if counts.get("ja"):
        counts["ja"] += counts.pop("zh", 0)
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return (lang if n * 5 >= letters else None), letters


def identify(text: str) -> str | None:
    """The language of ``text`` (ISO 639-1), or None when it cannot be told."""
    sample = text[:SAMPLE]
    lang, letters = _script_language(sample)
    if lang is not None:
        return lang
    if letters < MIN_LETTERS:
        return None
    with _lock:
        best, prob = _identifier().classify(sample)
    return str(best) if prob >= _MIN_PROB else None


def coverage(policy: Any) -> dict[str, dict[str, Any]]:
    """Per language: what detects personal data in it under ``policy`` (for ``/readyz`` and
    ``policy explain``). Languages not listed get patterns and key context only."""
    from trustproxy.pii.recognizers import NATIONAL_ID_BY_LANGUAGE

    models = {policy.language: policy.nlp_model} | dict(getattr(policy, "languages", {}) or {})
    action = next((r.action.value for r in policy.entities if r.type == UNCOVERED), None)
    if action is None and UNCOVERED in policy.retention.require_zero_data_retention_for:
        action = "zero_data_retention"
    out: dict[str, dict[str, Any]] = {}
    for lang in sorted(set(LATIN_LANGUAGES) | set(models) | {"ja", "zh", "ko", "ar", "hi", "ru"}):
        model = models.get(lang)
        if lang in LATIN_LANGUAGES:
            names = f"NER ({model})" if model else "census and given-name lists"
        elif lang in ("ja", "zh", "ar", "hi"):
            names = f"NER ({model})" if model else "name lists with structure (honorific, label, cue, field)"
        else:
            names = f"NER ({model})" if model else "none"
        out[lang] = {
            "ner_model": model,
            "names": names,
            "phone_regions": ["US", *phone_regions(lang)],
            "national_ids": list(NATIONAL_ID_BY_LANGUAGE.get(lang, ())),
            "patterns": True,
            "uncovered": model is None,
            "uncovered_action": (action or "screen") if model is None else None,
        }
    return out
