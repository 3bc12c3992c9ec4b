"""Detection quality through the running proxy, on the seeded corpus of ``bench/corpus``.

The proxy runs as a real aiohttp server on 127.0.0.1 with the policies of this tree, in front of
the recording fake OpenAI provider of ``tests/fakes``; every corpus request goes through
``/v1/chat/completions`` with the official ``openai`` SDK. The fake echoes what it received
(texts, and the assistant tool calls as its own tool calls), so each value is judged twice:

- leak: one of its probes (the value folded: digits and letters only, case-folded, invisible
  characters dropped) is in what the provider received;
- restored: the value, exactly as the client wrote it, is in the reply the client got;

and each request once: placeholders (or fragments of one) left in the client's reply; for clean
texts, whether the provider received them altered (over-masking).

Usage: python bench/bench_detect_quality.py [--seed 1 [2 ...]] [--n 250] [--policy default]
       [--where category=PERSON --where locale=ja_JP] [--json out.json] [--examples 8]
       python bench/bench_detect_quality.py --markdown seed1.json seed2.json   (tables for docs/)
Prints no planted value: examples show the shape of a value (letters -> a/A, digits -> 9).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai  # noqa: E402

from bench.corpus import Case, generate  # noqa: E402
from bench.corpus.score import CaseResult, echo_reply, judge, summarise  # noqa: E402
from tests.fakes.base import Reply, ToolCall  # noqa: E402
from tests.fakes.providers import FakeOpenAI  # noqa: E402
from tests.proxy import ProxyServer  # noqa: E402
from trustproxy.settings import Route, Settings  # noqa: E402

TARGETS = {"leak": 0.01, "restored": 0.99, "placeholder_leakage": 0, "over_masking": 0.05}


class Recorder:
    """The fake's script: remember the body (requests are sent one at a time) and echo it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def __call__(self, body: Any) -> Reply:
        self.bodies.append(body)
        text, calls = echo_reply(body or {})
        return Reply(text=text, tool_calls=[ToolCall(name=n, arguments=a) for n, a in calls])


def settings_for(fake: FakeOpenAI, policy: str, policy_dir: Path) -> Settings:
    p = fake.litellm_params()
    audit_dir = tempfile.mkdtemp(prefix="tp-quality-")
    return Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0, timeout=60)},
                    policy_dir=str(policy_dir), default_policy=policy, hash_key="bench-hash-key",
                    # quality, not latency: a loaded shared machine must not turn into refusals
                    detection_timeout_seconds=120,
                    audit={"stdout": False, "path": str(Path(audit_dir) / "audit.jsonl")})


async def run_cases(proxy: ProxyServer, recorder: Recorder, cases: list[Case],
                    progress: Callable[[int], None] | None = None) -> list[CaseResult]:
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, timeout=120)
    results: list[CaseResult] = []
    try:
        for k, case in enumerate(cases):
            recorder.bodies.clear()
            body = dict(case.body)
            status, error, text, calls, entities, withheld = 200, "", "", [], "", False
            try:
                raw = await client.chat.completions.with_raw_response.create(**body)
                resp = raw.parse()
                entities = raw.headers.get("x-trustproxy-entities", "")
                msg = resp.choices[0].message
                withheld = resp.choices[0].finish_reason == "content_filter"
                text = msg.content or ""
                calls = [(c.function.name, c.function.arguments) for c in (msg.tool_calls or [])]
            except openai.APIStatusError as exc:
                status = exc.status_code
                error = str((exc.body or {}).get("code") if isinstance(exc.body, dict) else "") or type(exc).__name__
            except openai.APIError as exc:  # connection dropped, timeout: count it, keep going
                status, error = 0, type(exc).__name__
            received = recorder.bodies[-1] if recorder.bodies else None
            results.append(judge(case, status, received, text, calls, entities, error, withheld))
            if progress:
                progress(k + 1)
    finally:
        await client.close()
    return results


def select(cases: list[Case], where: list[str]) -> list[Case]:
    """Keep the clean cases (``kind=clean``) or the planted cases with a value matching every
    ``field=value`` of ``where`` (fields of ``Planted``: category, placement, evasion, locale ...)."""
    if not where:
        return cases
    conds = [w.split("=", 1) for w in where]
    if ["kind", "clean"] in conds:
        return [c for c in cases if c.kind == "clean"]
    return [c for c in cases if any(all(str(getattr(p, k)) == v for k, v in conds) for p in c.planted)]


def run(seeds: list[int], n: int, policy: str, policy_dir: Path, log: Callable[[str], None] = print,
        where: list[str] | None = None) -> list[
        tuple[list[CaseResult], dict[str, Any]]]:
    """Each seed's corpus through one proxy (started once: model loading dominates a short run)."""
    recorder = Recorder()
    out = []
    t0 = time.perf_counter()
    with FakeOpenAI(model="m") as fake:
        fake.script = recorder
        with ProxyServer(settings_for(fake, policy, policy_dir)) as proxy:
            t_load = time.perf_counter() - t0
            for seed in seeds:
                cases = select(generate(seed, n), where or [])
                t1 = time.perf_counter()

                def progress(k: int) -> None:
                    if k % 100 == 0:
                        log(f"  seed {seed}: {k}/{len(cases)} requests, {time.perf_counter() - t1:.0f} s")

                results = asyncio.run(run_cases(proxy, recorder, cases, progress))
                summary = summarise(results)
                summary.update({"seed": seed, "n": n, "policy": policy, "load_s": round(t_load, 1),
                                "run_s": round(time.perf_counter() - t1, 1)})
                out.append((results, summary))
    return out


# ---- printing ------------------------------------------------------------------------------------

def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table(title: str, rows: dict[str, dict[str, float]]) -> list[str]:
    out = [f"\n{title}", f"  {'':22} {'n':>5} {'leak':>7} {'restored':>9}"]
    for k, r in rows.items():
        out.append(f"  {k:22} {int(r['n']):5d} {pct(r['leak']):>7} {pct(r['restored']):>9}")
    return out


def examples(results: list[CaseResult], limit: int) -> dict[str, list[str]]:
    leaked = [f"{v.category}/{v.subtype} in {v.placement}, evasion {v.evasion}, format {v.format}, "
              f"{v.locale}: {v.shape!r}" for r in results for v in r.values if v.leaked]
    unrestored = [f"{v.category} in {v.placement}, evasion {v.evasion}, format {v.format}: {v.shape!r}"
                  for r in results if r.status == 200 and not r.withheld for v in r.values
                  if not v.leaked and not v.restored]
    over = [f"{r.clean_kind} in {r.placement} ({r.locale}), detected {r.entities or '-'}: "
            + "; ".join(r.altered_examples) for r in results if r.kind == "clean" and r.altered]
    collateral = [f"{r.placement} ({r.locale}): " + "; ".join(r.collateral[:3]) for r in results if r.collateral]
    holes = [f"{r.id} {r.placement}: {r.placeholders_left}" for r in results if r.placeholders_left]
    refused = [f"{r.id} {r.kind} {r.placement}: HTTP {r.status} {r.error}" for r in results if r.status != 200]
    withheld = [f"{r.id} {r.kind} {r.placement} ({r.locale})" for r in results if r.withheld]
    inexact = [f"{r.id} {r.placement} ({r.locale})" for r in results
               if r.kind == "pii" and r.status == 200 and not r.withheld and not r.round_trip_exact]

    def head(xs: list[str]) -> list[str]:
        return xs[:limit] + ([f"... and {len(xs) - limit} more"] if len(xs) > limit else [])
    return {"leaked": head(leaked), "not_restored": head(unrestored), "over_masked": head(over), "collateral_masking": head(collateral),
            "placeholder_leakage": head(holes), "refused": head(refused), "withheld": head(withheld),
            "round_trip_inexact": head(inexact)}


def report(results: list[CaseResult], s: dict[str, Any], limit: int) -> str:
    lines = [f"seed {s['seed']}, n {s['n']} requests ({s['pii_requests']} with {s['planted']} planted values, "
             f"{s['clean_requests']} clean), policy {s['policy']}; proxy start {s['load_s']} s, run {s['run_s']} s",
             "",
             f"  leak                 {pct(s['leak']):>7}   target <= {pct(TARGETS['leak'])}",
             f"  restored             {pct(s['restored']):>7}   target >= {pct(TARGETS['restored'])}",
             f"  placeholder leakage  {s['placeholder_leakage']:>7}   target 0 "
             f"({s['requests_with_placeholder_leakage']} requests)",
             f"  over-masking         {pct(s['over_masking']):>7}   target <= {pct(TARGETS['over_masking'])}",
             f"  collateral masking   {pct(s['collateral_masking']):>7}   of planted requests: words around the values masked too",
             f"  round trip exact     {pct(s['round_trip_exact_pii']):>7} of planted requests, "
             f"{pct(s['round_trip_exact_clean'])} of clean",
             f"  refused by the proxy {s['refused']:>7}   (HTTP errors: nothing sent upstream, counted as not leaked)",
             f"  reply withheld       {s['withheld']:>7}   (output screening replaced the echo; not judged for restore)"]
    for key, title in (("by_category", "per category"), ("by_placement", "per placement"),
                       ("by_evasion", "per evasion"), ("by_format", "per format"),
                       ("by_locale", "per locale"), ("by_domain", "per domain")):
        lines += table(title, s[key])
    lines.append("\nentity types detected in over-masked clean texts: "
                 + (", ".join(f"{k} {v}" for k, v in s["over_masking_by_type"].items()) or "-"))
    lines.append("entity types detected in planted requests with collateral masks: "
                 + (", ".join(f"{k} {v}" for k, v in s["collateral_by_type"].items()) or "-"))
    lines.append("\nover-masking per clean kind")
    for k, r in s["over_masking_by_kind"].items():
        lines.append(f"  {k:22} {int(r['n']):5d} {pct(r['altered']):>7}")
    for title, xs in examples(results, limit).items():
        if xs:
            lines.append(f"\n{title.replace('_', ' ')}:")
            lines += [f"  - {x}" for x in xs]
    return "\n".join(lines)


def markdown(summaries: list[dict[str, Any]]) -> str:
    """The headline and the per-group tables, one column pair per run (e.g. two seeds)."""
    seeds = [f"seed {s['seed']}" for s in summaries]
    out = ["| measure | target | " + " | ".join(seeds) + " |", "|---|---|" + "---|" * len(seeds)]
    rows = [("leak (planted values that reached the provider)", "<= 1 %", lambda s: pct(s["leak"])),
            ("restored to the client", ">= 99 %", lambda s: pct(s["restored"])),
            ("placeholder leakage (placeholders left in replies)", "0",
             lambda s: f"{s['placeholder_leakage']} in {s['requests_with_placeholder_leakage']} requests"),
            ("over-masking (clean texts altered)", "<= 5 %", lambda s: pct(s["over_masking"])),
            ("collateral masking (planted requests with other words masked)", "",
             lambda s: pct(s["collateral_masking"])),
            ("round trip exact, planted / clean requests", "", lambda s: f"{pct(s['round_trip_exact_pii'])} / "
             f"{pct(s['round_trip_exact_clean'])}"),
            ("requests refused by the proxy / replies withheld by output screening", "",
             lambda s: f"{s['refused']} / {s['withheld']}"),
            ("requests (planted + clean), planted values", "", lambda s: f"{s['pii_requests']} + {s['clean_requests']}, "
             f"{s['planted']}")]
    for name, target, fn in rows:
        out.append(f"| {name} | {target} | " + " | ".join(fn(s) for s in summaries) + " |")
    for key, title in (("by_category", "category"), ("by_placement", "placement"), ("by_evasion", "evasion"),
                       ("by_format", "format"), ("by_locale", "locale"), ("by_domain", "domain")):
        keys: list[str] = []
        for s in summaries:
            keys += [k for k in s[key] if k not in keys]
        out += ["", f"| {title} | " + " | ".join(f"{x} n / leak / restored" for x in seeds) + " |",
                "|---|" + "---|" * len(seeds)]
        for k in keys:
            cells = []
            for s in summaries:
                r = s[key].get(k)
                cells.append(f"{int(r['n'])} / {pct(r['leak'])} / {pct(r['restored'])}" if r else "-")
            out.append(f"| {k} | " + " | ".join(cells) + " |")
    kinds: list[str] = []
    for s in summaries:
        kinds += [k for k in s["over_masking_by_kind"] if k not in kinds]
    out += ["", "| clean kind | " + " | ".join(f"{x} n / altered" for x in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for k in kinds:
        cells = []
        for s in summaries:
            r = s["over_masking_by_kind"].get(k)
            cells.append(f"{int(r['n'])} / {pct(r['altered'])}" if r else "-")
        out.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Detection quality through the proxy on the seeded corpus.")
    ap.add_argument("--seed", type=int, nargs="+", default=[1], help="one or more seeds (one proxy start)")
    ap.add_argument("--n", type=int, default=250)
    ap.add_argument("--policy", default="default", help="policy name in --policy-dir (default: default)")
    ap.add_argument("--policy-dir", type=Path, default=ROOT / "policies")
    ap.add_argument("--json", type=Path, help="write the summary and every per-value result here "
                    "(with several seeds: NAME-seedN.json)")
    ap.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE",
                    help="only requests with a planted value matching (repeatable: category=PERSON, "
                    "locale=ja_JP, evasion=crlf, placement=tool_result, format=csv ...); kind=clean: only clean texts")
    ap.add_argument("--examples", type=int, default=8, help="examples per list in the report")
    ap.add_argument("--markdown", nargs="+", type=Path, metavar="JSON",
                    help="print the markdown tables of earlier --json runs (e.g. two seeds) and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown([json.loads(p.read_text())["summary"] for p in args.markdown]))
        return 0
    logging.disable(logging.WARNING)
    runs = run(args.seed, args.n, args.policy, args.policy_dir, log=lambda m: print(m, file=sys.stderr),
               where=args.where)
    for results, summary in runs:
        print(report(results, summary, args.examples) + "\n")
    if len(runs) > 1:
        print(markdown([s for _, s in runs]))
    if args.json:
        for results, summary in runs:
            path = args.json if len(runs) == 1 else args.json.with_name(f"{args.json.stem}-seed{summary['seed']}{args.json.suffix}")
            path.write_text(json.dumps({"summary": summary, "examples": examples(results, 10**6),
                                        "results": [asdict(r) for r in results]}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
