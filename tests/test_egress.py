"""Egress: the proxy dials only the providers it is configured for, and nothing at all in echo mode.

A fresh interpreter installs a guard on every way Python opens a connection (``socket.socket``
``connect``/``connect_ex``, ``socket.create_connection``, ``socket.getaddrinfo``, the asyncio
loop's ``create_connection``/``sock_connect``) *before* importing trustproxy, so import-time and
start-up phone-homes (litellm's cost map, tldextract's suffix list, the Hugging Face hub) are
caught too. Loopback is allowed and recorded; anything else is recorded and refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

GUARD = r'''
import asyncio, asyncio.base_events, asyncio.selector_events, ipaddress, json, socket, sys

DIALLED = []   # (host, port) of every connection attempt
REFUSED = []   # what the guard stopped: ("dns"|"connect", host, port)
_PHASE = ["startup"]


def _loopback(host):
    if host in ("localhost", "localhost.localdomain", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(kind, address):
    if isinstance(address, (str, bytes)):  # AF_UNIX paths stay on the machine
        return
    host, port = address[0], address[1]
    if kind == "connect":
        DIALLED.append((_PHASE[0], str(host), int(port)))
    if not _loopback(host):
        REFUSED.append((_PHASE[0], kind, str(host), port))
        raise OSError(f"egress guard: {kind} to a non-loopback address refused")


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_create_connection, _getaddrinfo = socket.create_connection, socket.getaddrinfo


def connect(self, address):
    _check("connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    _check("connect", address)
    return _connect_ex(self, address)


def create_connection(address, *a, **kw):
    _check("dns", address)
    return _create_connection(address, *a, **kw)


def getaddrinfo(host, port, *a, **kw):
    _check("dns", (host if not isinstance(host, bytes) else host.decode(), port or 0))
    return _getaddrinfo(host, port, *a, **kw)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo

_loop_cc = asyncio.base_events.BaseEventLoop.create_connection
_loop_sc = asyncio.selector_events.BaseSelectorEventLoop.sock_connect


async def loop_create_connection(self, protocol_factory, host=None, port=None, *a, **kw):
    if host is not None:
        _check("dns", (host, port or 0))
    return await _loop_cc(self, protocol_factory, host, port, *a, **kw)


async def loop_sock_connect(self, sock, address):
    _check("connect", address)
    return await _loop_sc(self, sock, address)


asyncio.base_events.BaseEventLoop.create_connection = loop_create_connection
asyncio.selector_events.BaseSelectorEventLoop.sock_connect = loop_sock_connect
'''

SCENARIO = r'''
import os
import httpx
import openai

import trustproxy  # noqa: F401
from tests.fakes.providers import FakeAnthropic, FakeOllama, FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

KEY = "tp-egress-client-key"
PII = "My name is John Smith, email john.smith@example.com, SSN 536-22-8106."
report = {}

# 1. the default proxy: the embedded echo route only, no keys (loopback)
_PHASE[0] = "echo-startup"
with ProxyServer(Settings(audit={"stdout": False, "path": os.environ["EGRESS_AUDIT"] + ".echo"})) as proxy:
    _PHASE[0] = "echo"
    c = httpx.Client(base_url=proxy.base_url, timeout=30)
    r = c.post("/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": PII}]})
    assert r.status_code == 200, r.text
    with c.stream("POST", "/chat/completions", json={"model": "echo", "stream": True,
                                                      "messages": [{"role": "user", "content": PII}]}) as r:
        assert r.status_code == 200 and b"[DONE]" in r.read()
    r = c.post("/embeddings", json={"model": "echo", "input": [PII, "plain"]})
    assert r.status_code == 200, r.text
    c.close()
    report["echo_proxy_port"] = proxy.port

# 2. three fake providers behind routes
_PHASE[0] = "providers-startup"
with FakeOpenAI(model="gpt-egress") as o, FakeAnthropic() as a, FakeOllama() as l:
    fakes = {"gpt": o, "claude": a, "llama": l}
    routes = {}
    for name, fake in fakes.items():
        p = fake.litellm_params()
        routes[name] = Route(model=p["model"], api_base=p["api_base"], api_key_env="TP_EGRESS_KEY",
                             timeout=10, max_retries=0)
    os.environ["TP_EGRESS_KEY"] = "sk-egress-provider-key"
    settings = Settings(routes=routes, clients=[Client(name="app", key_sha256=hash_key(KEY))],
                        audit={"stdout": False, "path": os.environ["EGRESS_AUDIT"]})
    with ProxyServer(settings) as proxy:
        _PHASE[0] = "providers"
        sdk = openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)
        for route in fakes:
            resp = sdk.chat.completions.create(model=route, messages=[{"role": "user", "content": PII}])
            assert resp.choices[0].message.content == PII, route
            text = "".join(ch.delta.content or "" for chunk in sdk.chat.completions.create(
                model=route, stream=True, messages=[{"role": "user", "content": PII}]) for ch in chunk.choices)
            assert text == PII, route
        emb = sdk.embeddings.create(model="gpt", input=[PII, "plain"])
        assert len(emb.data) == 2
        sdk.close()
        report["proxy_port"] = proxy.port
    report["fake_ports"] = {name: f.port for name, f in fakes.items()}
    report["fake_requests"] = {name: len(f.requests) for name, f in fakes.items()}

report["dialled"] = DIALLED
report["refused"] = REFUSED
print("EGRESS-REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                                    "https_proxy", "NO_PROXY", "no_proxy"))}
    # nothing preset: trustproxy's own offline switches must do the work
    for k in ("LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "LITELLM_TELEMETRY"):
        env.pop(k, None)
    env["PYTHONPATH"] = str(ROOT)
    env["EGRESS_AUDIT"] = str(tmp_path_factory.mktemp("egress") / "audit.jsonl")
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", GUARD + SCENARIO], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=240)
    lines = [x for x in res.stdout.splitlines() if x.startswith("EGRESS-REPORT ")]
    assert res.returncode == 0 and lines, (res.stdout[-3000:], res.stderr[-3000:])
    return json.loads(lines[-1][len("EGRESS-REPORT "):])


def test_nothing_is_refused(report: dict[str, Any]) -> None:
    """No phone-home at import, start-up or request time: no DNS or connect outside loopback."""
    assert report["refused"] == []


def test_echo_mode_dials_nothing_but_the_client_to_the_proxy(report: dict[str, Any]) -> None:
    echo = [(ph, h, p) for ph, h, p in report["dialled"] if ph.startswith("echo")]
    assert echo, "the guard saw no connection at all: is it installed?"
    assert {p for _, _, p in echo} == {report["echo_proxy_port"]}, echo
    assert all(ph == "echo" for ph, _, _ in echo), echo  # nothing during start-up


def test_provider_mode_dials_only_the_configured_providers(report: dict[str, Any]) -> None:
    prov = [(ph, h, p) for ph, h, p in report["dialled"] if ph.startswith("providers")]
    fake_ports = set(report["fake_ports"].values())
    allowed = fake_ports | {report["proxy_port"]}
    assert {p for _, _, p in prov} <= allowed, prov
    assert fake_ports <= {p for _, _, p in prov}  # each provider was reached (and only loopback)
    assert all(h in ("127.0.0.1", "localhost", "::1") for _, h, _ in prov), prov
    # start-up contacts no provider: models are registered, nothing is probed
    assert not [x for x in prov if x[0] == "providers-startup" and x[2] in fake_ports], prov


def test_no_connection_at_import_time(report: dict[str, Any]) -> None:
    assert not [x for x in report["dialled"] if x[0] == "startup"]


CONTROL = r'''
import asyncio, os, socket
import httpx

def attempt(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - refused, whatever the library wraps it in
        pass

_PHASE[0] = "control"
attempt(lambda: socket.socket().connect(("192.0.2.1", 443)))
attempt(lambda: socket.create_connection(("example.com", 443), timeout=1))
attempt(lambda: asyncio.run(asyncio.open_connection("198.51.100.1", 443)))
attempt(lambda: httpx.get("https://example.org/", timeout=1))
# litellm without trustproxy's offline switches fetches its cost map from GitHub at import
os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
import litellm  # noqa: E402,F401
print("EGRESS-REPORT " + json.dumps({"refused": REFUSED}))
'''


def test_the_guard_catches_what_it_should() -> None:
    """Negative control: the guard sees raw sockets, DNS, asyncio and httpx, and the phone-home
    of a library imported without trustproxy's offline switches."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", GUARD + CONTROL], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    lines = [x for x in res.stdout.splitlines() if x.startswith("EGRESS-REPORT ")]
    assert res.returncode == 0 and lines, res.stderr[-3000:]
    refused = {(kind, host) for _, kind, host, _ in json.loads(lines[-1][len("EGRESS-REPORT "):])["refused"]}
    assert {("connect", "192.0.2.1"), ("dns", "example.com"), ("dns", "198.51.100.1"),
            ("dns", "example.org"), ("dns", "raw.githubusercontent.com")} <= refused, refused
