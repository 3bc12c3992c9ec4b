"""Benchmark: what the agent doors (Responses, Messages) cost over the chat-completions door.

One ``trustproxy serve`` process and one fake OpenAI-compatible upstream (``tests/fakes``, its
own process, echoing the prompt as a ~50-token reply), as in ``bench_proxy.py``. N sequential
requests per door and mode, interleaved chat, responses, messages, chat, ... so load from other
processes falls on every door alike; every prompt is different. Two routes: ``noguard`` (no
screening: the doors' parse + translate + encode cost stands out) and ``default`` (the shipped
policy). The baseline is the chat door in the same run.

Usage: python bench/bench_agent_doors.py [-n 100] [--warmup 10]
Prints no user text (the prompts are synthetic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402

from bench_proxy import pct, prompt, start_fake, start_proxy  # noqa: E402

DOORS = ("chat", "responses", "messages")


def request(door: str, route: str, text: str, stream: bool) -> tuple[str, dict[str, Any]]:
    if door == "chat":
        return "/v1/chat/completions", {"model": route, "messages": [{"role": "user", "content": text}],
                                        "stream": stream}
    if door == "responses":
        return "/v1/responses", {"model": route, "input": text, "stream": stream}
    return "/v1/messages", {"model": route, "max_tokens": 256, "messages": [{"role": "user", "content": text}],
                            "stream": stream}


def text_of(door: str, body: dict[str, Any]) -> str:
    if door == "chat":
        return str(body["choices"][0]["message"]["content"])
    if door == "responses":
        return "".join(p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"])
    return "".join(b["text"] for b in body["content"] if b["type"] == "text")


def delta_of(door: str, event: dict[str, Any]) -> str:
    if door == "chat":
        return "".join((c.get("delta") or {}).get("content") or "" for c in event.get("choices") or [])
    if door == "responses":
        return str(event["delta"]) if event.get("type") == "response.output_text.delta" else ""
    if event.get("type") == "content_block_delta" and event["delta"]["type"] == "text_delta":
        return str(event["delta"]["text"])
    return ""


async def one(client: httpx.AsyncClient, url: str, door: str, route: str, text: str, stream: bool
              ) -> tuple[float, float]:
    path, body = request(door, route, text, stream)
    t0 = time.perf_counter()
    if not stream:
        r = await client.post(url + path, json=body)
        r.raise_for_status()
        assert text_of(door, r.json()) == text
        return time.perf_counter() - t0, 0.0
    first = 0.0
    got: list[str] = []
    async with client.stream("POST", url + path, json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event and door == "chat" or event.get("type") in ("error", "response.failed"):
                raise RuntimeError("stream error")
            piece = delta_of(door, event)
            if piece:
                first = first or time.perf_counter() - t0
                got.append(piece)
    assert "".join(got) == text
    return time.perf_counter() - t0, first


async def measure(n: int, warmup: int, url: str) -> dict[tuple[str, str, bool], list[float]]:
    out: dict[tuple[str, str, bool], list[float]] = {}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_keepalive_connections=4)) as client:
        i = 0
        for route in ("noguard", "default"):
            for stream in (False, True):
                for rnd in range(warmup + n):
                    for door in DOORS:
                        i += 1
                        total, _ = await one(client, url, door, route, prompt(i), stream)
                        if rnd >= warmup:
                            out.setdefault((route, door, stream), []).append(total * 1000)
    return out


def report(res: dict[tuple[str, str, bool], list[float]], n: int, warmup: int, elapsed: float) -> str:
    import os

    lines = [f"- {n} measured requests per door, route and mode after {warmup} warm-up rounds; "
             f"Python {platform.python_version()}, {os.cpu_count()} CPUs (shared; 1-min load average "
             f"{os.getloadavg()[0]:.1f}); whole run {elapsed:.0f} s.", "",
             "| route | mode | door | p50 (ms) | p99 (ms) | p50 / chat door | p99 / chat door |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for route in ("noguard", "default"):
        for stream in (False, True):
            base = res[(route, "chat", stream)]
            b50, b99 = statistics.median(base), pct(base, 99)
            for door in DOORS:
                xs = res[(route, door, stream)]
                p50, p99 = statistics.median(xs), pct(xs, 99)
                lines.append(f"| {route} | {'stream' if stream else 'plain'} | {door} | {p50:.1f} | {p99:.1f} | "
                             f"{p50 / b50:.2f}x | {p99 / b99:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    fake, port = start_fake(4)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proxy, url = start_proxy(Path(tmp), f"http://127.0.0.1:{port}/v1")
            try:
                t0 = time.monotonic()
                res = asyncio.run(measure(args.n, args.warmup, url))
                print(report(res, args.n, args.warmup, time.monotonic() - t0))
            finally:
                proxy.terminate()
                proxy.wait(30)
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
