"""Toxicity scorers: a small Protocol, three backends, an explicit registry, a per-process cache.

- ``offline`` (the default): ``profanity_check`` plus curated patterns for what a profanity model
  misses (threats, self-harm incitement, identity attacks, dehumanising language); all six
  categories. See ``trustproxy.toxicity.offline`` and ``data/patterns-v1.yaml``.
- ``profanity_check``: alt-profanity-check (a linear SVM shipped in the wheel; offline, fast).
  It has ONE output, the probability that a text is profane. We report that same probability as
  ``toxicity``, ``obscene`` and ``insult`` (the Jigsaw labels profanity correlates with) and do
  not report ``severe_toxicity``, ``threat`` or ``identity_attack``: thresholds on those are not
  screened by this scorer (``describe()`` lists them as unscreened).
- ``detoxify``: the real ``detoxify.Detoxify`` loading code, on a local checkpoint or the torch hub
  cache (never downloaded at run time; ``trustproxy models pull`` fetches it at build time).
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from trustproxy._offline import allow_torch
from trustproxy.errors import GuardFailed
from trustproxy.policy.schema import ToxicityConfig

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (
    "toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack",
)

# The base Hugging Face model each detoxify checkpoint names as ``arch.args.model_type``: its
# config and tokenizer files (not weights) must be in the HF cache for offline loading.
DETOXIFY_BASE_MODELS: dict[str, str] = {
    "original": "bert-base-uncased",
    "unbiased": "roberta-base",
    "multilingual": "xlm-roberta-base",
    "original-small": "albert-base-v2",
    "unbiased-small": "albert-base-v2",
}


class ScorerUnavailable(GuardFailed):
    """A scorer cannot be loaded (missing checkpoint or files). Names paths, never text.

    ``reason`` is a short phrase (``checkpoint missing``) used in a fallback scorer's name."""

    def __init__(self, message: str, *, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason


@runtime_checkable
class Scorer(Protocol):
    """Scores texts on named categories (0-1). ``score_batch`` is sync and CPU heavy: call it off
    the event loop (``BatchingScorer`` does)."""

    name: str
    categories: tuple[str, ...]

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]: ...


class ProfanityCheckScorer:
    """alt-profanity-check; its one probability is reported as toxicity, obscene and insult."""

    categories: tuple[str, ...] = ("toxicity", "obscene", "insult")

    def __init__(self) -> None:
        from profanity_check import predict_prob  # loads the model once (~2 s)

        self._predict_prob = predict_prob
        self._fast = _linear_sigmoid_model()
        self.name = f"profanity_check:alt-profanity-check {importlib.metadata.version('alt-profanity-check')}"

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        probs = self._fast(list(texts)) if self._fast is not None else self._predict_prob(list(texts))
        return [{c: float(p) for c in self.categories} for p in probs]


def _linear_sigmoid_model() -> Callable[[list[str]], Any] | None:
    """The same probabilities as ``profanity_check.predict_prob``, without sklearn's per-call
    input validation (~5 ms of a ~6.5 ms call for a few sentences, on every batch).

    The shipped model is a ``CalibratedClassifierCV`` over ``LinearSVC`` folds with sigmoid
    calibration: the probability is the mean over folds of ``expit(-(a * (x.w + b0) + b))``. We
    stack the folds into one matrix product. Used only if the model has that shape and agrees
    with the library on probe texts at load; otherwise the library call is used."""
    try:
        import numpy as np
        from profanity_check import profanity_check as pc
        from scipy.special import expit

        model, vec = pc.model, pc.vectorizer
        folds = model.calibrated_classifiers_
        if getattr(model, "method", None) != "sigmoid" or len(model.classes_) != 2:
            return None
        w = np.vstack([f.estimator.coef_.ravel() for f in folds])          # (folds, features)
        b0 = np.array([float(np.ravel(f.estimator.intercept_)[0]) for f in folds])
        a = np.array([float(f.calibrators[0].a_) for f in folds])
        b = np.array([float(f.calibrators[0].b_) for f in folds])
        if any(len(f.calibrators) != 1 for f in folds):
            return None
        wt = w.T.copy()

        from sklearn import config_context

        def predict(texts: list[str]) -> Any:
            # sklearn re-validates the call's parameters (an ``inspect.signature`` bind, ~0.3 ms)
            # on each call; the texts are a list of str we made, so its checks can be skipped
            with config_context(skip_parameter_validation=True, assume_finite=True):
                df = vec.transform(texts) @ wt + b0                              # (n, folds)
            return expit(-(a * df + b)).mean(axis=1)

        probe = ["have a nice day", "you are a damn idiot", "the meeting is at noon.", "what the hell", ""]
        if not np.allclose(predict(probe), pc.predict_prob(probe), atol=1e-9):
            log.warning("profanity_check fast path disagrees with the library; using the library call")
            return None
        return predict
    except Exception:  # noqa: BLE001 - any other layout: the library call
        return None


def detoxify_checkpoint_file(variant: str) -> str:
    """The file name detoxify's download URL uses for ``variant`` (torch hub cache name)."""
    allow_torch()
    from detoxify.detoxify import MODEL_URLS

    if variant not in MODEL_URLS:
        raise ScorerUnavailable(f"unknown detoxify variant {variant!r}; known: {sorted(MODEL_URLS)}",
                                reason="unknown variant")
    return MODEL_URLS[variant].rsplit("/", 1)[-1]


def detoxify_hub_path(variant: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` caches the checkpoint of ``variant``."""
    allow_torch()
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / detoxify_checkpoint_file(variant)


def _base_model_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


class DetoxifyScorer:
    """A detoxify model loaded with ``detoxify.Detoxify`` from a local file, never downloaded.

    ``checkpoint``: a ``.ckpt`` path; default: the torch hub cache file of ``variant``.
    ``huggingface_config_path``: a folder with the base model's config and tokenizer (passed to
    detoxify); default: the Hugging Face cache (``trustproxy models pull`` fills it). Detoxify
    also reads the config of the checkpoint's ``model_type`` itself, so that must resolve
    offline too (a local folder, or a name in the HF cache)."""

    def __init__(self, variant: str = "original", checkpoint: str | None = None,
                 huggingface_config_path: str | None = None, device: str = "cpu") -> None:
        allow_torch()
        path = Path(checkpoint) if checkpoint else detoxify_hub_path(variant)
        pull = f"run `trustproxy models pull {variant}` where the network is reachable (e.g. in the container build)"
        if not path.is_file():
            raise ScorerUnavailable(f"detoxify:{variant} checkpoint not found at {path}; {pull}, "
                                    "or set output.toxicity.checkpoint", reason="checkpoint missing")
        if huggingface_config_path and not Path(huggingface_config_path).is_dir():
            raise ScorerUnavailable(f"detoxify:{variant} huggingface_config_path {huggingface_config_path} "
                                    "is not a folder", reason="config missing")
        base = DETOXIFY_BASE_MODELS.get(variant)
        if checkpoint is None and base and not _base_model_cached(base):
            raise ScorerUnavailable(f"detoxify:{variant} needs the config and tokenizer of {base} in the "
                                    f"Hugging Face cache; {pull}", reason="base model files missing")
        try:
            import transformers
            from detoxify import Detoxify

            transformers.logging.disable_progress_bar()
            self._model = Detoxify(model_type=variant, checkpoint=str(path), device=device,
                                   huggingface_config_path=huggingface_config_path)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise ScorerUnavailable(f"detoxify:{variant} could not load from {path} ({type(e).__name__}); "
                                    f"{pull}", reason="load failed") from e
        provided = set(self._model.class_names)
        self.categories: tuple[str, ...] = tuple(c for c in CATEGORIES if c in provided)
        self.name = f"detoxify:{variant}@{path}"
        self._lock = threading.Lock()  # one forward pass at a time per model

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        with self._lock:
            raw = self._model.predict(list(texts))
        out: list[dict[str, float]] = [{} for _ in texts]
        for c in self.categories:
            vals = raw[c]
            vals = vals if isinstance(vals, list) else [vals]  # one text: detoxify squeezes to a float
            for i, v in enumerate(vals):
                out[i][c] = float(v)
        return out


class _Fallback:
    """A fallback scorer whose name says what it stands in for and why."""

    def __init__(self, inner: Scorer, name: str) -> None:
        self.inner = inner
        self.name = name
        self.categories = inner.categories

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return self.inner.score_batch(texts)


def _requested_name(cfg: ToxicityConfig) -> str:
    return f"detoxify:{cfg.detoxify_variant}" if cfg.scorer == "detoxify" else cfg.scorer


def _detoxify(cfg: ToxicityConfig) -> Scorer:
    return DetoxifyScorer(cfg.detoxify_variant, cfg.checkpoint,
                          getattr(cfg, "huggingface_config_path", None))


def _offline(cfg: ToxicityConfig) -> Scorer:
    from trustproxy.toxicity.offline import OfflineScorer
    from trustproxy.toxicity.patterns import load_patterns

    try:
        patterns = load_patterns()
    except (OSError, ValueError) as e:  # a broken pattern file: the policy does not start
        raise ScorerUnavailable(f"offline scorer: the pattern file cannot be loaded ({e})",
                                reason="patterns unavailable") from e
    return OfflineScorer(_build("profanity_check", cfg), patterns)


SCORERS: dict[str, Callable[[ToxicityConfig], Scorer]] = {
    "offline": _offline,
    "profanity_check": lambda cfg: ProfanityCheckScorer(),
    "detoxify": _detoxify,
}


def _cache_key(name: str, cfg: ToxicityConfig) -> tuple[object, ...]:
    if name == "detoxify":
        return (name, cfg.detoxify_variant, cfg.checkpoint, getattr(cfg, "huggingface_config_path", None))
    return (name,)


_cache: dict[tuple[object, ...], Scorer] = {}
_cache_lock = threading.RLock()  # re-entrant: the offline scorer builds profanity_check inside


def _build(name: str, cfg: ToxicityConfig) -> Scorer:
    key = _cache_key(name, cfg)
    with _cache_lock:  # models load once per process, even if two policies ask at once
        if key not in _cache:
            _cache[key] = SCORERS[name](cfg)
        return _cache[key]


def load_scorer(cfg: ToxicityConfig) -> Scorer:
    """The scorer ``cfg`` asks for (cached per process). If it cannot load: the fallback, with a
    name that says so, when ``cfg.fallback`` is set; else ``ScorerUnavailable`` (no silent
    downgrade). Failures are not cached: a later call retries (e.g. after ``models pull``)."""
    try:
        return _build(cfg.scorer, cfg)
    except ScorerUnavailable as e:
        if cfg.fallback is None:
            raise
        log.warning("toxicity scorer %s unavailable (%s); using fallback %s",
                    _requested_name(cfg), e.reason, cfg.fallback)
        inner = _build(cfg.fallback, cfg)
        return _Fallback(inner, f"{cfg.fallback} (fallback for {_requested_name(cfg)}: {e.reason})")


def clear_cache() -> None:
    """Forget loaded scorers (tests)."""
    with _cache_lock:
        _cache.clear()
