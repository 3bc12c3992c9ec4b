"""Toxicity screening: scorers (``load_scorer``; ``offline``, the default, is the profanity model
plus the curated pattern set in ``data/``), micro-batching (``BatchingScorer``) and the stream window
(``ToxicityFilter``, a ``StreamFilter``), plus ``screen_prompt`` for requests."""

from trustproxy.toxicity.batching import BatchingScorer
from trustproxy.toxicity.scorers import (
    CATEGORIES, SCORERS, DetoxifyScorer, ProfanityCheckScorer, Scorer, ScorerUnavailable, load_scorer,
)
from trustproxy.toxicity.offline import OfflineScorer
from trustproxy.toxicity.patterns import PatternSet, load_patterns
from trustproxy.toxicity.window import DEFAULT_CATEGORIES, SentenceSplitter, ToxicityFilter, screen_prompt

__all__ = [
    "CATEGORIES", "DEFAULT_CATEGORIES", "SCORERS", "BatchingScorer", "DetoxifyScorer",
    "OfflineScorer", "PatternSet", "ProfanityCheckScorer", "Scorer", "ScorerUnavailable", "SentenceSplitter", "ToxicityFilter",
    "load_patterns", "load_scorer", "screen_prompt",
]
