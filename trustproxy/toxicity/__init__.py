"""Toxicity screening: scorers (``load_scorer``), micro-batching (``BatchingScorer``) and the
stream window (``ToxicityFilter``, a ``StreamFilter``), plus ``screen_prompt`` for requests."""

from trustproxy.toxicity.batching import BatchingScorer
from trustproxy.toxicity.scorers import (
    CATEGORIES, SCORERS, DetoxifyScorer, ProfanityCheckScorer, Scorer, ScorerUnavailable, load_scorer,
)
from trustproxy.toxicity.window import DEFAULT_CATEGORIES, SentenceSplitter, ToxicityFilter, screen_prompt

__all__ = [
    "CATEGORIES", "DEFAULT_CATEGORIES", "SCORERS", "BatchingScorer", "DetoxifyScorer",
    "ProfanityCheckScorer", "Scorer", "ScorerUnavailable", "SentenceSplitter", "ToxicityFilter",
    "load_scorer", "screen_prompt",
]
