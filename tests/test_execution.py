"""Guard execution and admission control: bounded pools, fair detector turns, jobs abandoned on
timeout, the inspection budget (413 uninspectable), 503/429 + Retry-After under overload, and
one big request not stalling everyone else. Through the real proxy on loopback where it matters."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.errors import GuardFailed, Overloaded
from trustproxy.execution import Abandoned, FairGate, GuardPool, PoolSettings, checkpoint
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent

# the default policy with a budget big enough for the 0.8 MB requests of the issue
ROOMY = """name: roomy
extends: default
limits: {max_inspect_chars: 2000000, max_inspect_slots: 20000}
"""
# a policy author's regex that backtracks badly on a run of "a"s
SLOW_REGEX = """name: slowrx
extends: default
custom_recognizers:
  - {name: ticket, type: TICKET_CODE, regex: "(a|aa)+b"}
"""


# ---- units: the gate and the pool ----------------------------------------------------------

def test_fair_gate_hands_turns_over_in_arrival_order() -> None:
    gate = FairGate(poll=0.005)
    order: list[int] = []
    gate.acquire()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (gate.acquire(), order.append(i), gate.release()))
        t.start()
        threads.append(t)
        while gate.waiting < i + 1:  # make arrival order certain
            time.sleep(0.001)
    gate.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    gate.acquire()  # free again
    gate.release()


def test_pool_refuses_when_full_and_abandons_a_timed_out_job() -> None:
    pool = GuardPool("detection", PoolSettings(threads=1, queue=1), retry_after=3)
    steps: list[int] = []

    def long_job() -> None:
        for i in range(200):  # 200 bounded steps of 10 ms, a checkpoint before each
            checkpoint()
            steps.append(i)
            time.sleep(0.01)

    async def main() -> None:
        first = asyncio.ensure_future(pool.run(long_job, timeout=0.2))
        second = asyncio.ensure_future(pool.run(lambda: 42, timeout=5))  # queued behind it
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as over:  # 1 running + 1 queued = full
            await pool.run(lambda: 0, timeout=5)
        assert over.value.status == 503 and over.value.headers["Retry-After"] == "3"
        with pytest.raises(GuardFailed) as timed_out:
            await first
        assert timed_out.value.code == "guard_timeout"
        assert await second == 42  # the abandoned job stopped at its next checkpoint
        t0 = time.monotonic()
        assert await pool.run(lambda: 7, timeout=5) == 7
        assert time.monotonic() - t0 < 0.5

    asyncio.run(main())
    n = len(steps)
    time.sleep(0.1)
    assert len(steps) == n < 60  # it stopped, and stays stopped
    assert pool.abandoned == 1 and pool.pending == 0
    pool.shutdown()


def test_a_job_waiting_for_its_turn_leaves_when_abandoned() -> None:
    gate = FairGate(poll=0.005)
    pool = GuardPool("output", PoolSettings(threads=2, queue=0))

    def wants_turn() -> str:
        with gate.turn():
            return "ran"

    async def main() -> None:
        gate.acquire()  # someone else holds the detector
        with pytest.raises(GuardFailed):
            await pool.run(wants_turn, timeout=0.1)
        await asyncio.sleep(0.05)
        assert gate.waiting == 0  # left the queue, will never run
        gate.release()
        assert await pool.run(wants_turn, timeout=2) == "ran"

    asyncio.run(main())
    assert pool.abandoned == 1
    pool.shutdown()


def test_checkpoint_outside_a_pool_is_a_no_op() -> None:
    checkpoint()
    assert issubclass(Abandoned, Exception)


# ---- through the proxy ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    (pdir / "roomy.yaml").write_text(ROOMY)
    (pdir / "slowrx.yaml").write_text(SLOW_REGEX)
    clients = [Client(name="small", key_sha256=hash_key("k-small")),
               Client(name="big", key_sha256=hash_key("k-big"), policy="roomy"),
               Client(name="rx", key_sha256=hash_key("k-rx"), policy="slowrx")]
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0, timeout=30)},
                            clients=clients, policy_dir=str(pdir), audit={"stdout": False, "path": None},
                            detection_timeout_seconds=8.0,
                            execution={"max_in_flight": 6, "max_in_flight_per_client": 4,
                                       "detection_chunk_chars": 2000})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


def _idle(proxy: ProxyServer, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(p.pending for p in proxy.runtime.guards.pools()):
        assert time.monotonic() < deadline, "guard pools did not drain"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "env" in request.fixturenames:
        proxy, fake = request.getfixturevalue("env")
        _idle(proxy)
        fake.reset()


def _msgs(n: int, width: int = 76) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"note {i:05d}: " + ("the weather is fine and the train is late " * 3)[:width]}
            for i in range(n)]


def _post(proxy: ProxyServer, key: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json=body, timeout=timeout)


def test_over_the_inspection_budget_is_413_uninspectable_and_never_sent(env: Any) -> None:
    proxy, fake = env
    body = {"model": "m", "messages": _msgs(10_000)}  # ~0.8 MB, under the 4 MiB body limit
    t0 = time.monotonic()
    r = _post(proxy, "k-small", body)
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "uninspectable" and "max_inspect_slots" in err["message"]
    assert "weather" not in r.text
    assert time.monotonic() - t0 < 10  # refused before any detection (which would take ~40 s of CPU)
    long_one = {"model": "m", "messages": [{"role": "user", "content": "word " * 30_000}]}
    r = _post(proxy, "k-small", long_one)
    assert r.status_code == 413 and "max_inspect_chars" in r.json()["error"]["message"]
    assert not fake.requests


def test_two_big_requests_do_not_stall_small_ones(env: Any) -> None:
    """The issue's scenario: two ~0.8 MB requests (10,000 short messages each) under a policy whose
    budget admits them. Their detection runs (and times out after 8 s), one chunk per turn; small
    requests sent meanwhile are each served promptly."""
    proxy, fake = env
    big = {"model": "m", "messages": _msgs(10_000)}
    assert len(httpx.Request("POST", "http://x", json=big).content) > 780_000
    results: dict[str, Any] = {}

    def send_big(i: int) -> None:
        results[f"big{i}"] = _post(proxy, "k-big", big)

    bigs = [threading.Thread(target=send_big, args=(i,)) for i in range(2)]
    for t in bigs:
        t.start()
    deadline = time.monotonic() + 30
    while proxy.runtime.guards.detection.pending < 2:  # both uploaded, parsed and in detection
        assert time.monotonic() < deadline
        time.sleep(0.05)
    times = []
    for i in range(8):
        t0 = time.monotonic()
        r = _post(proxy, "k-small", {"model": "m", "messages": [
            {"role": "user", "content": f"Hi, I am Jane Doe (ticket {i}), my email is jane{i}@example.com."}]})
        times.append(time.monotonic() - t0)
        assert r.status_code == 200, r.text
        assert f"jane{i}@example.com" in r.json()["choices"][0]["message"]["content"]  # masked, then restored
    for t in bigs:
        t.join(60)
    # before: every small request waited for both big ones (~90 s, then guard_timeout). Now each
    # waits for at most one chunk of each big one per detector turn. The bounds are loose: the
    # 2-core machine is shared with other test runs.
    assert sorted(times)[len(times) // 2] < 2.0 and max(times) < 6.0, times
    for k in ("big0", "big1"):  # the big ones fail closed on their own deadline, or finish
        assert results[k].status_code in (200, 500), results[k].text
        if results[k].status_code == 500:
            assert results[k].json()["error"]["code"] == "guard_timeout"
    assert not any("jane0@example.com" in str(r.json) for r in fake.requests)  # small ones were masked


def test_a_timed_out_detection_is_abandoned_and_the_next_request_is_served(env: Any, monkeypatch: Any) -> None:
    proxy, fake = env
    rt = proxy.runtime
    monkeypatch.setattr(rt.settings, "detection_timeout_seconds", 0.5)
    pool = rt.guards.detection
    before = pool.abandoned
    # a name in every message: the NER model reads each one (~10 s of detection in all)
    big = [{"role": "user", "content": f"Note {i:05d}: Maria Garcia called about order {i}."} for i in range(4_000)]
    r = _post(proxy, "k-big", {"model": "m", "messages": big})
    assert r.status_code == 500 and r.json()["error"]["code"] == "guard_timeout"
    deadline = time.monotonic() + 3
    while pool.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.pending == 0  # stopped within about one chunk, holding no turn
    assert pool.abandoned == before + 1
    assert not fake.requests
    monkeypatch.setattr(rt.settings, "detection_timeout_seconds", 8.0)
    t0 = time.monotonic()
    r = _post(proxy, "k-small", {"model": "m", "messages": [{"role": "user", "content": "Call John Smith please."}]})
    assert r.status_code == 200 and time.monotonic() - t0 < 2
    assert "John Smith" not in str(fake.requests[-1].json)


def test_saturated_proxy_answers_503_with_retry_after_fast(env: Any) -> None:
    proxy, fake = env
    fake.hang_seconds = 2.0  # every upstream call takes 2 s: requests pile up in flight

    async def main() -> list[tuple[int, float, httpx.Headers, dict[str, Any]]]:
        async with httpx.AsyncClient(timeout=30) as c:
            async def one(i: int) -> tuple[int, float, httpx.Headers, dict[str, Any]]:
                t0 = time.monotonic()
                key = "k-small" if i % 2 else "k-big"
                r = await c.post(proxy.base_url + "/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "m", "messages": [{"role": "user", "content": f"hello {i}"}]})
                return r.status_code, time.monotonic() - t0, r.headers, r.json()
            return await asyncio.gather(*(one(i) for i in range(12)))

    out = asyncio.run(main())
    ok = [o for o in out if o[0] == 200]
    refused = [o for o in out if o[0] in (503, 429)]
    assert len(ok) <= 6 and len(ok) + len(refused) == 12 and len(refused) >= 6, [o[0] for o in out]
    for status, took, headers, body in refused:
        assert headers["Retry-After"] == "1"
        assert took < 1.0  # refused at once, not after a wait
        assert body["error"]["code"] in ("overloaded", "rate_limit_exceeded")
        assert "hello" not in str(body)
    metrics = httpx.get(proxy.url + "/metrics").text
    assert 'trustproxy_overload_total{reason="in_flight"}' in metrics or \
        'trustproxy_overload_total{reason="client"}' in metrics
    # back to normal once the load is gone
    fake.hang_seconds = 0.0
    assert _post(proxy, "k-small", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200


def test_per_client_limit_answers_429(env: Any) -> None:
    proxy, fake = env
    fake.hang_seconds = 1.5

    async def main() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as c:
            async def one(i: int) -> int:
                r = await c.post(proxy.base_url + "/chat/completions", headers={"Authorization": "Bearer k-small"},
                                 json={"model": "m", "messages": [{"role": "user", "content": f"x {i}"}]})
                if r.status_code == 429:
                    assert r.headers["Retry-After"] == "1"
                    assert r.json()["error"]["code"] == "rate_limit_exceeded"
                return r.status_code
            return await asyncio.gather(*(one(i) for i in range(6)))

    codes = asyncio.run(main())
    assert sorted(codes) == [200] * 4 + [429] * 2, codes
    fake.hang_seconds = 0.0


def test_a_custom_regex_runs_with_a_time_limit(env: Any) -> None:
    proxy, fake = env
    t0 = time.monotonic()
    r = _post(proxy, "k-rx", {"model": "m", "messages": [{"role": "user", "content": "a" * 40}]})
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["code"] == "guard_timeout" and "custom:ticket" in err["message"] and "aaaa" not in r.text
    assert time.monotonic() - t0 < 8  # without the limit this one scan runs for minutes
    assert not fake.requests
    ok = _post(proxy, "k-rx", {"model": "m", "messages": [{"role": "user", "content": "code aab please"}]})
    assert ok.status_code == 200


def test_inspect_dry_run_has_the_budget_too(env: Any) -> None:
    proxy, _ = env
    r = httpx.post(proxy.base_url + "/trust/inspect", headers={"Authorization": "Bearer k-small"},
                   json={"text": "word " * 30_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "uninspectable"
    r = httpx.post(proxy.base_url + "/trust/inspect", headers={"Authorization": "Bearer k-small"},
                   json={"text": "Mail john@example.com"})
    assert r.status_code == 200 and r.json()["detected"][0]["entity_type"] == "EMAIL_ADDRESS"


# ---- output-PII windows in one pool job per feed -----------------------------------------------

class _Span:
    def __init__(self, start: int, end: int) -> None:
        self.start, self.end, self.entity_type, self.score = start, end, "US_SSN", 0.9


def _ssns(text: str) -> list[_Span]:
    import re

    return [_Span(m.start(), m.end()) for m in re.finditer(r"\d{3}-\d{2}-\d{4}", text)]


@pytest.mark.parametrize("size", [1, 7, 33, 64, 100, 10_000])
def test_offloaded_output_windows_equal_the_async_path(size: int) -> None:
    from trustproxy.pii.output import OutputPIIFilter
    from trustproxy.pii.vault import Vault

    reply = " ".join(f"Record {i} has number {100 + i}-{10 + i % 80:02d}-{1000 + i} on file." for i in range(40))
    pool = GuardPool("output", PoolSettings(threads=1, queue=8))
    calls = {"sync": 0}

    async def detect(text: str) -> list[_Span]:
        return _ssns(text)

    def detect_sync(text: str) -> list[_Span]:
        calls["sync"] += 1
        return _ssns(text)

    async def offload(fn: Any) -> str:
        return await pool.run(fn, timeout=5)

    async def run(f: OutputPIIFilter) -> str:
        out = [await f.feed(reply[i:i + size]) for i in range(0, len(reply), size)]
        return "".join(out) + await f.finish()

    plain = asyncio.run(run(OutputPIIFilter(detect, Vault(), hold_back=64)))
    jobs_before = pool.completed
    fast = asyncio.run(run(OutputPIIFilter(detect, Vault(), hold_back=64, detect_sync=detect_sync, offload=offload)))
    assert fast == plain and "<US_SSN>" in plain and "100-10-1000" not in plain
    if size == 10_000:  # one job for every window of the whole reply, one for the rest
        assert pool.completed - jobs_before == 2 and calls["sync"] > 10
    pool.shutdown()


# ---- every exit path closes upstream work ------------------------------------------------------

def test_a_content_block_closes_the_upstream_stream_at_once(env: Any) -> None:
    proxy, fake = env
    fake.reply_text = "You are a stupid fucking idiot and I hate you. " + "Then a long calm tail follows. " * 40
    fake.chunk_size = 8
    fake.chunk_delay = 0.05  # ~8 s for the whole reply
    t0 = time.monotonic()
    with httpx.stream("POST", proxy.base_url + "/chat/completions", headers={"Authorization": "Bearer k-small"},
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                      timeout=30) as r:
        body = "".join(r.iter_text())
    assert "content_filter" in body and "idiot" not in body
    deadline = time.monotonic() + 5
    while fake.cancelled < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.cancelled == 1 and fake.completed == 0  # the upstream call was closed, not read to its end
    assert time.monotonic() - t0 < 6


def test_scoring_of_a_request_that_ended_is_dropped_before_its_batch() -> None:
    from trustproxy.toxicity.batching import BatchingScorer

    class Slow:
        name = "slow"
        categories = ("toxicity",)

        def __init__(self) -> None:
            self.seen: list[str] = []

        def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
            self.seen += texts
            time.sleep(0.2)
            return [{"toxicity": 0.0} for _ in texts]

    scorer = Slow()
    b = BatchingScorer(scorer, max_batch=4, timeout=5, max_queue=3)

    async def main() -> None:
        first = asyncio.ensure_future(b.score("running"))
        await asyncio.sleep(0.05)  # its batch runs now; the next ones wait
        gone = asyncio.ensure_future(b.score("request went away"))
        kept = asyncio.ensure_future(b.score("still wanted"))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == {"toxicity": 0.0} and await first == {"toxicity": 0.0}
        waiting = [asyncio.ensure_future(b.score(f"w{i}")) for i in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):  # a fourth waiter while three wait and one batch runs
            await b.score("one too many")
        await asyncio.gather(*waiting)

    asyncio.run(main())
    assert "request went away" not in scorer.seen and "still wanted" in scorer.seen
    b.close()


def test_a_scoring_batch_that_hangs_fails_closed_with_guard_timeout() -> None:
    from trustproxy.toxicity.batching import BatchingScorer

    class Hung:
        name = "hung"
        categories = ("toxicity",)

        def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
            time.sleep(1.0)
            return [{"toxicity": 0.0} for _ in texts]

    b = BatchingScorer(Hung(), timeout=0.2)

    async def main() -> None:
        t0 = time.monotonic()
        with pytest.raises(GuardFailed) as e:
            await b.score("x")
        assert e.value.code == "guard_timeout" and time.monotonic() - t0 < 0.8

    asyncio.run(main())
    b.close()
