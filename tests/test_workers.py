"""``trustproxy serve --workers 2`` as a real subprocess: requests spread over both workers,
metrics summed across workers, one audit chain per worker verified by ``trustproxy audit
verify``, hot reload in every worker, a killed worker restarted, and SIGTERM draining
in-flight streams on several workers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.providers import FakeOpenAI
from trustproxy.errors import PolicyError
from trustproxy.server import workers as workers_mod
from trustproxy.server.workers import cpu_plan, default_workers
from trustproxy.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "TP_WORKERS_PROVIDER_KEY"
STARTUP = 300.0
#: the fixture pins its two workers to these CPUs (two distinct ones where the machine has two)
_ALLOWED = sorted(os.sched_getaffinity(0))
PIN = (_ALLOWED * 2)[:2]


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "trustproxy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "trustproxy.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    base: Path
    fake: FakeOpenAI

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def audit(self) -> Path:
        return self.base / "audit.jsonl"

    def log(self) -> str:
        return (self.base / "serve.log").read_text(encoding="utf-8", errors="replace")

    def chat(self, text: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + "/v1/chat/completions", timeout=60,
                          json={"model": "m", "messages": [{"role": "user", "content": text}], **kw})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("workers")
    pol = base / "policies"
    pol.mkdir()
    shutil.copy(ROOT / "policies" / "default.yaml", pol / "default.yaml")
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        cfg = {"routes": {"m": {"model": p["model"], "api_base": p["api_base"], "api_key_env": KEY_ENV,
                                "max_retries": 0, "timeout": 30}},
               "shutdown_grace_seconds": 15, "audit": {"path": str(base / "audit.jsonl"), "stdout": False},
               "cpu_affinity": ",".join(map(str, PIN))}
        (base / "trustproxy.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        port = _free_port()
        env = {**os.environ, KEY_ENV: "sk-workers"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(base / "serve.log", "wb") as err:
            proc = subprocess.Popen([*_cli(), "serve", "--workers", "2", "--config", str(base / "trustproxy.yaml"),
                                     "--port", str(port), "--policy-dir", str(pol)],
                                    stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=base)
        s = Served(proc, port, base, fake)
        try:
            _wait(lambda: s.log().count("trustproxy ready") >= 2 or proc.poll() is not None, STARTUP,
                  "both workers to be ready", 0.5)
            assert proc.poll() is None, s.log()[-3000:]
            yield s
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _spread(s: Served, n: int) -> list[httpx.Response]:
    """n concurrent requests (the upstream takes 0.3 s, so both workers take some)."""
    s.fake.hang_seconds = 0.3

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as c:
            return list(await asyncio.gather(*(c.post(s.url + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": f"Hello, I am Jane Roe, mail jr{i}@example.com"}]})
                for i in range(n))))
    try:
        return asyncio.run(main())
    finally:
        s.fake.hang_seconds = 0.0


def _metric(text: str, name: str) -> float:
    return sum(sample.value for fam in text_string_to_metric_families(text) for sample in fam.samples
               if sample.name == name)


def test_default_workers_is_the_usable_cpu_count() -> None:
    n = default_workers()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def _thread_cpus(pid: int) -> set[frozenset[int]]:
    """The CPU sets of every thread of a process."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.add(frozenset(os.sched_getaffinity(int(tid))))
        except OSError:  # the thread ended
            pass
    return out


def test_cpu_plan_pins_only_what_it_owns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_mod, "_allowed_cpus", lambda: [2, 3])
    assert cpu_plan("auto", 2) == [2, 3]       # as many CPUs as workers: each its own
    assert cpu_plan("auto", 1) is None         # a shared set (a node's CPUs): never pile onto the first
    assert cpu_plan("auto", 3) is None
    assert cpu_plan("off", 2) is None
    assert cpu_plan("3", 2) == [3, 3]
    assert cpu_plan("2-3", 3) == [2, 3, 2]     # round robin
    with pytest.raises(PolicyError) as e:
        cpu_plan("1,3", 2)
    assert e.value.problems == ["cpu_affinity: CPU 1 is not one this process may run on (allowed: 2,3)"]


@pytest.mark.parametrize("bad", ["banana", "1-", "3-1", "0,,1", "9999"])
def test_cpu_affinity_setting_is_validated(tmp_path: Path, bad: str) -> None:
    cfg = tmp_path / "trustproxy.yaml"
    cfg.write_text(yaml.safe_dump({"cpu_affinity": bad}), encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_settings(cfg)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f"{cfg}: cpu_affinity: ")
    with pytest.raises(PolicyError) as e:
        load_settings(None, cpu_affinity=bad)
    assert e.value.problems[0].startswith("--cpu-affinity: ")
    assert load_settings(None, cpu_affinity=" 0-1,3 ").cpu_affinity == "0-1,3"


def test_serve_refuses_a_cpu_it_may_not_use(tmp_path: Path) -> None:
    out = subprocess.run([*_cli(), "serve", "--workers", "2", "--port", str(_free_port()), "--cpu-affinity", "4095"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "cpu_affinity: CPU 4095 is not one this process may run on" in out.stderr


def test_pin_process_pins_threads_before_and_after() -> None:
    cpu = _ALLOWED[-1]
    code = (
        "import os, threading, time\n"
        "from trustproxy.server.workers import pin_process\n"
        "ev = threading.Event()\n"
        "t = threading.Thread(target=ev.wait, daemon=True); t.start()\n"
        f"pin_process({cpu})\n"
        "u = threading.Thread(target=ev.wait, daemon=True); u.start()\n"
        "sets = {frozenset(os.sched_getaffinity(int(x))) for x in os.listdir('/proc/self/task')}\n"
        "ev.set(); t.join(); u.join()\n"
        "print(sorted(map(sorted, sets)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[[{cpu}]]"


def test_requests_metrics_and_audit_across_workers(served: Served) -> None:
    s = served
    rs: list[httpx.Response] = []
    for _ in range(5):  # until both workers have written events (the kernel picks the acceptor)
        rs += _spread(s, 12)
        chains = sorted(p.name for p in s.base.glob("audit.jsonl.w[0-9]"))
        if len(chains) == 2 and all(p.stat().st_size for p in s.base.glob("audit.jsonl.w[0-9]")):
            break
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200][:2]
    assert all("@example.com" in r.json()["choices"][0]["message"]["content"] for r in rs)
    assert not any("@example.com" in json.dumps(r.json) for r in s.fake.requests)
    assert chains == ["audit.jsonl.w0", "audit.jsonl.w1"]
    time.sleep(0.5)  # the audit writer threads
    events = [json.loads(line) for p in s.base.glob("audit.jsonl.w[0-9]") for line in p.read_text().splitlines()]
    assert {e["chain"] for e in events} == {"w0", "w1"}
    chat_events = [e for e in events if e["route"] == "m"]
    assert len(chat_events) == len(rs)
    # metrics: any worker answers with the sum over both
    totals = set()
    for _ in range(6):
        totals.add(_metric(httpx.get(s.url + "/metrics").text, "trustproxy_requests_total"))
    assert totals == {float(len(rs))}, totals
    out = subprocess.run([*_cli(), "audit", "verify", str(s.audit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 worker chains" in out.stdout and f"ok: {len(events)} events" in out.stdout
    # tampering with one chain is caught
    w1 = s.base / "audit.jsonl.w1"
    copy = s.base / "tampered"
    copy.mkdir(exist_ok=True)
    for p in s.base.glob("audit.jsonl.w[0-9]*"):
        shutil.copy(p, copy / p.name)
    lines = (copy / w1.name).read_text().splitlines()
    ev = json.loads(lines[0])
    ev["status"] = 500
    lines[0] = json.dumps(ev)
    (copy / w1.name).write_text("\n".join(lines) + "\n")
    bad = subprocess.run([*_cli(), "audit", "verify", str(copy / "audit.jsonl")], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "audit.jsonl.w1:1" in bad.stdout


def test_hot_reload_reaches_every_worker(served: Served) -> None:
    s = served
    before = {r.headers["x-trustproxy-policy-version"] for r in _spread(s, 8)}
    assert len(before) == 1
    pol = s.base / "policies" / "default.yaml"
    pol.write_text(pol.read_text().replace("description: >-", "description: >-\n  Reloaded.", 1))

    def all_new() -> bool:
        versions = {r.headers["x-trustproxy-policy-version"] for r in _spread(s, 10)}
        return bool(versions) and not (versions & before)
    _wait(all_new, 60, "every worker to serve the edited policy", 0.5)
    # ... and every one keeps doing so
    assert not ({r.headers["x-trustproxy-policy-version"] for r in _spread(s, 16)} & before)


def test_a_refused_pin_runs_unpinned(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import errno

    def refuse(pid: int, cpus: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    with caplog.at_level("WARNING", logger="trustproxy.workers"):
        assert workers_mod.pin_process(0) is False
    assert "running unpinned" in caplog.text


def test_workers_and_all_their_threads_are_pinned(served: Served) -> None:
    s = served
    assert all(r.status_code == 200 for r in _spread(s, 8))  # the guard pools' threads exist by now
    kids = _children(s.proc.pid)
    assert len(kids) == 2
    per_worker = sorted(_thread_cpus(k) for k in kids)
    assert sorted(per_worker) == sorted([{frozenset({PIN[0]})}, {frozenset({PIN[1]})}]), per_worker
    assert _thread_cpus(s.proc.pid) == {frozenset(_ALLOWED)}  # the supervisor itself is not pinned
    assert f"pinned to CPUs {PIN[0]},{PIN[1]}" in s.log()


def test_a_killed_worker_is_restarted(served: Served) -> None:
    s = served
    kids = _children(s.proc.pid)
    assert len(kids) == 2
    cpus = os.sched_getaffinity(kids[0])
    os.kill(kids[0], signal.SIGKILL)
    _wait(lambda: len(set(_children(s.proc.pid)) - {kids[0]}) == 2, 30, "a new worker process")
    _wait(lambda: s.log().count("trustproxy ready") >= 3, STARTUP, "the new worker to be ready", 0.5)
    assert all(r.status_code == 200 for r in _spread(s, 8))
    new = (set(_children(s.proc.pid)) - set(kids)).pop()
    assert _thread_cpus(new) == {frozenset(cpus)}  # started again with its own number, so its own CPU


def test_sigterm_drains_inflight_streams_on_every_worker(served: Served) -> None:
    # SO_REUSEPORT spreads connections by a hash of their addresses: with 6 streams all landed
    # on one worker once in CI (p = 2 x 2^-6); with 16, p = 2^-15.
    STREAMS = 16  # noqa: N806
    s = served
    s.fake.reply_text = "".join(f"Line {i:02d} is fine. " for i in range(10)).strip()
    s.fake.chunk_size = 7
    s.fake.chunk_delay = 0.1  # ~2.5 s per stream
    results: list[Any] = []

    async def stream_one(c: httpx.AsyncClient) -> str:
        out = []
        async with c.stream("POST", s.url + "/v1/chat/completions", json={
                "model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for ch in json.loads(line[6:]).get("choices", []):
                        out.append(ch.get("delta", {}).get("content") or "")
                elif line == "data: [DONE]":
                    out.append("<DONE>")
        return "".join(out)

    async def main() -> None:
        async with httpx.AsyncClient(timeout=60) as c:
            tasks = [asyncio.create_task(stream_one(c)) for _ in range(STREAMS)]
            deadline = time.monotonic() + 30
            while s.fake.active < STREAMS:
                assert time.monotonic() < deadline, "streams did not start"
                await asyncio.sleep(0.02)
            s.proc.send_signal(signal.SIGTERM)
            results.extend(await asyncio.gather(*tasks, return_exceptions=True))

    per_worker = {p.name: len(p.read_text().splitlines()) for p in s.base.glob("audit.jsonl.w[0-9]")}
    asyncio.run(main())
    assert s.proc.wait(timeout=30) == 0, s.log()[-3000:]
    for r in results:
        assert r == s.fake.reply_text + "<DONE>", r
    time.sleep(0.2)
    after = {p.name: len(p.read_text().splitlines()) for p in s.base.glob("audit.jsonl.w[0-9]")}
    assert sum(after.values()) - sum(per_worker.values()) == STREAMS  # every drained stream was audited
    assert sum(1 for k in after if after[k] > per_worker.get(k, 0)) == 2, (per_worker, after)  # on both workers
    assert "Traceback" not in s.log()
    out = subprocess.run([*_cli(), "audit", "verify", str(s.audit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout
