"""Benchmark: what the proxy adds to a chat request, against calling litellm directly.

Four ways to reach the same fake OpenAI-compatible upstream (``tests/fakes``, its own process,
echoing the prompt back as a ~50-token reply), N sequential requests each, plain and streamed:

(a) httpx straight to the upstream;
(b) ``litellm.acompletion`` straight to the upstream (the baseline a team would otherwise use);
(c) httpx through ``trustproxy serve`` (its own process) with a policy that has no guards
    (no entities, output PII and toxicity screening off);
(d) httpx through the proxy with the shipped default policy.

The four are interleaved request by request (a, b, c, d, a, b, ...), so load from other
processes on the machine falls on all of them alike. Every prompt is different (the detector's
per-text cache never hits). Times are wall-clock per request, response fully read and parsed;
for streams also the time to the first content delta (TTFT).

Usage: python bench/bench_proxy.py [-n 200] [--warmup 20] [--write docs/benchmarks-proxy.md]
Prints no user text (the prompts are synthetic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trustproxy  # noqa: E402,F401  (offline switches before litellm)

import httpx  # noqa: E402
import yaml  # noqa: E402

NO_GUARDS = """\
name: noguard
description: Benchmark only - no request or reply screening at all.
entities: []
output:
  pii: {enabled: false}
  toxicity: {enabled: false}
"""

FAKE = """\
import sys, time
sys.path.insert(0, {root!r})
from tests.fakes.providers import FakeOpenAI
f = FakeOpenAI(model="gpt-fake").start_sync()
f.chunk_size = {chunk}
print(f.port, flush=True)
while True:
    time.sleep(60)
    f.requests.clear()
"""

CONFIGS = ("a_direct_httpx", "b_litellm", "c_proxy_noguard", "d_proxy_default")
LABELS = {"a_direct_httpx": "(a) httpx -> upstream", "b_litellm": "(b) litellm.acompletion -> upstream",
          "c_proxy_noguard": "(c) httpx -> proxy (no guards) -> upstream",
          "d_proxy_default": "(d) httpx -> proxy (default policy) -> upstream"}


def prompt(i: int) -> str:
    """~50 tokens, different every time, with a name and an email (the default policy masks them)."""
    return (f"Request {i}: please summarise the note from Maria Garcia (maria.garcia{i}@example.com) about "
            f"the delayed shipment of order {10000 + i}, and suggest two polite next steps the support team "
            "could take this week to keep the customer informed.")


@dataclass
class Samples:
    total: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)


def pct(xs: list[float], p: int) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1] if len(xs) > 1 else xs[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the four clients ---------------------------------------------------------------------------

async def via_httpx(client: httpx.AsyncClient, url: str, model: str, text: str, stream: bool) -> tuple[float, float]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    t0 = time.perf_counter()
    first = 0.0
    if not stream:
        r = await client.post(url, json=body)
        r.raise_for_status()
        content = r.json()["choices"][0]["message"]["content"]
        assert content
        return time.perf_counter() - t0, 0.0
    got = []
    async with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"stream error {chunk['error'].get('code')}")
            for ch in chunk.get("choices") or []:
                piece = (ch.get("delta") or {}).get("content")
                if piece:
                    if not first:
                        first = time.perf_counter() - t0
                    got.append(piece)
    assert got
    return time.perf_counter() - t0, first


async def via_litellm(params: dict[str, Any], text: str, stream: bool) -> tuple[float, float]:
    import litellm

    t0 = time.perf_counter()
    first = 0.0
    resp = await litellm.acompletion(messages=[{"role": "user", "content": text}], stream=stream, **params)
    if not stream:
        assert resp.choices[0].message.content
        return time.perf_counter() - t0, 0.0
    got = []
    async for chunk in resp:
        for ch in chunk.choices:
            if ch.delta.content:
                if not first:
                    first = time.perf_counter() - t0
                got.append(ch.delta.content)
    assert got
    return time.perf_counter() - t0, first


# ---- processes ----------------------------------------------------------------------------------

def start_fake(chunk: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", FAKE.format(root=str(ROOT), chunk=chunk)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def start_proxy(work: Path, upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    pol = work / "policies"
    pol.mkdir()
    shutil.copy(ROOT / "policies" / "default.yaml", pol / "default.yaml")
    (pol / "noguard.yaml").write_text(NO_GUARDS, encoding="utf-8")
    route = {"model": "openai/gpt-fake", "api_base": upstream, "api_key_env": "TP_BENCH_KEY", "max_retries": 0}
    cfg = {"routes": {"noguard": {**route, "policy": "noguard"}, "default": route},
           "audit": {"path": str(work / "audit.jsonl"), "stdout": False}, "log_level": "WARNING"}
    (work / "trustproxy.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    port = free_port()
    # this tree's code, not whatever copy of trustproxy the venv has installed
    cmd = [sys.executable, "-m", "trustproxy.cli"]
    env = {**os.environ, "TP_BENCH_KEY": "sk-bench",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([*cmd, "serve", "--workers", "1", "--config", str(work / "trustproxy.yaml"), "--port", str(port),
                             "--policy-dir", str(pol)], stdout=subprocess.DEVNULL, stderr=log,
                            env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"trustproxy serve exited ({proc.returncode}); see {work / 'serve.log'}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("trustproxy serve did not become ready")
        time.sleep(0.5)


# ---- the run ------------------------------------------------------------------------------------

async def measure(n: int, warmup: int, upstream: str, proxy: str) -> dict[tuple[str, bool], Samples]:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"model": "openai/gpt-fake", "api_base": upstream, "api_key": "sk-bench", "max_retries": 0}
    limits = httpx.Limits(max_keepalive_connections=4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as direct, \
            httpx.AsyncClient(timeout=60, limits=limits) as via_proxy:
        calls: dict[str, Callable[[str, bool], Awaitable[tuple[float, float]]]] = {
            "a_direct_httpx": lambda t, s: via_httpx(direct, upstream + "/chat/completions", "gpt-fake", t, s),
            "b_litellm": lambda t, s: via_litellm(params, t, s),
            "c_proxy_noguard": lambda t, s: via_httpx(via_proxy, proxy + "/v1/chat/completions", "noguard", t, s),
            "d_proxy_default": lambda t, s: via_httpx(via_proxy, proxy + "/v1/chat/completions", "default", t, s),
        }
        out = {(c, s): Samples() for c in CONFIGS for s in (False, True)}
        i = 0
        for rnd in range(warmup + n):
            for stream in (False, True):
                for c in CONFIGS:
                    i += 1
                    total, first = await calls[c](prompt(i), stream)
                    if rnd >= warmup:
                        out[(c, stream)].total.append(total * 1000)
                        if stream:
                            out[(c, stream)].ttft.append(first * 1000)
            if rnd == warmup - 1:
                print(f"warm-up done ({warmup} rounds); measuring {n} rounds", file=sys.stderr)
    return out


def audit_stages(path: Path, n: int) -> str:
    """The proxy's own account (audit ``latency_ms``) of the measured requests: medians."""
    events: dict[tuple[str, bool], list[dict[str, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        events.setdefault((ev["route"], bool(ev["stream"])), []).append(ev["latency_ms"])
    rows = ["| proxy route | mode | detection | provider | screening | total (ms, median, proxy's own clock) |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    for stream in (False, True):
        for route in ("noguard", "default"):
            evs = events.get((route, stream), [])[-n:]
            if not evs:
                continue
            med = {k: statistics.median(e.get(k, 0.0) for e in evs) for k in ("detection", "provider", "screening",
                                                                               "total")}
            rows.append(f"| {route} | {'stream' if stream else 'plain'} | {med['detection']:.1f} | "
                        f"{med['provider']:.1f} | {med['screening']:.1f} | {med['total']:.1f} |")
    return "\n".join(rows)


def table(res: dict[tuple[str, bool], Samples]) -> str:
    rows = ["| path | mode | p50 (ms) | p99 (ms) | p50 TTFT (ms) | p50 / (b) | p99 / (b) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for stream in (False, True):
        base = res[("b_litellm", stream)].total
        for c in CONFIGS:
            s = res[(c, stream)]
            ttft = f"{pct(s.ttft, 50):.1f}" if stream else ""
            rows.append(f"| {LABELS[c]} | {'stream' if stream else 'plain'} | {pct(s.total, 50):.1f} | "
                        f"{pct(s.total, 99):.1f} | {ttft} | {pct(s.total, 50) / pct(base, 50):.2f}x | "
                        f"{pct(s.total, 99) / pct(base, 99):.2f}x |")
    return "\n".join(rows)


def summary(res: dict[tuple[str, bool], Samples]) -> list[str]:
    lines = []
    for stream in (False, True):
        mode = "streamed" if stream else "plain"
        b = pct(res[("b_litellm", stream)].total, 50)
        c = pct(res[("c_proxy_noguard", stream)].total, 50)
        d = pct(res[("d_proxy_default", stream)].total, 50)
        verdict = "meets" if c / b <= 1.5 else "MISSES"
        lines.append(f"- {mode}: (c)/(b) = {c / b:.2f}x ({verdict} the <= 1.5x target); "
                     f"(d)/(b) = {d / b:.2f}x")
    return lines


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other work; 1-min load average at the end: {load:.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200, help="measured requests per path and mode")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=4, help="characters per upstream stream event (~1 token)")
    ap.add_argument("--write", default=None, help="write the markdown report here")
    args = ap.parse_args()

    fake, fport = start_fake(args.chunk)
    work = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    proxy_proc = None
    try:
        upstream = f"http://127.0.0.1:{fport}/v1"
        proxy_proc, proxy = start_proxy(work, upstream)
        t0 = time.monotonic()
        res = asyncio.run(measure(args.n, args.warmup, upstream, proxy))
        took = time.monotonic() - t0
        proxy_proc.terminate()
        proxy_proc.wait(30)
        stages = audit_stages(work / "audit.jsonl", args.n)
    finally:
        if proxy_proc is not None and proxy_proc.poll() is None:
            proxy_proc.terminate()
            proxy_proc.wait(30)
        fake.kill()
        fake.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    tbl = table(res)
    summ = summary(res)
    print(tbl)
    print("\n".join(summ))
    print(stages)
    if args.write:
        write_doc(Path(args.write), tbl, summ, stages, args, took)
    return 0


BEGIN, END = "<!-- bench_proxy:begin (generated) -->", "<!-- bench_proxy:end -->"


def write_doc(path: Path, tbl: str, summ: list[str], stages: str, args: argparse.Namespace, took: float) -> None:
    """Write the generated part between the markers; text outside them (analysis) is kept."""
    block = f"""{BEGIN}
- {args.n} measured requests per path and mode after {args.warmup} warm-up rounds; upstream
  stream events of {args.chunk} characters.
- {machine()}. Whole run: {took:.0f} s.

{tbl}

{chr(10).join(summ)}

Where the proxy's time goes, by its own audit events (`latency_ms`, medians; provider = the
litellm call to the last byte, so for streams it includes relaying every event to the client;
screening = output toxicity/PII windows and restore of a non-streamed reply):

{stages}

Reproduce (from the repository root, in the venv):

```
python bench/bench_proxy.py -n {args.n} --warmup {args.warmup} --write {path.as_posix()}
```
{END}"""
    if path.exists() and BEGIN in (old := path.read_text(encoding="utf-8")) and END in old:
        text = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        text = f"""# Proxy overhead benchmark

`bench/bench_proxy.py`: {__doc__.split(chr(10), 1)[0]}

{block}
"""
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
