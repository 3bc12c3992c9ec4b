"""Which entity types exist: the names a policy may use, read from the real recognizer registry.

A name is valid when some recognizer the detector runs can report it:

- Presidio's predefined recognizers for the policy's language (what ``RecognizerRegistry``
  loads), less the ones trustproxy replaces, with the spaCy recognizer's NER types;
- trustproxy's own recognizers (``trustproxy.pii.recognizers.build_recognizers``);
- the policy's ``custom_recognizers`` (added by the caller of :func:`known_entity_names`).

Nothing here is a hand-written list: a recognizer added to either registry shows up on its
own (in ``policy check``, the did-you-mean suggestions and the exported JSON Schema). Building
the registry needs no spaCy model; the server checks the same names again against the loaded
detector before a policy serves (``trustproxy.policy.compiled``).
"""

from __future__ import annotations

import functools
import logging

__all__ = ["known_entity_names", "quiet_presidio_language_warnings"]

_NOT_CONFIGURED = "Recognizer not added to registry because language is not supported"


class _DropOtherLanguages(logging.Filter):
    """Presidio warns, for every registry it builds, about each predefined recognizer of a
    language the registry was not asked for (Spanish, Italian, Polish ...): nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOT_CONFIGURED)


_FILTER = _DropOtherLanguages()


def quiet_presidio_language_warnings() -> None:
    """Drop Presidio's "language is not supported by registry" warnings (idempotent). Other
    Presidio warnings still pass."""
    logger = logging.getLogger("presidio-analyzer")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


@functools.lru_cache(maxsize=16)
def known_entity_names(language: str = "en") -> frozenset[str]:
    """Every entity type the detector can report for ``language`` (custom recognizers aside)."""
    from trustproxy import _offline

    _offline.patch_tldextract()
    quiet_presidio_language_warnings()
    from presidio_analyzer import RecognizerRegistry

    from trustproxy.pii.recognizers import REPLACED_PRESIDIO, build_recognizers

    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language])
    names: set[str] = set()
    for rec in registry.recognizers:
        if str(getattr(rec, "name", "")) not in REPLACED_PRESIDIO:
            names.update(rec.supported_entities)
    for rec in build_recognizers(language):
        names.update(rec.supported_entities)
    from trustproxy.pii.languages import UNCOVERED

    names.add(UNCOVERED)  # reported by the detector itself: text in a language no model covers
    return frozenset(names)
