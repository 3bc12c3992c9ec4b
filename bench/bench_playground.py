"""Benchmark: what a playground dry run costs, against a real chat request to the ``echo`` route.

One proxy on loopback (``tests/proxy.py``, the shipped policies), four kinds of call,
interleaved request by request (a, b, c, d, a, ...) so load from elsewhere falls on all alike;
every text is different (the detector's per-text cache never hits):

(a) ``POST /v1/chat/completions`` to ``echo``: masking, the echo, the reply screened (baseline);
(b) ``POST /v1/trust/inspect`` with the text: the request side of the dry run only;
(c) ``POST /v1/trust/playground`` ``run``: the dry run with the echo reply screened (the page's
    "Dry run");
(d) the same with a draft: the draft validated by the loader, a second dry run, the diff (the
    page's "Compare with live").

Usage: python bench/bench_playground.py [-n 40] [--warmup 5]
Prints no user text (the texts are synthetic).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST = ["John", "Maria", "Wei", "Aisha", "Lukas", "Sofia", "Kenji", "Olga", "Diego", "Fatima"]
LAST = ["Smith", "Garcia", "Chen", "Khan", "Müller", "Rossi", "Tanaka", "Ivanova", "Lopez", "Haddad"]


def text(i: int) -> str:
    f, last = FIRST[i % 10], LAST[(i // 10) % 10]
    return (f"Hi, I am {f} {last} (ticket {1000 + i}), mail {f.lower()}.{i}@example.com, "
            f"call 415-555-{i % 10000:04d}. Please summarise my last {i % 7 + 2} orders.")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()

    import trustproxy  # noqa: F401
    from tests.proxy import ProxyServer
    from trustproxy.settings import Settings

    draft = (ROOT / "policies" / "default.yaml").read_text().replace(
        "{type: EMAIL_ADDRESS, action: mask}", "{type: EMAIL_ADDRESS, action: redact}", 1)
    times: dict[str, list[float]] = {k: [] for k in "abcd"}
    with ProxyServer(Settings(audit={"stdout": False, "path": None})) as proxy, httpx.Client(timeout=120) as http:
        def call(kind: str, t: str) -> None:
            if kind == "a":
                r = http.post(proxy.url + "/v1/chat/completions",
                              json={"model": "echo", "messages": [{"role": "user", "content": t}]})
            elif kind == "b":
                r = http.post(proxy.url + "/v1/trust/inspect", json={"text": t})
            else:
                body = {"op": "run", "policy": "default", "input": t}
                if kind == "d":
                    body["draft"] = draft
                r = http.post(proxy.url + "/v1/trust/playground", json=body)
            r.raise_for_status()

        i = 0
        for _ in range(args.warmup):
            for k in "abcd":
                call(k, text(i))
                i += 1
        for _ in range(args.n):
            for k in "abcd":
                t0 = time.perf_counter()
                call(k, text(i))
                times[k].append((time.perf_counter() - t0) * 1000)
                i += 1
    base = statistics.median(times["a"])
    names = {"a": "chat completion to echo (baseline)", "b": "/v1/trust/inspect (text)",
             "c": "playground run (dry run + echo reply)", "d": "playground run with a draft (+ validate, 2nd run, diff)"}
    print(f"n={args.n} per kind, interleaved; median and p90 in ms; ratio = median / baseline median")
    print("| call | median ms | p90 ms | ratio |")
    print("| --- | --- | --- | --- |")
    for k in "abcd":
        xs = sorted(times[k])
        p90 = xs[int(0.9 * (len(xs) - 1))]
        print(f"| {names[k]} | {statistics.median(xs):.1f} | {p90:.1f} | {statistics.median(xs) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
