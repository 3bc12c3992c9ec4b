"""The official openai SDK against the proxy, with three real fake providers behind it
(OpenAI-compatible, Anthropic Messages, Ollama): same shapes whatever the provider."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from tests.fakes.base import Reply, ToolCall
from tests.fakes.providers import FakeAnthropic, FakeOllama, FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

CLIENT_KEY = "tp-test-client-key-0001"
PII = "My name is John Smith, email john.smith@example.com, SSN 536-22-8106."
RAW_VALUES = ["John Smith", "john.smith@example.com", "536-22-8106"]


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI(model="gpt-fake") as o, FakeAnthropic() as a, FakeOllama() as l:
        yield {"gpt": o, "claude": a, "llama": l}


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    routes = {}
    for name, fake in fakes.items():
        p = fake.litellm_params()
        routes[name] = Route(model=p["model"], api_base=p["api_base"], api_key_env="TP_TEST_PROVIDER_KEY",
                             timeout=3, max_retries=0)
    routes["gpt-zdr"] = routes["gpt"].model_copy(update={"zero_data_retention": True})
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    settings = Settings(routes=routes, clients=[Client(name="app", key_sha256=hash_key(CLIENT_KEY), tenant="acme")],
                        max_body_bytes=64 * 1024, audit={"path": str(audit), "stdout": False})
    import os
    os.environ["TP_TEST_PROVIDER_KEY"] = "sk-provider-secret-canary"
    with ProxyServer(settings) as p:
        p.audit_path = audit
        yield p


@pytest.fixture(autouse=True)
def _reset(fakes):
    for f in fakes.values():
        f.reset()
        f.script = None
        f.reply_text = None
        f.chunk_size = 4
        f.fail_status = None
        f.hang_seconds = 0.0
        f.break_stream_after = None
        f.malformed_json = False
    yield


def sdk(proxy, **kw):
    return openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0, **kw)


def provider_saw(fake) -> str:
    return json.dumps([r.json for r in fake.requests])


@pytest.mark.parametrize("route", ["gpt", "claude", "llama"])
def test_plain_round_trip(proxy, fakes, route):
    resp = sdk(proxy).chat.completions.create(model=route, messages=[
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": PII}])
    assert resp.choices[0].message.content == PII
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    seen = provider_saw(fakes[route])
    for v in RAW_VALUES:
        assert v not in seen
    assert "<PERSON_1>" in seen and "<US_SSN_1>" in seen, seen


@pytest.mark.parametrize("route", ["gpt", "claude", "llama"])
def test_streamed_round_trip(proxy, fakes, route):
    fakes[route].chunk_size = 1  # one SSE/NDJSON event per character: splits inside every placeholder
    parts = []
    finish = None
    for chunk in sdk(proxy).chat.completions.create(model=route, messages=[{"role": "user", "content": PII}],
                                                   stream=True):
        for ch in chunk.choices:
            if ch.delta.content:
                parts.append(ch.delta.content)
                assert "<" not in ch.delta.content  # no placeholder fragment ever reaches the client
            finish = ch.finish_reason or finish
    assert "".join(parts) == PII
    assert finish == "stop"


@pytest.mark.parametrize("route", ["gpt", "claude", "llama"])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_restored_as_valid_json(proxy, fakes, route, stream):
    def script(body):
        text = json.dumps(body)
        assert "john.smith@example.com" not in text
        return Reply(tool_calls=[ToolCall(name="send_email",
                                          arguments=json.dumps({"to": "<EMAIL_ADDRESS_1>", "who": "<PERSON_1>"}))])
    fakes[route].script = script
    fakes[route].chunk_size = 3
    tools = [{"type": "function", "function": {"name": "send_email", "description": "Send an email",
                                               "parameters": {"type": "object", "properties": {
                                                   "to": {"type": "string"}, "who": {"type": "string"}}}}}]
    client = sdk(proxy)
    msgs = [{"role": "user", "content": PII}]
    if not stream:
        resp = client.chat.completions.create(model=route, messages=msgs, tools=tools)
        calls = resp.choices[0].message.tool_calls
        name, args = calls[0].function.name, calls[0].function.arguments
        assert resp.choices[0].finish_reason == "tool_calls"
    else:
        name, args = None, ""
        for chunk in client.chat.completions.create(model=route, messages=msgs, tools=tools, stream=True):
            for ch in chunk.choices:
                for tc in ch.delta.tool_calls or []:
                    name = tc.function.name or name
                    args += tc.function.arguments or ""
    assert name == "send_email"
    assert json.loads(args) == {"to": "john.smith@example.com", "who": "John Smith"}


def test_n_choices_and_content_parts(proxy, fakes):
    resp = sdk(proxy).chat.completions.create(model="gpt", n=2, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Call John Smith at "},
                                     {"type": "text", "text": "415-555-0123 today."}]}])
    assert len(resp.choices) == 2
    for ch in resp.choices:
        assert ch.message.content == "Call John Smith at 415-555-0123 today."
    assert "415-555-0123" not in provider_saw(fakes["gpt"])


def test_n_choices_streamed(proxy, fakes):
    fakes["gpt"].chunk_size = 2
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in sdk(proxy).chat.completions.create(model="gpt", n=2, stream=True,
                                                   messages=[{"role": "user", "content": PII}]):
        for ch in chunk.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            if ch.finish_reason:
                finishes[ch.index] = ch.finish_reason
    assert texts == {0: PII, 1: PII}
    assert finishes == {0: "stop", 1: "stop"}


def test_async_sdk_streaming(proxy):
    import asyncio

    async def go():
        client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)
        out = []
        stream = await client.chat.completions.create(model="claude", stream=True,
                                                      messages=[{"role": "user", "content": PII}])
        async for chunk in stream:
            for ch in chunk.choices:
                out.append(ch.delta.content or "")
        return "".join(out)

    assert asyncio.run(go()) == PII


def test_embeddings_masked(proxy, fakes):
    resp = sdk(proxy).embeddings.create(model="gpt", input=["John Smith lives here", "plain text"])
    assert len(resp.data) == 2
    assert "John Smith" not in provider_saw(fakes["gpt"])


# -- auth -------------------------------------------------------------------------------------
def test_auth_required_and_key_not_echoed(proxy):
    bad = "tp-wrong-key-canary-77"
    r = httpx.post(proxy.base_url + "/chat/completions", headers={"Authorization": f"Bearer {bad}"},
                   json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401
    assert bad not in r.text
    assert r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(proxy.base_url + "/models").status_code == 401
    assert httpx.get(proxy.url + "/healthz").status_code == 200


# -- bad input --------------------------------------------------------------------------------
def _post(proxy, body, raw=None, headers=None):
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json", **(headers or {})}
    return httpx.post(proxy.base_url + "/chat/completions", content=raw if raw is not None else json.dumps(body),
                      headers=h)


@pytest.mark.parametrize("body,raw,status,code", [
    (None, b"{not json", 400, "invalid_json"),
    ({"model": "gpt"}, None, 400, None),
    ({"model": "gpt", "messages": "hi"}, None, 400, None),
    ({"model": "gpt", "messages": [{"role": "wizard", "content": "x"}]}, None, 400, None),
    ({"model": "gpt", "messages": [{"role": "user", "content": 5}]}, None, 400, None),
    ({"model": "gpt", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     None, 400, None),
    ({"model": "gpt", "api_base": "http://evil.example", "messages": [{"role": "user", "content": "x"}]},
     None, 400, "forbidden_field"),
    ({"model": "gpt", "extra_headers": {"x": "y"}, "messages": [{"role": "user", "content": "x"}]},
     None, 400, "forbidden_field"),
    ({"model": "gpt", "messages": [{"role": "user", "content": "x" * 70000}]}, None, 413, "payload_too_large"),
])
def test_bad_input_gets_clear_openai_errors(proxy, fakes, body, raw, status, code):
    r = _post(proxy, body, raw)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"]
    if code:
        assert err["code"] == code
    assert not fakes["gpt"].requests


def test_unknown_fields_are_dropped_not_forwarded(proxy, fakes):
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hello"}], "some_new_field": 1})
    assert r.status_code == 200
    assert "some_new_field" not in fakes["gpt"].last.json


def test_unknown_v1_paths_404(proxy, fakes):
    for path in ("/v1/completions", "/v1/files", "/v1/audio/speech", "/v1/assistants"):
        r = httpx.post(proxy.url + path, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, json={})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


# -- upstream faults --------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["gpt", "claude"])
def test_upstream_429_keeps_retry_after(proxy, fakes, route):
    fakes[route].fail_status = 429
    fakes[route].retry_after = "7"
    with pytest.raises(openai.RateLimitError) as ei:
        sdk(proxy).chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.response.headers.get("retry-after") == "7"
    assert ei.value.body["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("status,expect", [(500, 502), (503, 503), (400, 400), (401, 502)])
def test_upstream_errors_map(proxy, fakes, status, expect):
    fakes["gpt"].fail_status = status
    fakes["gpt"].fail_message = "upstream said: John Smith"  # upstream bodies are never copied
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == expect
    assert "John Smith" not in r.text and "upstream said" not in r.text


def test_upstream_timeout_is_504(proxy, fakes):
    fakes["gpt"].hang_seconds = 10
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("route", ["gpt", "claude", "llama"])
def test_broken_stream_ends_with_error_event(proxy, fakes, route):
    fakes[route].break_stream_after = 3
    fakes[route].chunk_size = 2
    with pytest.raises(openai.APIError):
        for _ in sdk(proxy).chat.completions.create(model=route, stream=True,
                                                    messages=[{"role": "user", "content": "a fairly long reply " * 5}]):
            pass


def test_client_disconnect_cancels_upstream(proxy, fakes):
    fake = fakes["gpt"]
    fake.chunk_size = 1
    fake.chunk_delay = 0.05
    with httpx.stream("POST", proxy.base_url + "/chat/completions", headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                      json={"model": "gpt", "stream": True,
                            "messages": [{"role": "user", "content": "slow reply " * 40}]}) as r:
        it = r.iter_bytes()
        next(it)
    deadline = time.time() + 5
    while time.time() < deadline and fake.cancelled == 0:
        time.sleep(0.05)
    fake.chunk_delay = 0.0
    assert fake.cancelled == 1


def test_request_id_propagates(proxy):
    rid = "6f1c2a9e-4b7d-4e21-9a53-0c8d2f1e7b64"  # a UUID is kept; other forms become rid_<keyed hash>
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
              headers={"x-request-id": rid})
    assert r.headers["x-request-id"] == rid
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
              headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"].startswith("rid_")
    r = _post(proxy, {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert r.headers["x-request-id"].startswith("req_")


def test_zero_data_retention_route_sets_store_false(proxy, fakes):
    sdk(proxy).chat.completions.create(model="gpt-zdr", messages=[{"role": "user", "content": "hi"}])
    assert fakes["gpt"].last.json.get("store") is False


def test_client_disconnect_cancels_a_non_streamed_upstream_call(proxy, fakes):
    fake = fakes["gpt"]
    fake.hang_seconds = 2.5  # under the route's 3 s timeout
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proxy.base_url + "/chat/completions", headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                   json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}, timeout=0.5)
    deadline = time.time() + 5
    while time.time() < deadline and fake.cancelled == 0:
        time.sleep(0.05)
    assert fake.cancelled == 1
