"""Toxicity screen quality on the hand-written evaluation set (bench/toxicity_eval): recall on toxic
replies and false-positive rate on clean ones, per category, plain and streamed.

    .venv/bin/python bench/bench_toxicity_quality.py [--split tune|heldout|all] [--seed 1] [--out docs/benchmarks-toxicity.md]

Every reply goes through the real ``ToxicityFilter`` with the shipped default settings (default
categories and actions, ``window_sentences: 1``, ``quoted_speech: ignore``, ``hold``): *plain* is
one ``feed`` then ``finish`` (how a non-streamed reply is screened); *streamed* feeds the reply in
random-size deltas (1-12 characters, seeded). A toxic reply counts as caught when the filter
blocks it or changes it (redaction); a clean reply is a false positive when the filter blocks or
changes it. Scorers, in the same run: ``offline`` (the default), ``profanity_check`` alone (the
previous default: the baseline), ``detoxify`` on the tiny test checkpoint (the code path only: its
weights are random), and real detoxify checkpoints when present in the torch hub cache.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import trustproxy  # noqa: E402,F401  (offline env first)
from toxicity_eval.loader import Item, load  # noqa: E402
from trustproxy.errors import GuardFailed, PolicyBlocked  # noqa: E402
from trustproxy.policy.schema import ToxicityConfig  # noqa: E402
from trustproxy.toxicity import BatchingScorer, DetoxifyScorer, Scorer, ScorerUnavailable, ToxicityFilter, load_scorer  # noqa: E402

BEGIN, END = "<!-- quality:begin (bench/bench_toxicity_quality.py) -->", "<!-- quality:end -->"
TARGET_RECALL, TARGET_FP = 0.90, 0.05


def deltas(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 12)
        out.append(text[i:i + n])
        i += n
    return out


async def screened(batcher: BatchingScorer, cfg: ToxicityConfig, chunks: Iterable[str]) -> tuple[bool, set[str]]:
    """(caught, categories that acted) for one reply."""
    f = ToxicityFilter(batcher, cfg)
    text, out = "", ""
    try:
        for c in chunks:
            text += c
            out += await f.feed(c)
        out += await f.finish()
    except PolicyBlocked:
        return True, {d.category for d in f.decisions if d.category}
    except GuardFailed:
        return True, {"(scorer error)"}
    return out != text, {d.category for d in f.decisions if d.category and d.action != "flag"}


async def evaluate(scorer: Scorer, items: list[Item], seed: int) -> dict[str, dict[tuple[str, str], list[int]]]:
    """mode -> (label, category) -> [hits, n]."""
    cfg = ToxicityConfig()
    batcher = BatchingScorer(scorer, max_wait_ms=0)
    rng = random.Random(seed)
    res: dict[str, dict[tuple[str, str], list[int]]] = {"plain": defaultdict(lambda: [0, 0]),
                                                          "streamed": defaultdict(lambda: [0, 0])}
    try:
        for it in items:
            for mode, chunks in (("plain", [it.text]), ("streamed", deltas(it.text, rng))):
                caught, _ = await screened(batcher, cfg, chunks)
                for key in ((it.label, it.category), (it.label, "*"), (it.label, f"locale:{it.locale}")):
                    res[mode][key][0] += caught
                    res[mode][key][1] += 1
    finally:
        batcher.close()
    return res


def misses(scorer: Scorer, items: list[Item]) -> list[str]:
    """Toxic replies not caught and clean replies caught (plain), for tuning on the tune half."""
    async def run() -> list[str]:
        cfg, b = ToxicityConfig(), BatchingScorer(scorer, max_wait_ms=0)
        out = []
        try:
            for it in items:
                caught, cats = await screened(b, cfg, [it.text])
                if caught != (it.label == "toxic"):
                    out.append(f"{'MISS' if it.label == 'toxic' else 'FP  '} {it.category}.{it.locale} {sorted(cats)}: {it.text}")
        finally:
            b.close()
        return out
    return asyncio.run(run())


def tiny_detoxify(tmp: Path) -> Scorer:
    from test_toxicity_detoxify import build_tiny_checkpoint  # the test suite's own builder

    ckpt, base = build_tiny_checkpoint(tmp)
    return DetoxifyScorer("original", checkpoint=str(ckpt), huggingface_config_path=str(base))


def scorers(tmp: Path) -> dict[str, Scorer]:
    out: dict[str, Scorer] = {
        "offline (default)": load_scorer(ToxicityConfig()),
        "profanity_check (baseline)": load_scorer(ToxicityConfig(scorer="profanity_check")),
        "detoxify, tiny test checkpoint (code path only)": tiny_detoxify(tmp),
    }
    for variant in ("original", "unbiased", "multilingual"):
        try:
            out[f"detoxify:{variant}"] = load_scorer(ToxicityConfig(scorer="detoxify", detoxify_variant=variant))
        except ScorerUnavailable:
            pass
    return out


def cost_ms(scorer: Scorer, items: list[Item]) -> float:
    texts = [i.text for i in items][:200]
    t0 = time.perf_counter()
    for i in range(0, len(texts), 16):
        scorer.score_batch(texts[i:i + 16])
    return (time.perf_counter() - t0) / len(texts) * 1000


def table(results: dict[str, dict[str, dict[tuple[str, str], list[int]]]], split: str) -> list[str]:
    names = list(results)
    head = "| label | category | n | " + " | ".join(f"{n}: plain | {n}: streamed" for n in names) + " |"
    rows = [head, "| --- | --- | ---: | " + " | ".join("---: | ---:" for _ in names) + " |"]
    keys = sorted(next(iter(results.values()))["plain"], key=lambda k: (k[0] != "toxic", k[1] == "*", k[1].startswith("locale:"), k[1]))
    for label, cat in keys:
        n = results[names[0]]["plain"][(label, cat)][1]
        cells = []
        for name in names:
            for mode in ("plain", "streamed"):
                h, m = results[name][mode][(label, cat)]
                cells.append(f"{h / m:.2f}")
        what = "recall" if label == "toxic" else "FP rate"
        c = "**all**" if cat == "*" else cat
        rows.append(f"| {label} ({what}) | {c} | {n} | " + " | ".join(cells) + " |")
    return [f"### {split}", ""] + rows + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "heldout", "all", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--misses", action="store_true", help="list misses and false positives of the offline scorer (tune half only)")
    ap.add_argument("--out", help="write the tables into this markdown file (between the quality markers)")
    a = ap.parse_args()
    items = load()
    if a.misses:
        for line in misses(load_scorer(ToxicityConfig()), [i for i in items if i.split == "tune"]):
            print(line)
        return
    splits = ["tune", "heldout"] if a.split == "both" else [a.split]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        sc = scorers(Path(d))
        summary = []
        for split in splits:
            part = items if split == "all" else [i for i in items if i.split == split]
            results = {name: asyncio.run(evaluate(s, part, a.seed)) for name, s in sc.items()}
            lines += table(results, f"{split} half ({len(part)} replies)" if split != "all" else f"all ({len(part)} replies)")
            off = results["offline (default)"]
            for mode in ("plain", "streamed"):
                r = off[mode][("toxic", "*")]
                f = off[mode][("clean", "*")]
                summary.append((split, mode, r[0] / r[1], f[0] / f[1]))
        costs = {name: cost_ms(s, items) for name, s in sc.items()}
        held = misses(sc["offline (default)"], [i for i in items if i.split == "heldout"])
        real = [n for n in sc if n.startswith("detoxify:")]
    out = [BEGIN, "", "## Quality (recall and false positives)", "",
           f"Command: `.venv/bin/python bench/bench_toxicity_quality.py --seed {a.seed} --out docs/benchmarks-toxicity.md`",
           "", "Evaluation set: `bench/toxicity_eval/` (hand-written for this, see its README), split "
           "by hash into a tuning half and a held-out half; patterns were tuned on the tuning half only. "
           "Default policy settings (default categories and actions, window_sentences 1, quoted_speech ignore, hold). "
           "*plain*: the reply in one piece (the non-streamed path); *streamed*: random 1-12 character deltas "
           "through the same window. Toxic rows: share caught (blocked or redacted); clean rows: share "
           "blocked or changed. Locale rows pool toxic or clean replies of that language.", "",
           f"Targets for the offline default: recall >= {TARGET_RECALL:.2f}, false positives <= {TARGET_FP:.2f}.", ""]
    for split, mode, r, f in summary:
        ok = "meets" if r >= TARGET_RECALL and f <= TARGET_FP else "MISSES"
        out.append(f"- offline, {split}, {mode}: recall {r:.3f}, FP rate {f:.3f} ({ok} the targets)")
    out += ["", *lines, "Scoring cost per reply (batches of 16, CPU, this machine): " +
            ", ".join(f"{n}: {c:.1f} ms" for n, c in costs.items()) + ".", "",
            "What the offline default gets wrong on the held-out half (plain; listed only after the "
            "patterns were frozen):", ""]
    out += [f"- {m}" for m in held] or ["- nothing"]
    out += ["", "Notes:", "",
            "- The same person wrote both halves, and some fixes came from unit tests with similar "
            "sentences (clinical anatomy, negated harm words), so the held-out half is not fully "
            "independent: read these figures as a regression bar, not as the rate on real traffic "
            "(docs/toxicity.md lists the known gaps).",
            "- The tiny detoxify checkpoint has random weights: its rows show that the detoxify code "
            "path runs through the same window (plain and streamed agree), not its quality.",
            "- Real detoxify checkpoints: " + (", ".join(real) + " measured above." if real else
            "none in the torch hub cache on this machine (no network), so not measured here; run "
            "`trustproxy models pull original` and re-run to add their rows. Their published figures "
            "(detoxify's README, Jigsaw test sets, not this set): original mean AUC 98.64, unbiased "
            "93.74 (the challenge's bias-weighted score), multilingual AUC 92.11."),
            "", END]
    text = "\n".join(out)
    print(text)
    if a.out:
        p = Path(a.out)
        doc = p.read_text(encoding="utf-8") if p.exists() else ""
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + text + "\n"
        p.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
