"""Toxicity screening cost, against no screening, measured in the same run.

    .venv/bin/python bench/bench_toxicity.py [--reps 3] [--streams 8] [--out docs/benchmarks-toxicity.md]

A ~500-token reply is streamed by a fake async generator sleeping 2 ms per token (about the pace of
a fast hosted model). We time the first released text (TTFT) and the whole reply, with no filter,
and with ``ToxicityFilter`` in hold and fast mode, for the offline scorer (alt-profanity-check) and a
tiny detoxify checkpoint built on the spot (the real detoxify code path; its weights are tiny, so it
shows the pipeline's overhead, not BERT's). The real detoxify-original cost per sentence is measured
only if its checkpoint is in the torch hub cache. Then scorer throughput with and without
micro-batching. Numbers are medians; what matters are the differences and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import trustproxy  # noqa: E402,F401  (offline env first)
from trustproxy.policy.schema import Threshold, ToxicityConfig  # noqa: E402
from trustproxy.toxicity import DEFAULT_CATEGORIES, BatchingScorer, DetoxifyScorer, Scorer, ScorerUnavailable, ToxicityFilter, load_scorer  # noqa: E402

SENTENCES = [
    "Thank you for your question about the deployment.", "The service reads its settings from one file.",
    "Each request is checked before it reaches the model.", "Please restart the worker after changing the policy.",
    "Latency depends mostly on the upstream provider.", "Logs never contain the text of a prompt.",
    "You can run the proxy as a sidecar next to your application.", "Metrics are exposed for Prometheus.",
    "The audit trail is chained with hashes, so gaps are visible.", "Let me know if you need anything else.",
]
TOKEN_DELAY = 0.002
# every default category scored, none acting: the tiny random model must not cut the reply
FLAG_ALL = {c: Threshold(threshold=t.threshold, action="flag") for c, t in DEFAULT_CATEGORIES.items()}


def make_reply(tokens: int = 500) -> list[str]:
    words: list[str] = []
    i = 0
    while len(words) < tokens:
        words += re.findall(r"\S+\s*", SENTENCES[i % len(SENTENCES)] + " ")
        i += 1
    return words[:tokens]


async def upstream(tokens: list[str]) -> AsyncIterator[str]:
    for t in tokens:
        await asyncio.sleep(TOKEN_DELAY)
        yield t


class _Null:
    async def feed(self, text: str) -> str:
        return text

    async def finish(self) -> str:
        return ""


async def one_stream(make_filter: Callable[[], object], tokens: list[str]) -> tuple[float, float]:
    f = make_filter()
    t0 = time.perf_counter()
    ttft = None
    async for tok in upstream(tokens):
        out = await f.feed(tok)  # type: ignore[attr-defined]
        if out and ttft is None:
            ttft = time.perf_counter() - t0
    await f.finish()  # type: ignore[attr-defined]
    total = time.perf_counter() - t0
    return (ttft if ttft is not None else total), total


async def measure(make_filter: Callable[[], object], tokens: list[str], streams: int, reps: int) -> tuple[float, float]:
    ttfts, totals = [], []
    for _ in range(reps):
        res = await asyncio.gather(*(one_stream(make_filter, tokens) for _ in range(streams)))
        ttfts += [r[0] for r in res]
        totals += [r[1] for r in res]
    return statistics.median(ttfts) * 1000, statistics.median(totals) * 1000


async def throughput(scorer: Scorer, windows: list[str], max_batch: int, streams: int) -> tuple[float, int]:
    """Sentences per second when ``streams`` coroutines score ``windows`` each, concurrently."""
    b = BatchingScorer(scorer, max_batch=max_batch, max_wait_ms=2)
    try:
        async def worker() -> None:
            for w in windows:
                await b.score(w)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(streams)))
        return streams * len(windows) / (time.perf_counter() - t0), b.calls
    finally:
        b.close()


def tiny_detoxify(tmp: Path) -> Scorer:
    from test_toxicity_detoxify import build_tiny_checkpoint  # the test's own builder

    ckpt, base = build_tiny_checkpoint(tmp)
    return DetoxifyScorer("original", checkpoint=str(ckpt), huggingface_config_path=str(base))


def real_detoxify_cost() -> str:
    try:
        s = load_scorer(ToxicityConfig(scorer="detoxify"))
    except ScorerUnavailable as e:
        return f"not measured: {e.reason} (run `trustproxy models pull original` to measure it)"
    s.score_batch(SENTENCES[:2])
    t0 = time.perf_counter()
    for x in SENTENCES:
        s.score_batch([x])
    one = (time.perf_counter() - t0) / len(SENTENCES) * 1000
    t0 = time.perf_counter()
    s.score_batch(SENTENCES)
    batched = (time.perf_counter() - t0) / len(SENTENCES) * 1000
    return f"{one:.1f} ms per sentence alone, {batched:.1f} ms per sentence in a batch of {len(SENTENCES)} (CPU)"


async def main(reps: int, streams: int) -> tuple[list[str], dict[str, str]]:
    tokens = make_reply()
    scorers: dict[str, Scorer] = {"profanity_check": load_scorer(ToxicityConfig(scorer="profanity_check")),
                                  "offline": load_scorer(ToxicityConfig(scorer="offline"))}
    with tempfile.TemporaryDirectory() as d:
        scorers["tiny detoxify"] = tiny_detoxify(Path(d))
    rows = ["| scorer | mode | streams | TTFT ms | added TTFT ms | total ms | added total ms | score_batch calls per run |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in sorted({1, streams}):
        base_ttft, base_total = await measure(_Null, tokens, n, reps)
        rows.append(f"| none | - | {n} | {base_ttft:.1f} | 0 | {base_total:.1f} | 0 | 0 |")
        for sname, scorer in scorers.items():
            for mode in ("hold", "fast"):
                b = BatchingScorer(scorer)
                try:
                    cfg = ToxicityConfig(mode=mode, categories=FLAG_ALL)
                    mk: Callable[[], object] = lambda cfg=cfg, b=b: ToxicityFilter(b, cfg)  # noqa: E731
                    ttft, total = await measure(mk, tokens, n, reps)
                finally:
                    b.close()
                print(f"measured {sname} {mode} x{n}", file=sys.stderr)
                rows.append(f"| {sname} | {mode} | {n} | {ttft:.1f} | {ttft - base_ttft:+.1f} | "
                            f"{total:.1f} | {total - base_total:+.1f} | {b.calls / reps:.0f} |")
    tp = ["| scorer | concurrent streams | max_batch | sentences/s | score_batch calls |",
          "| --- | ---: | ---: | ---: | ---: |"]
    windows = SENTENCES * 3
    for sname, scorer in scorers.items():
        for mb in (1, 16):
            rate, calls = await throughput(scorer, windows, mb, 16)
            tp.append(f"| {sname} | 16 | {mb} | {rate:.0f} | {calls} |")
    t0 = time.perf_counter()
    probe = scorers["profanity_check"]
    for _ in range(10):
        probe.score_batch(["one sentence."])
    one_call = (time.perf_counter() - t0) * 100
    extra = {"real detoxify-original": real_detoxify_cost(), "profanity call": f"{one_call:.0f}",
             "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
             "tokens": str(len(tokens)), "sentences": str(sum(t.rstrip().endswith(".") for t in tokens))}
    return rows + [""] + tp, extra


def report(lines: list[str], extra: dict[str, str], reps: int, streams: int) -> str:
    cmd = f".venv/bin/python bench/bench_toxicity.py --reps {reps} --streams {streams}"
    return "\n".join([
        "# Toxicity screening: benchmark",
        "",
        f"Command: `{cmd}` (2-core machine, CPU only; medians over {reps} runs).",
        "",
        f"A {extra['tokens']}-token reply ({extra['sentences']} sentences) streamed at 2 ms per token, "
        "with no screening and with `ToxicityFilter` (window_sentences=1, the default categories set to `flag` so the tiny random model never cuts the reply; the work is the same), "
        "all measured in the same run. *added* = screened minus none.",
        "",
        *lines,
        "",
        f"Real detoxify-original cost: {extra['real detoxify-original']}.",
        "",
        f"One `profanity_check` call costs about {extra['profanity call']} ms whatever the batch size "
        "(scikit-learn's per-call checks in its calibrated classifier dominate), so the scoring "
        "threads compete with the event loop for the GIL and the CPU; that, not waiting, is most of "
        "the added total time, and it is why micro-batching multiplies throughput. Load average "
        f"at the end of the run: {extra['load']} (the 2 cores were shared with other work, so "
        "absolute numbers are noisy; compare rows of the same run).",
        "",
        "The tiny detoxify checkpoint is a 1-layer BERT with 16 hidden units built by the test suite: "
        "it exercises the real detoxify loading and inference code, so its rows show the pipeline's "
        "overhead, not the cost of the real 110M-parameter model.",
        "",
        "## Picking a mode",
        "",
        "- `hold` (default): nothing leaves before it is scored. Scoring runs in the background "
        "while the upstream keeps streaming, so TTFT grows by the time to produce the first "
        "sentence plus one scoring, the reply then arrives sentence by sentence, and the end of "
        "the reply waits for the last sentence's score. Choose it when no toxic text may reach "
        "the user at all, and for non-streamed replies (where it costs the same as `fast`).",
        "- `fast`: text leaves at once and scoring runs alongside; TTFT and pacing are unchanged, and "
        "a toxic sentence is cut off when its score arrives (a few tokens later), so part or all "
        "of it may be shown before the stream ends with an error. `redact` becomes `block` in "
        "this mode. Choose it for chat UIs where latency matters and a cut-off reply with an "
        "error is acceptable.",
        "- Both modes cost the same CPU per sentence. With the real detoxify model (BERT-base on "
        "CPU) every sentence costs tens of milliseconds: under load, micro-batching "
        "(`BatchingScorer`, one `score_batch` call for the windows of many streams) is what keeps "
        "up; see the throughput table. Scoring runs in a thread and competes with the event loop "
        "for the CPU (and, for scikit-learn's Python code, the GIL): leave a core for it.",
        "",
    ])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-toxicity.md"))
    a = ap.parse_args()
    lines, extra = asyncio.run(main(a.reps, a.streams))
    text = report(lines, extra, a.reps, a.streams)
    print(text)
    out = Path(a.out)
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    begin, end = "<!-- quality:begin", "<!-- quality:end -->"
    if begin in old and end in old:  # keep bench_toxicity_quality.py's section
        text = text.rstrip("\n") + "\n\n" + old[old.index(begin):old.index(end) + len(end)] + "\n"
    out.write_text(text, encoding="utf-8")
