"""Cost of the declared door models: validating, dumping and walking each request and stream chunk.

Reports each cost as a ratio to a baseline measured in the same run on the same inputs (a JSON
round trip of the same dict); every request and chunk differs. Run:

    PYTHONPATH=. .venv/bin/python bench/bench_doors.py
"""

from __future__ import annotations

import json
import time

from trustproxy.doors.openai_chat import ChatCompletionChunk, parse_chat
from trustproxy.doors.walk import walk_instance
from trustproxy.slots import iter_request_slots


def _time(fn, items) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for x in items:
        fn(x)
    return (time.perf_counter() - t) / len(items)


def main() -> None:
    chunks = [{"id": f"c{i}", "object": "chat.completion.chunk", "created": i, "model": "m",
               "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
              for i in range(20000)]

    def screen_chunk(c: dict) -> None:  # type: ignore[type-arg]
        inst = ChatCompletionChunk.model_validate(c)
        list(walk_instance(inst, inst.model_dump(by_alias=True, exclude_unset=True)))

    def baseline(d: dict) -> None:  # type: ignore[type-arg]
        json.loads(json.dumps(d))

    c_doors, c_base = _time(screen_chunk, chunks), _time(baseline, chunks)
    bodies = [{"model": "m", "temperature": (i % 100) / 100, "messages": [{"role": "system", "content": "Be brief."}] + [
        {"role": "user" if k % 2 == 0 else "assistant", "content": f"message {i}-{k} with some words in it"}
        for k in range(50)]} for i in range(400)]

    def parse_and_walk(b: dict) -> None:  # type: ignore[type-arg]
        list(iter_request_slots(parse_chat(b)))

    r_doors, r_base = _time(parse_and_walk, bodies), _time(baseline, bodies)
    print(f"stream chunk: validate+dump+walk {c_doors * 1e6:.1f} us, JSON round trip {c_base * 1e6:.1f} us "
          f"({c_doors / c_base:.1f}x)")
    print(f"51-message request: parse+walk {r_doors * 1e3:.2f} ms, JSON round trip {r_base * 1e3:.2f} ms "
          f"({r_doors / r_base:.1f}x)")


if __name__ == "__main__":
    main()
