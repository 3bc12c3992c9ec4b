"""The toxicity stream window with the offline scorer (alt-profanity-check) on real sentences:
every chunk boundary, hold and fast modes, block/redact/flag, fail closed, micro-batching."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trustproxy  # noqa: F401
from trustproxy.errors import GuardFailed, PolicyBlocked
from trustproxy.policy.schema import Threshold, ToxicityConfig
from trustproxy.toxicity import (
    DEFAULT_CATEGORIES, BatchingScorer, Scorer, SentenceSplitter, ToxicityFilter, load_scorer, screen_prompt,
)

TOXIC = [
    "You are a fucking idiot.", "Shut up, you stupid bitch.", "This is total bullshit, you moron.",
    "Go fuck yourself.", "What a worthless piece of shit you are.", "You dumb ass, nobody cares.",
    "Fuck off and die.", "He is such a pathetic asshole.", "You're a complete dickhead.",
    "That was a shitty fucking answer.", "Screw you, you crap-for-brains loser.", "You suck, bastard.",
]
CLEAN = [
    "Thank you for your question.", "The meeting is scheduled for Tuesday at 10 am.",
    "Python lists are ordered and mutable.", "Here is a summary of the quarterly report.",
    "Please restart the service after changing the configuration.", "The weather in Lisbon is mild in spring.",
    "I recommend drinking plenty of water.", "Photosynthesis converts light into chemical energy.",
    "Let me know if you need anything else.", "The invoice total is 42.50 euros, e.g. for two licences.",
    "Mix the flour and sugar before adding eggs.", "Kill the process with the kill command if it hangs.",
]
BEFORE, BAD, AFTER = "Hello there. ", "You are a fucking idiot.", " Have a nice day."
REPLY = BEFORE + BAD + AFTER
BAD_WORDS = ("fucking", "idiot")


def cfg(mode: str = "hold", action: str = "block", **kw: object) -> ToxicityConfig:
    return ToxicityConfig(mode=mode, categories={"toxicity": Threshold(threshold=0.8, action=action)}, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return load_scorer(ToxicityConfig(scorer="profanity_check"))


@pytest.fixture
def batcher(scorer: Scorer) -> Iterator[BatchingScorer]:
    b = BatchingScorer(scorer, max_wait_ms=0)
    yield b
    b.close()


async def run(f: ToxicityFilter, chunks: list[str]) -> tuple[str, BaseException | None]:
    """Feed chunks as a server would; returns what was released and the error that cut it."""
    out = ""
    try:
        for c in chunks:
            out += await f.feed(c)
        out += await f.finish()
    except (PolicyBlocked, GuardFailed) as e:
        return out, e
    return out, None


def splits(text: str) -> Iterator[list[str]]:
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]


def test_offline_scorer_on_real_sentences(scorer: Scorer) -> None:
    assert scorer.name.startswith("profanity_check:alt-profanity-check ")
    for r in scorer.score_batch(TOXIC):
        assert r["toxicity"] >= DEFAULT_CATEGORIES["toxicity"].threshold
    for r in scorer.score_batch(CLEAN):
        assert all(v < DEFAULT_CATEGORIES[c].threshold for c, v in r.items())


# -- splitting ------------------------------------------------------------------------------

def test_sentence_ends() -> None:
    sp = SentenceSplitter(400)
    text = "Pi is 3.14 and e.g. this stays. Dr. Who said hi! Really?\n1. First item\nDone"
    parts = sp.push(text) + [sp.flush()]
    assert parts == ["Pi is 3.14 and e.g. this stays.", " Dr. Who said hi!", " Really?",
                     "\n1. First item\n", "Done"]
    assert "".join(parts) == text


def test_max_hold_chars_forces_a_window() -> None:
    sp = SentenceSplitter(20)
    parts = sp.push("word " * 10)
    assert parts and all(len(p) <= 20 for p in parts)
    assert "".join(parts) + sp.flush() == "word " * 10


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n3e.g\"'")), max_size=80), st.data())
def test_split_is_chunk_independent(text: str, data: st.DataObject) -> None:
    whole = SentenceSplitter(16)
    expected = whole.push(text) + [whole.flush()]
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
    sp, got, prev = SentenceSplitter(16), [], 0
    for c in [*cuts, len(text)]:
        got += sp.push(text[prev:c])
        prev = c
    assert got + [sp.flush()] == expected
    assert "".join(expected) == text


# -- block at every offset ------------------------------------------------------------------

async def test_hold_blocks_at_every_offset(batcher: BatchingScorer) -> None:
    for chunks in [*splits(REPLY), list(REPLY)]:
        f = ToxicityFilter(batcher, cfg("hold"))
        out, err = await run(f, chunks)
        assert isinstance(err, PolicyBlocked)
        assert err.code == "content_filter" and "categories: toxicity" in err.message
        assert not any(w in out for w in BAD_WORDS) and BEFORE.startswith(out)
        assert [d.action for d in f.decisions] == ["block"]


async def test_fast_cuts_the_stream_at_every_offset(batcher: BatchingScorer) -> None:
    for chunks in [*splits(REPLY), list(REPLY)]:
        f = ToxicityFilter(batcher, cfg("fast"))
        out, err = await run(f, chunks)
        assert isinstance(err, PolicyBlocked), chunks
        assert REPLY.startswith(out)  # released at once, cut when the window's score arrives
        with pytest.raises(PolicyBlocked):  # stays cut
            await f.feed("more")


async def test_unterminated_toxic_tail_is_blocked_at_finish(batcher: BatchingScorer) -> None:
    f = ToxicityFilter(batcher, cfg("hold"))
    out = await f.feed("Fine. Go fuck")
    out += await f.feed(" yourself")
    for _ in range(500):  # let the first sentence's score land (the machine may be loaded)
        if out:
            break
        await asyncio.sleep(0.01)
        out += await f.feed("")
    assert out == "Fine."
    with pytest.raises(PolicyBlocked):
        await f.finish()


async def test_hold_feed_never_waits_for_a_score() -> None:
    gate = threading.Event()

    class Gated:
        name, categories = "gated", ("toxicity",)

        def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
            gate.wait(10)  # scoring is stuck until the test opens the gate
            return [{"toxicity": 0.0} for _ in texts]

    b = BatchingScorer(Gated(), max_wait_ms=0)
    try:
        f = ToxicityFilter(b, cfg("hold"))
        assert await f.feed("One. Two. ") == ""  # held, but feed did not wait
        assert await f.feed("Three") == ""
        gate.set()
        assert await f.finish() == "One. Two. Three"
    finally:
        gate.set()
        b.close()


# -- redact and flag, streamed and not ------------------------------------------------------

async def test_redact_in_hold_mode(batcher: BatchingScorer) -> None:
    want = BEFORE + "[removed by content policy]" + AFTER
    for chunks in [[REPLY], *splits(REPLY)]:
        f = ToxicityFilter(batcher, cfg("hold", "redact"))
        out, err = await run(f, chunks)
        assert err is None and out == want
        assert [(d.category, d.action) for d in f.decisions] == [("toxicity", "redact")]
        assert f.max_scores["toxicity"] >= 0.8


async def test_redact_keeps_later_sentences_with_context_window(batcher: BatchingScorer) -> None:
    text = BEFORE + BAD + " Thanks for asking. See you soon."
    f = ToxicityFilter(batcher, cfg("hold", "redact", window_sentences=2))
    out, err = await run(f, [text])
    assert err is None
    assert out == BEFORE + "[removed by content policy] Thanks for asking. See you soon."
    g = ToxicityFilter(batcher, cfg("hold", "redact", window_sentences=2))
    assert await run(g, list(text)) == (out, None)  # same result when streamed char by char


async def test_redact_degrades_to_block_in_fast_mode(batcher: BatchingScorer) -> None:
    f = ToxicityFilter(batcher, cfg("fast", "redact"))
    out, err = await run(f, [REPLY])
    assert isinstance(err, PolicyBlocked)
    assert [(d.action, d.reason) for d in f.decisions] == [("block", "redact_in_fast_mode")]


@pytest.mark.parametrize("mode", ["hold", "fast"])
async def test_flag_passes_and_records(batcher: BatchingScorer, mode: str) -> None:
    for chunks in [[REPLY], *splits(REPLY)]:
        f = ToxicityFilter(batcher, cfg(mode, "flag"))
        assert await run(f, chunks) == (REPLY, None)
        assert [(d.guard, d.category, d.action) for d in f.decisions] == [("toxicity", "toxicity", "flag")]
        assert all(d.reason is None for d in f.decisions)


async def test_default_categories_apply_when_none_configured(batcher: BatchingScorer) -> None:
    f = ToxicityFilter(batcher, ToxicityConfig())
    _, err = await run(f, [REPLY])
    assert isinstance(err, PolicyBlocked)
    assert {d.category for d in f.decisions} == {"toxicity", "insult", "obscene"}


# -- clean replies untouched ----------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(CLEAN), min_size=1, max_size=5),
       st.lists(st.sampled_from([" ", "\n", "\n\n", "  ", " \u00e9t\u00e9 \u2603 "]), min_size=5, max_size=5),
       st.sampled_from(["hold", "fast"]), st.data())
def test_clean_replies_pass_byte_identical(scorer: Scorer, sents: list[str], seps: list[str], mode: str,
                                           data: st.DataObject) -> None:
    text = "".join(s + sep for s, sep in zip(sents, seps)).rstrip(" ") + data.draw(st.sampled_from(["", "\n", " ok"]))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=8)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]

    async def go() -> tuple[str, BaseException | None]:
        b = BatchingScorer(scorer, max_wait_ms=0)
        try:
            return await run(ToxicityFilter(b, cfg(mode, window_sentences=2)), chunks)
        finally:
            b.close()

    assert asyncio.run(go()) == (text, None)


# -- fail closed ----------------------------------------------------------------------------

class Broken:
    name = "broken"
    categories = ("toxicity",)

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        raise RuntimeError("model exploded")


@pytest.mark.parametrize("mode", ["hold", "fast"])
async def test_scorer_error_is_guard_failed(mode: str) -> None:
    b = BatchingScorer(Broken())
    try:
        f = ToxicityFilter(b, cfg(mode))
        out, err = await run(f, ["Hello there. ", "Fine."])
        assert isinstance(err, GuardFailed) and err.message == "toxicity scorer failed"
        assert out == ("" if mode == "hold" else "Hello there. Fine.")
        with pytest.raises(GuardFailed):
            await f.feed("x")
    finally:
        b.close()


async def test_batch_error_reaches_every_waiter() -> None:
    b = BatchingScorer(Broken(), max_wait_ms=50)
    try:
        res = await asyncio.gather(*(b.score(f"text {i}") for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in res)
        assert b.calls == 1
    finally:
        b.close()


# -- micro-batching -------------------------------------------------------------------------

async def pace(text: str) -> AsyncIterator[str]:
    for w in re.findall(r"\S+\s*", text):
        yield w
        await asyncio.sleep(0)


async def test_concurrent_streams_share_score_batch_calls(scorer: Scorer) -> None:
    b = BatchingScorer(scorer, max_batch=16, max_wait_ms=5)
    reply = " ".join(CLEAN[:6])

    async def stream() -> str:
        f = ToxicityFilter(b, cfg("hold"))
        out = "".join([await f.feed(c) async for c in pace(reply)])
        return out + await f.finish()

    try:
        outs = await asyncio.gather(*(stream() for _ in range(8)))
        assert outs == [reply] * 8
        assert b.texts == 8 * 6
        assert b.calls < b.texts
    finally:
        b.close()


# -- prompts --------------------------------------------------------------------------------

async def test_screen_prompt(batcher: BatchingScorer) -> None:
    c = cfg("hold")
    assert await screen_prompt(batcher, c, CLEAN[:3]) == []
    with pytest.raises(PolicyBlocked) as ei:
        await screen_prompt(batcher, c, ["Hi. " * 3 + "Go fuck yourself. Thanks."])
    assert ei.value.code == "content_filter" and "request" in ei.value.message
    flagged = await screen_prompt(batcher, cfg("hold", "flag"), [TOXIC[0], TOXIC[1]])
    assert [(d.category, d.action) for d in flagged] == [("toxicity", "flag")]
