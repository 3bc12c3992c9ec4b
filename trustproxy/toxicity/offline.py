"""The ``offline`` scorer (the shipped default): alt-profanity-check plus the curated pattern set.

The profanity model sees swear words; it misses threats, incitement to self-harm, attacks on
people for who they are, dehumanising language and insults without profanity, which is what the
patterns (``data/patterns-v1.yaml``) add. Scores use detoxify's category names:

- ``obscene``: the profanity probability, computed on the text with benign technical uses of trap
  words ("kill -9") and negated insult words ("not calling you an idiot") hidden (see the
  ``benign`` and ``defuse_under_negation`` sections of the pattern file).
- ``toxicity``, ``insult``: the higher of the profanity probability and the patterns' score.
- ``threat``, ``severe_toxicity``, ``identity_attack``: the patterns' score (0 when none fires).

So a policy's thresholds read the same with ``detoxify``. Both parts run on the CPU in the caller's
thread (``BatchingScorer`` runs it off the event loop); nothing is downloaded.
"""

from __future__ import annotations

from trustproxy.toxicity.patterns import PatternSet
from trustproxy.toxicity.scorers import CATEGORIES, Scorer

PROFANITY_CATEGORIES = ("toxicity", "obscene", "insult")


class OfflineScorer:
    """Profanity model + curated patterns; all six detoxify categories."""

    categories: tuple[str, ...] = CATEGORIES

    def __init__(self, profanity: Scorer, patterns: PatternSet) -> None:
        self._profanity = profanity
        self.patterns = patterns
        base = profanity.name.split(":", 1)[-1]
        self.name = f"offline:{base}+{patterns.version}"

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        model, scores = self.patterns.model_and_scores(texts)
        base = self._profanity.score_batch(model)
        out: list[dict[str, float]] = []
        for pat, b in zip(scores, base):
            out.append({c: max(pat.get(c, 0.0), b.get(c, 0.0) if c in PROFANITY_CATEGORIES else 0.0)
                        for c in CATEGORIES})
        return out
