"""Operations: graceful shutdown of ``trustproxy serve`` (a real subprocess), refusing to start,
health/readiness, hot reload of policies in a running proxy (plain edits and Kubernetes
ConfigMap ``..data`` swaps), metrics, and a compliance officer's policy from draft to live.

Loading the detector takes a while, so the two ``serve`` subprocesses are launched once for the
module, first thing, and load while the in-process tests run; their tests come last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy import cli
from trustproxy.settings import AuditSettings, Client, Route, Settings, hash_key

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DEFAULT = ROOT / "policies" / "default.yaml"
PROVIDER_KEY_ENV = "TP_OPS_PROVIDER_KEY"
APP_KEY = "tp-ops-app-key-0001"
ACME_KEY = "tp-ops-acme-key-0002"
CODENAME = "Bluebird"
STARTUP_TIMEOUT = 240.0


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "trustproxy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "trustproxy.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


# ---- trustproxy serve as a subprocess ---------------------------------------------------------

@dataclass
class Served:
    """A ``trustproxy serve`` subprocess and the fake provider behind its route ``slow``."""

    proc: subprocess.Popen[bytes]
    port: int
    fake: FakeOpenAI
    grace: float
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited early ({self.proc.returncode}): {self.stderr()[-2000:]}")
            try:
                return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        _wait(ready, STARTUP_TIMEOUT, "trustproxy serve to become ready", 0.5)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _launch(base: Path, fake: FakeOpenAI, grace: float) -> Served:
    pol = base / "policies"
    pol.mkdir(parents=True)
    shutil.copy(SHIPPED_DEFAULT, pol / "default.yaml")
    p = fake.litellm_params()
    config = {"routes": {"slow": {"model": p["model"], "api_base": p["api_base"], "api_key_env": PROVIDER_KEY_ENV,
                                  "timeout": 30, "max_retries": 0}},
              "shutdown_grace_seconds": grace, "audit": {"path": str(base / "audit.jsonl"), "stdout": False}}
    (base / "trustproxy.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = _free_port()
    log = base / "serve.log"
    env = {**os.environ, PROVIDER_KEY_ENV: "sk-ops-provider"}
    with open(log, "wb") as err:
        # one process here (several workers: tests/test_workers.py), so the module loads two models, not 2 x CPUs
        proc = subprocess.Popen([*_cli(), "serve", "--workers", "1", "--config", str(base / "trustproxy.yaml"),
                                 "--host", "127.0.0.1", "--port", str(port), "--policy-dir", str(pol)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=base)
    return Served(proc, port, fake, grace, log)


GRACEFUL_TESTS = ("test_sigterm_lets_the_inflight_stream_finish", "test_stream_longer_than_grace_is_cut")


@pytest.fixture(scope="module", autouse=True)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Both servers start loading at once, before anything else in this module (only when a
    shutdown test was selected)."""
    if not any(item.name in GRACEFUL_TESTS for item in request.session.items):
        yield {}
        return
    with FakeOpenAI(model="slow-fake") as f1, FakeOpenAI(model="slow-fake") as f2:
        f1.chunk_size = f2.chunk_size = 7
        f1.chunk_delay = 0.12   # ~3 s stream (below)
        f2.chunk_delay = 0.1    # ~5 s stream
        servers = {"graceful": _launch(tmp_path_factory.mktemp("serve_grace"), f1, 10.0),
                   "cut": _launch(tmp_path_factory.mktemp("serve_cut"), f2, 1.0)}
        try:
            yield servers
        finally:
            for s in servers.values():
                s.stop()


@dataclass
class StreamReader:
    """Reads one streamed chat completion on a thread, keeping every SSE data line."""

    url: str
    text: str
    lines: list[str] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> "StreamReader":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": self.text}]}
        try:
            with httpx.stream("POST", self.url + "/v1/chat/completions", json=body, timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.lines.append(line[6:])
        except httpx.HTTPError as exc:  # a cut stream ends with an incomplete body
            self.error = exc

    def content(self) -> str:
        out = []
        for data in self.lines:
            if data == "[DONE]":
                continue
            for ch in json.loads(data).get("choices") or []:
                out.append((ch.get("delta") or {}).get("content") or "")
        return "".join(out)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "stream did not end"


def _sentences(n: int) -> str:
    return "".join(f"Line {i:02d} is fine. " for i in range(n)).strip()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


# ---- refusing to start ------------------------------------------------------------------------

def test_refuses_non_loopback_without_client_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "trustproxy.yaml"
    cfg.write_text("routes:\n  echo: {model: echo}\n", encoding="utf-8")
    out = subprocess.run([*_cli(), "serve", "--config", str(cfg), "--host", "0.0.0.0", "--port", str(_free_port())],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode != 0
    assert "refusing to listen on 0.0.0.0 without client API keys" in out.stderr
    assert "allow_unauthenticated" in out.stderr
    assert "Traceback" not in out.stderr


def test_refuses_invalid_policy_naming_file_line_col(tmp_path: Path) -> None:
    pol = tmp_path / "policies"
    pol.mkdir()
    text = SHIPPED_DEFAULT.read_text(encoding="utf-8").replace("threshold: 0.5\n", "threshold: 5\n", 1)
    (pol / "default.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("threshold: 5") + 1
    cfg = tmp_path / "trustproxy.yaml"
    cfg.write_text(yaml.safe_dump({"routes": {"echo": {"model": "echo"}}, "audit": {"path": str(tmp_path / "a.jsonl")}}),
                   encoding="utf-8")
    out = subprocess.run([*_cli(), "serve", "--config", str(cfg), "--port", str(_free_port()), "--policy-dir", str(pol)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode != 0
    assert re.search(rf"default\.yaml:{line}:\d+ threshold", out.stderr), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


# ---- the in-process proxy over a ConfigMap-shaped policy folder -------------------------------

class ConfigMapDir:
    """A folder laid out like a mounted Kubernetes ConfigMap: ``name -> ..data/name`` symlinks,
    ``..data -> ..<version>``; ``publish`` swaps ``..data`` atomically, as the kubelet does."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self.n = 0
        root.mkdir(parents=True)
        self.publish(files)
        for name in files:
            (root / name).symlink_to(Path("..data") / name)

    def publish(self, files: dict[str, str]) -> None:
        self.n += 1
        version = self.root / f"..2025_01_01_00_00_{self.n:02d}"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text, encoding="utf-8")
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.root / "..data")

    def read(self, name: str) -> str:
        return (self.root / name).read_text(encoding="utf-8")

    def edit_in_place(self, name: str, text: str) -> None:
        """What an editor does: write a new file beside the real one, then rename over it."""
        real = (self.root / name).resolve()
        tmp = real.with_name(real.name + ".swp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, real)


ACME_PLACEHOLDER = "name: acme\nextends: default\ndescription: placeholder until compliance writes the rules\n"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="gpt-fake") as f:
        yield f


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> ConfigMapDir:
    return ConfigMapDir(tmp_path_factory.mktemp("cm") / "policies",
                        {"default.yaml": SHIPPED_DEFAULT.read_text(encoding="utf-8"), "acme.yaml": ACME_PLACEHOLDER})


@pytest.fixture(scope="module")
def proxy(fake: FakeOpenAI, live: ConfigMapDir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    p = fake.litellm_params()
    os.environ[PROVIDER_KEY_ENV] = "sk-ops-provider"
    settings = Settings(
        policy_dir=str(live.root),
        routes={"gpt": Route(model=p["model"], api_base=p["api_base"], api_key_env=PROVIDER_KEY_ENV, timeout=10,
                             max_retries=0)},
        clients=[Client(name="app", key_sha256=hash_key(APP_KEY), tenant="ops"),
                 Client(name="acme-app", key_sha256=hash_key(ACME_KEY), tenant="acme", policy="acme")],
        audit=AuditSettings(path=str(tmp_path_factory.mktemp("audit") / "audit.jsonl"), stdout=False),
        shutdown_grace_seconds=1)
    with ProxyServer(settings) as server:
        yield server


@dataclass
class Sent:
    status: int
    headers: Mapping[str, str]
    reply: str
    provider_saw: str
    body: str


def chat(proxy: ProxyServer, fake: FakeOpenAI, text: str, key: str = APP_KEY) -> Sent:
    """One chat completion through the official SDK; what came back and what the provider saw."""
    fake.reset()
    client = openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt", messages=[{"role": "user", "content": text}])
    except openai.APIStatusError as err:
        return Sent(err.status_code, err.response.headers, "", json.dumps([r.json for r in fake.requests]),
                    err.response.text)
    reply = raw.parse().choices[0].message.content or ""
    return Sent(raw.status_code, raw.headers, reply, json.dumps([r.json for r in fake.requests]), raw.text)


def metric(proxy: ProxyServer, name: str, **labels: str) -> float:
    text = httpx.get(proxy.url + "/metrics").text
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def readyz(proxy: ProxyServer) -> dict[str, Any]:
    r = httpx.get(proxy.url + "/readyz")
    assert r.status_code == 200, r.text
    return dict(r.json())


def with_codenames(default_text: str, names: list[str]) -> str:
    """default.yaml plus a deny-list recognizer for ``names`` (a text edit, comments kept)."""
    rule = "  - {type: PROJECT_CODENAME, action: mask}\n"
    text = default_text.replace("entities:\n", "entities:\n" + rule, 1)
    return text + ("\ncustom_recognizers:\n  - name: codenames\n    type: PROJECT_CODENAME\n"
                   f"    deny_list: [{', '.join(names)}]\n    score: 0.9\n")


def test_healthz_and_readyz(proxy: ProxyServer) -> None:
    assert httpx.get(proxy.url + "/healthz").json() == {"status": "ok"}
    body = readyz(proxy)
    assert body["status"] == "ok"
    versions = body["policies"]["policies"]
    assert set(versions) == {"default", "acme"} and all(re.fullmatch(r"[0-9a-f]{12}", v) for v in versions.values())
    assert body["policies"]["last_error"] == []
    assert body["scorers"]["default"]["scorer"].startswith("offline:")
    assert body["routes"] == ["gpt"]


def test_readyz_503_before_the_runtime_is_ready() -> None:
    """``trustproxy serve`` binds its port only once the runtime is up (the probe is refused
    until then); the handler itself answers 503 while no runtime is ready."""
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from trustproxy.server.routes import readyz as handler

    resp = asyncio.run(handler(make_mocked_request("GET", "/readyz", app=web.Application())))
    assert resp.status == 503


def test_metrics_move(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    before = metric(proxy, "trustproxy_requests_total", route="gpt", status="200", policy="default")
    ent = metric(proxy, "trustproxy_entities_total", direction="in", entity_type="EMAIL_ADDRESS", action="mask")
    sent = chat(proxy, fake, "Write to jane.doe@example.com about the invoice.")
    assert sent.status == 200 and sent.reply == "Write to jane.doe@example.com about the invoice."
    assert "jane.doe@example.com" not in sent.provider_saw
    client = openai.OpenAI(base_url=proxy.base_url, api_key=APP_KEY, max_retries=0)
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt", stream=True, messages=[{"role": "user", "content": "Streams count too."}]) if c.choices]
    assert "".join(parts) == "Streams count too."
    assert metric(proxy, "trustproxy_requests_total", route="gpt", status="200", policy="default") == before + 2
    assert metric(proxy, "trustproxy_entities_total", direction="in", entity_type="EMAIL_ADDRESS",
                  action="mask") == ent + 1
    assert metric(proxy, "trustproxy_active_streams") == 0
    text = httpx.get(proxy.url + "/metrics").text
    assert "jane.doe" not in text and "example.com" not in text


def test_hot_reload_configmap_swap_edit_and_invalid_edit(proxy: ProxyServer, fake: FakeOpenAI,
                                                         live: ConfigMapDir) -> None:
    prompt = f"Ask the {CODENAME} team for the launch date."
    first = chat(proxy, fake, prompt)
    assert first.status == 200 and CODENAME in first.provider_saw
    v1 = first.headers["x-trustproxy-policy-version"]
    original = live.read("default.yaml")

    # 1. a ConfigMap update: the kubelet swaps ..data to a new version folder
    live.publish({"default.yaml": with_codenames(original, [CODENAME]), "acme.yaml": live.read("acme.yaml")})
    masked = _wait(lambda: (s := chat(proxy, fake, prompt)).status == 200 and CODENAME not in s.provider_saw and s,
                   10, "the new policy to take effect")
    assert "<PROJECT_CODENAME_1>" in masked.provider_saw
    assert masked.reply == prompt  # restored for the caller
    v2 = masked.headers["x-trustproxy-policy-version"]
    assert v2 != v1 and readyz(proxy)["policies"]["policies"]["default"] == v2

    # 2. an invalid edit in place: the previous policy stays in force, and it is reported
    errors = metric(proxy, "trustproxy_policy_reloads_total", result="error")
    good = live.read("default.yaml")
    bad = good.replace("threshold: 0.5\n", "threshold: 5\n", 1)
    bad_line = bad.splitlines().index("threshold: 5") + 1
    live.edit_in_place("default.yaml", bad)
    status = _wait(lambda: (b := readyz(proxy))["policies"]["last_error"] and b, 10, "the reload error")
    assert status["status"] == "degraded"
    assert any(re.search(rf"default\.yaml:{bad_line}:\d+ threshold", e) for e in status["policies"]["last_error"]), \
        status["policies"]["last_error"]
    assert metric(proxy, "trustproxy_policy_reloads_total", result="error") >= errors + 1
    still = chat(proxy, fake, prompt)
    assert still.status == 200 and CODENAME not in still.provider_saw
    assert still.headers["x-trustproxy-policy-version"] == v2

    # 3. a valid edit in place: picked up, error cleared
    live.edit_in_place("default.yaml", with_codenames(original, [CODENAME, "Kestrel"]))
    kestrel = _wait(lambda: (s := chat(proxy, fake, "Kestrel ships soon.")).status == 200
                    and "Kestrel" not in s.provider_saw and s, 10, "the fixed policy")
    assert kestrel.headers["x-trustproxy-policy-version"] not in (v1, v2)
    assert readyz(proxy)["policies"]["last_error"] == []


# ---- a compliance officer's policy, from draft to live ----------------------------------------

ACME_TYPO = """\
name: acme
extends: default
description: ACME Corp assistant - codenames masked, SSNs blocked, cards redacted.
entities:
  - {type: US_SSN, action: blok}
  - {type: CREDIT_CARD, action: redact}
  - {type: PROJECT_CODENAME, action: mask}
custom_recognizers:
  - name: product codenames
    type: PROJECT_CODENAME
    deny_lst: [Falcon, Osprey]
    score: 0.9
allow_list: [ACME Corp]
tests:
  - name: codenames masked, the company name kept
    text: "Ask the Falcon team at ACME Corp."
    expect:
      detected: [PROJECT_CODENAME]
      provider_sees: "Ask the <PROJECT_CODENAME_1> team at ACME Corp."
  - name: an SSN blocks the request
    text: "Employee SSN: 536-22-8147, please update payroll."
    expect: {blocked: true, actions: {US_SSN: block}}
  - name: card numbers are redacted for good
    text: "Expense card 4111 1111 1111 1111 was declined."
    expect:
      actions: {CREDIT_CARD: redact}
      provider_sees: "Expense card <CREDIT_CARD> was declined."
"""


def test_compliance_officer_writes_acme_policy(proxy: ProxyServer, fake: FakeOpenAI, live: ConfigMapDir,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "policies"  # the officer's working copy
    work.mkdir()
    (work / "default.yaml").write_text(live.read("default.yaml"), encoding="utf-8")
    acme = work / "acme.yaml"
    acme.write_text(ACME_TYPO, encoding="utf-8")

    out = subprocess.run([*_cli(), "policy", "check", str(acme)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert re.search(r"acme\.yaml:5:\d+ entities\[0\]\.action: 'blok' is not one of", out.stdout), out.stdout
    assert re.search(r"acme\.yaml:11:\d+ .*did you mean 'deny_list'", out.stdout), out.stdout

    acme.write_text(ACME_TYPO.replace("blok", "block").replace("deny_lst", "deny_list"), encoding="utf-8")
    out = subprocess.run([*_cli(), "policy", "check", str(acme)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok acme "), out.stdout
    capsys.readouterr()
    assert cli.main(["policy", "test", str(acme)]) == 0  # in-process: the detector is already loaded
    report = capsys.readouterr().out
    assert report.count("PASS ") == 3 and "FAIL" not in report

    # before: the placeholder acme policy (default rules) masks the SSN instead of blocking
    ssn = "Employee SSN: 536-22-8147, please update payroll."
    assert chat(proxy, fake, ssn, key=ACME_KEY).status == 200

    live.publish({"default.yaml": live.read("default.yaml"), "acme.yaml": acme.read_text(encoding="utf-8")})
    blocked = _wait(lambda: (s := chat(proxy, fake, ssn, key=ACME_KEY)).status == 400 and s, 10,
                    "the acme policy to take effect")
    err = json.loads(blocked.body)["error"]
    assert err["code"] == "policy_blocked" and "US_SSN" in err["message"]
    assert "536-22-8147" not in blocked.body and blocked.provider_saw == "[]"

    card = chat(proxy, fake, "Expense card 4111 1111 1111 1111 was declined.", key=ACME_KEY)
    assert card.status == 200 and card.headers["x-trustproxy-policy"] == "acme"
    assert "<CREDIT_CARD>" in card.provider_saw and "4111" not in card.provider_saw
    assert "4111 1111 1111 1111" not in card.reply  # redacted for good

    company = chat(proxy, fake, "Ask the Falcon team at ACME Corp.", key=ACME_KEY)
    assert "ACME Corp" in company.provider_saw and "Falcon" not in company.provider_saw
    assert company.reply == "Ask the Falcon team at ACME Corp."

    other = chat(proxy, fake, ssn)  # other tenants keep the default policy
    assert other.status == 200 and other.headers["x-trustproxy-policy"] == "default"


# ---- graceful shutdown (subprocesses launched at module start) --------------------------------

def test_sigterm_lets_the_inflight_stream_finish(served: dict[str, Served]) -> None:
    s = served["graceful"]
    s.wait_ready()
    text = _sentences(12)  # 12 x 17 chars / 7 per chunk x 0.12 s: ~3 s
    reader = StreamReader(s.url, text).start()
    _wait(lambda: s.fake.active == 1, 30, "the upstream stream to start", 0.02)  # mid-stream now
    s.proc.send_signal(signal.SIGTERM)
    _wait(lambda: _refused(s.port), 5, "the listener to close", 0.05)
    refused_mid_stream = reader.alive()
    reader.join(30)
    assert reader.error is None, reader.error
    assert reader.content() == text
    assert reader.lines[-1] == "[DONE]"
    assert refused_mid_stream  # new connections were refused while the stream still ran
    assert s.proc.wait(timeout=s.grace + 5) == 0
    assert "Traceback" not in s.stderr()


def test_stream_longer_than_grace_is_cut(served: dict[str, Served]) -> None:
    s = served["cut"]
    s.wait_ready()
    text = _sentences(20)  # ~5 s, grace 1 s
    reader = StreamReader(s.url, text).start()
    _wait(lambda: s.fake.active == 1, 30, "the upstream stream to start", 0.02)
    s.proc.send_signal(signal.SIGTERM)
    reader.join(15)
    assert "[DONE]" not in reader.lines
    got = reader.content()
    assert text.startswith(got) and got != text  # (the default policy may hold the whole reply back)
    assert s.proc.wait(timeout=15) == 0
    _wait(lambda: s.fake.cancelled == 1, 5, "the upstream call to be cancelled", 0.05)
    assert s.fake.completed == 0
