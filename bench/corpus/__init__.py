"""A labelled evaluation corpus for PII and secret detection in chat traffic (issue 11).

``generate(seed, n)`` builds the requests; ``score`` judges what a provider received and what the
client got back. ``bench/bench_detect_quality.py`` runs it through the proxy.
"""

from bench.corpus.generate import PLACEMENTS, generate
from bench.corpus.model import Case, Planted, fold, folded_request, message_strings

__all__ = ["PLACEMENTS", "Case", "Planted", "fold", "folded_request", "generate", "message_strings"]
