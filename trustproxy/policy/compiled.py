"""Compile, then prepare, then swap: nothing a policy needs is left to its first request.

    LoadedPolicy (loader: YAML, schema, extends, names)
      -> compile_policy(loaded, hash_key)   the entity plan, checks that need the deployment
                                            (a hash key for `hash`); fast, loads nothing
      -> prepare(compiled, models)          the detector and the scorer loaded through
                                            ``models`` and smoke-tested:
                                            - the detector reports every type the policy asks for;
                                            - if the policy needs NER types (PERSON, LOCATION,
                                              ORGANIZATION, NRP), the spaCy pipeline finds a
                                              known name in a test sentence;
                                            - the policy's whole plan (custom recognizers, allow
                                              list) runs once on a test text;
                                            - the toxicity scorer scores a known text (0..1 per
                                              category).
      -> PolicyStore swaps the prepared set in with one assignment

Every failure is a ``PolicyFileError`` located at the file, line and field that asked for the
thing (``default.yaml:21:12 nlp_model: ...``), so a policy that cannot be prepared is treated
exactly like an invalid file: it never serves, the previous set stays in force. Everything here
is synchronous and heavy: call it off the event loop (the store does, in its reload thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trustproxy.policy.errors import PolicyFileError, Problem
from trustproxy.policy.loader import LoadedPolicy
from trustproxy.policy.schema import EntityAction, ToxicityConfig

__all__ = ["CompiledPolicy", "Models", "compile_policy", "prepare", "NER_TYPES"]

# Types only the spaCy NER component reports (DATE_TIME also has a pattern recognizer).
NER_TYPES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP"})
SMOKE_NAME_TEXT = "Please ask John Smith about the report."
SMOKE_NAME = "John Smith"
SMOKE_TEXT = "Contact John Smith at john.smith@example.com or 415-555-0123 about ticket 42."
SMOKE_TOXICITY_TEXT = "Thank you for the helpful answer."


class Models(Protocol):
    """Where prepared models come from (the server's runtime; tests may pass their own)."""

    def detector(self, nlp_model: str, language: str) -> Any:
        """The detector for (model, language), loading it if needed (sync, heavy)."""

    def scorer(self, cfg: ToxicityConfig) -> Any:
        """The toxicity scorer ``cfg`` asks for, loading it if needed (sync, heavy)."""


@dataclass(frozen=True)
class CompiledPolicy(LoadedPolicy):
    """A loaded policy with its plan and (once prepared) the models it runs on. It is a
    ``LoadedPolicy``, so code that selects policies keeps working unchanged."""

    entities: tuple[str, ...] = ()                # request-side types detected
    actions: Mapping[str, EntityAction] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    output_entities: tuple[str, ...] = ()         # reply-side types screened (empty: off)
    detector: Any = field(default=None, compare=False, repr=False)
    scorer: Any = field(default=None, compare=False, repr=False)
    prepared: bool = False

    @property
    def languages(self) -> list[str]:
        extra = getattr(self.policy, "languages", None) or {}  # language code -> its NER model
        return [self.policy.language, *(lang for lang in extra if lang != self.policy.language)]

    @property
    def scorer_name(self) -> str:
        tox = self.policy.output.toxicity
        if not (tox.enabled or tox.screen_prompts):
            return "off"
        return str(getattr(self.scorer, "name", None) or tox.scorer)

    def summary(self) -> str:
        """One start-up / reload log line: no values, only names and counts."""
        return (f"policy {self.name} version {self.version}: {len(self.entities)} entity types "
                f"({len(self.output_entities)} screened in replies), scorer {self.scorer_name}, "
                f"languages {','.join(self.languages)}, nlp model {self.policy.nlp_model}"
                + (f", extends {' -> '.join(self.chain[1:])}" if self.chain[1:] else ""))


def compile_policy(loaded: LoadedPolicy, *, hash_key: bytes | None = None) -> CompiledPolicy:
    """The plan of ``loaded`` and the checks that need the deployment (``hash_key``: the
    server's key, ``b""`` if none; ``None``: no deployment, not checked); loads no model."""
    from trustproxy.pii.masker import entity_plan  # the masker's own plan, not a second one

    policy = loaded.policy
    entities, thresholds, actions = entity_plan(policy)
    out = policy.output.pii
    output_entities = tuple(out.entities) if out.enabled and out.action != "allow" else ()
    problems: list[Problem] = []
    if hash_key is not None and not hash_key and any(a == EntityAction.hash for a in actions.values()):
        problems.append(loaded.problem(("entities",), "uses the hash action but no hash key is configured "
                                       "(set TRUSTPROXY_HASH_KEY)"))
    if problems:
        raise PolicyFileError(problems)
    base = {f: getattr(loaded, f) for f in ("policy", "version", "path", "chain", "sources")}
    return CompiledPolicy(**base, entities=tuple(entities), actions=dict(actions),
                          thresholds=dict(thresholds), output_entities=output_entities)


def _pipeline(detector: Any, language: str) -> list[str] | None:
    """The spaCy components of a detector (None: cannot tell)."""
    try:
        return list(detector._engine.nlp[language].pipe_names)  # noqa: SLF001
    except Exception:  # noqa: BLE001
        return None


def _prepare_detector(c: CompiledPolicy, models: Models) -> tuple[Any, list[Problem]]:
    policy = c.policy
    try:
        detector = models.detector(policy.nlp_model, policy.language)
    except OSError as exc:  # spaCy: E050 can't find model / E053 config missing ...
        return None, [c.problem(("nlp_model",),
                                f"the spaCy model {policy.nlp_model!r} cannot be loaded "
                                f"({type(exc).__name__}: not installed, or not a spaCy pipeline)",
                                f"the spaCy model cannot be loaded ({type(exc).__name__}: not installed, "
                                "or not a spaCy pipeline)")]
    except Exception as exc:  # noqa: BLE001 - any failure keeps the policy out of service
        return None, [c.problem(("nlp_model",), f"the detector cannot be built ({type(exc).__name__})")]
    custom = {r.type for r in policy.custom_recognizers}
    supported = set(detector.supported_entities()) | custom
    problems = []
    for loc, names in ((("entities",), c.entities), (("output", "pii", "entities"), c.output_entities)):
        missing = sorted(set(names) - supported)
        if missing:
            problems.append(c.problem(loc, f"the detector for language {policy.language!r} cannot report "
                                      f"{', '.join(missing)}", f"the detector for this language cannot report "
                                      f"{', '.join(missing)}"))
    if problems:
        return None, problems
    needed = set(c.entities) | set(c.output_entities)
    ner = sorted((needed & NER_TYPES) - custom)
    if ner:
        pipes = _pipeline(detector, policy.language)
        if pipes is not None and "ner" not in pipes:
            # checked directly: name lists alone would pass the smoke sentence below
            return None, [c.problem(("nlp_model",), f"the spaCy model cannot serve {', '.join(ner)}: it has no "
                                    "NER component (components: " + (", ".join(pipes) or "none") + "); "
                                    "the policy would let names through")]
        try:
            spans = detector.detect(SMOKE_NAME_TEXT, entities=["PERSON"], thresholds={"PERSON": 0.0},
                                    default_threshold=0.0, namespace="smoke")
            found = any(SMOKE_NAME_TEXT[s.start:s.end] == SMOKE_NAME for s in spans)
        except Exception as exc:  # noqa: BLE001
            return None, [c.problem(("nlp_model",), f"the spaCy pipeline fails on a test sentence "
                                    f"({type(exc).__name__})")]
        if not found:
            why = "its NER component does not find names"
            return None, [c.problem(("nlp_model",), f"the spaCy model cannot serve {', '.join(ner)}: {why}; "
                                    "the policy would let names through")]
    try:  # the whole plan once: custom recognizers compile, allow list, thresholds
        detector.detect(SMOKE_TEXT, entities=list(needed), thresholds=c.thresholds,
                        default_threshold=policy.threshold, custom=policy.custom_recognizers,
                        allow_list=policy.allow_list, namespace="smoke")
    except Exception as exc:  # noqa: BLE001
        return None, [c.problem(("custom_recognizers",) if policy.custom_recognizers else ("entities",),
                                f"detection fails on a test text ({type(exc).__name__})")]
    return detector, []


def _prepare_scorer(c: CompiledPolicy, models: Models) -> tuple[Any, list[Problem]]:
    tox = c.policy.output.toxicity
    if not (tox.enabled or tox.screen_prompts):
        return None, []
    loc = ("output", "toxicity", "scorer")
    try:
        scorer = models.scorer(tox)
    except Exception as exc:  # noqa: BLE001 - ScorerUnavailable (its message may name a path) or worse
        reason = getattr(exc, "reason", type(exc).__name__)
        full = getattr(exc, "message", None) or type(exc).__name__
        return None, [c.problem(loc, f"the toxicity scorer cannot be loaded: {full}",
                                f"the toxicity scorer cannot be loaded ({reason}; see `trustproxy models pull` "
                                "and docs/toxicity.md)")]
    try:
        scores = scorer.score_batch([SMOKE_TOXICITY_TEXT])
        ok = (len(scores) == 1 and bool(scores[0])
              and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores[0].values()))
    except Exception as exc:  # noqa: BLE001
        return None, [c.problem(loc, f"the toxicity scorer fails on a test text ({type(exc).__name__})")]
    if not ok:
        return None, [c.problem(loc, "the toxicity scorer returned no scores between 0 and 1 for a test text")]
    return scorer, []


def _prepare_languages(c: CompiledPolicy) -> list[Problem]:
    """Every ``languages:`` model, the language identifier and the name lists, loaded now
    (never by a request)."""
    from trustproxy.pii.detector import prepare as prepare_detection

    try:
        prepare_detection(c.policy)
    except Exception as exc:  # noqa: BLE001 - a model named by `languages` cannot be loaded
        return [c.problem(("languages",), f"a language's model or the language identifier cannot be loaded "
                          f"({type(exc).__name__})")]
    return []


def prepare(compiled: CompiledPolicy, models: Models) -> CompiledPolicy:
    """``compiled`` with its detector and scorer loaded and smoke-tested; ``PolicyFileError``
    (file:line:col of the field that asked) if anything is missing or does not work."""
    detector, problems = _prepare_detector(compiled, models)
    if not problems:
        problems += _prepare_languages(compiled)
    scorer, more = _prepare_scorer(compiled, models)
    problems += more
    if problems:
        raise PolicyFileError(problems)
    base = {f: getattr(compiled, f) for f in ("policy", "version", "path", "chain", "sources", "entities",
                                               "actions", "thresholds", "output_entities")}
    return CompiledPolicy(**base, detector=detector, scorer=scorer, prepared=True)
