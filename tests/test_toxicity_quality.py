"""The shipped default on the whole hand-written evaluation set (bench/toxicity_eval), through the
real window: the issue's targets (recall >= 0.90 on toxic replies, false positives <= 0.05 on
clean ones) hold on each half and for each toxic category. A regression bar for pattern edits;
``bench/bench_toxicity_quality.py`` prints the full per-category table, streamed too."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

import trustproxy  # noqa: F401
from trustproxy.errors import PolicyBlocked
from trustproxy.policy.schema import ToxicityConfig
from trustproxy.toxicity import BatchingScorer, ToxicityFilter, load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from toxicity_eval.loader import load  # noqa: E402

ITEMS = load()


def test_eval_set_is_large_split_and_multilingual() -> None:
    assert len(ITEMS) >= 400
    toxic = [i for i in ITEMS if i.label == "toxic"]
    clean = [i for i in ITEMS if i.label == "clean"]
    assert len(toxic) >= 200 and len(clean) >= 200
    assert {i.split for i in ITEMS} == {"tune", "heldout"}
    assert {i.locale for i in ITEMS} == {"en", "de", "fr", "es"}
    assert {"threat", "self_harm", "identity_attack", "dehumanising", "insult", "obscene"} <= {i.category for i in toxic}
    assert len({i.text for i in ITEMS}) == len(ITEMS)  # no duplicates


@pytest.mark.parametrize("split", ["tune", "heldout"])
async def test_default_meets_the_targets(split: str) -> None:
    cfg = ToxicityConfig()
    b = BatchingScorer(load_scorer(cfg), max_wait_ms=0)
    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    try:
        for it in (i for i in ITEMS if i.split == split):
            f = ToxicityFilter(b, cfg)
            try:
                caught = (await f.feed(it.text)) + (await f.finish()) != it.text
            except PolicyBlocked:
                caught = True
            for key in ((it.label, it.category), (it.label, "*")):
                hits[key][0] += caught
                hits[key][1] += 1
    finally:
        b.close()
    rate = {k: h / n for k, (h, n) in hits.items()}
    assert rate[("toxic", "*")] >= 0.90, rate
    assert rate[("clean", "*")] <= 0.05, rate
    for (label, cat), r in rate.items():
        if label == "toxic":
            assert r >= 0.85, (cat, r)
