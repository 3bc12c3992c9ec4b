"""Point 5 and 6 of the doors issue, over real loopback: upstream wire robustness (minimal
OpenAI-compatible streams, [DONE], JSON/HTML answers to a streamed request, endless and huge
streams) and strict parsing at the edge (nothing refused reaches a provider)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.doors.common import MAX_JSON_DEPTH
from trustproxy.settings import Route, Settings
from trustproxy.wire import DoneDecoder, completion_to_sse

QUIET = """name: quiet
entities:
  - {type: EMAIL_ADDRESS, action: mask}
output:
  pii: {enabled: false}
  toxicity: {enabled: false}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("policies")
    (pdir / "quiet.yaml").write_text(QUIET)
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        route = Route(model=p["model"], api_base=p["api_base"], max_retries=0, timeout=10)
        routes = {"m": route,
                  "short": route.model_copy(update={"max_stream_seconds": 1.0}),
                  "small": route.model_copy(update={"max_stream_bytes": 2000})}
        settings = Settings(routes=routes, policy_dir=str(pdir), default_policy="quiet",
                            audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


@pytest.fixture(autouse=True)
def _reset(env):
    _, fake = env
    fake.reset()
    fake.wire = None
    fake.reply_text = "Hello there, write to ann@example.com soon."
    fake.chunk_size = 5
    fake.chunk_delay = 0.0
    yield


def sdk(proxy):
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)


def _stream_text(proxy, model="m"):
    out = []
    finish = []
    for chunk in sdk(proxy).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                     stream=True):
        for ch in chunk.choices:
            out.append(ch.delta.content or "")
            finish.append(ch.finish_reason)
    return "".join(out), finish


# ---- the [DONE] decoder, at every split point --------------------------------------------------

STREAMS = [
    (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n', True),
    (b'data: {"choices":[]}\r\n\r\ndata: [DONE]\r\n\r\n', True),
    (b'data: {"choices":[]}\r\rdata:[DONE]\r\r', True),
    (b'data: {"choices":[]}\n\ndata: [DONE]', True),           # last line unterminated
    (b'data: {"x":"data: [DONE]"}\n\n', False),                   # inside a JSON string: not a line
    (b'data: {"choices":[]}\n\n', False),
    (b'data: [DONE]x\n\n', False),
    (b': comment\n\ndata: ' + b"y" * 200 + b"\ndata: [DONE]\n", True),
]


@pytest.mark.parametrize("raw,done", STREAMS)
def test_done_decoder_every_split(raw: bytes, done: bool) -> None:
    for i in range(len(raw) + 1):
        for j in range(i, len(raw) + 1):
            d = DoneDecoder()
            for piece in (raw[:i], raw[i:j], raw[j:]):
                d.feed(piece)
            d.finish()
            assert d.done is done, (i, j)


def test_completion_to_sse_keeps_every_field() -> None:
    doc = {"id": "x", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": None,
                                 "tool_calls": [{"id": "c", "type": "function",
                                                 "function": {"name": "f", "arguments": "{}"}}]},
         "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    raw = completion_to_sse(doc)
    assert raw is not None and raw.endswith(b"data: [DONE]\n\n")
    events = [json.loads(e[6:]) for e in raw.decode().split("\n\n") if e.startswith("data: {")]
    assert events[0]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert events[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[2]["usage"]["total_tokens"] == 2
    assert completion_to_sse({"error": {"message": "x"}}) is None
    assert completion_to_sse([1]) is None


# ---- upstream misbehaviours through the proxy ----------------------------------------------------

def test_minimal_stream_with_done_is_complete(env):
    proxy, fake = env
    fake.wire = "minimal"
    text, finish = _stream_text(proxy)
    assert text == fake.reply_text
    assert finish[-1] == "stop"
    # the provider saw the masked value; the client got its own back
    assert "ann@example.com" not in json.dumps(fake.last.json)


def test_minimal_stream_without_done_is_an_error(env):
    proxy, fake = env
    fake.wire = "minimal_no_done"
    with pytest.raises(openai.APIError) as exc:
        _stream_text(proxy)
    assert "broke off" in str(exc.value)


def test_cut_stream_stays_an_error(env):
    proxy, fake = env
    fake.break_stream_after = 3
    try:
        with pytest.raises(openai.APIError):
            _stream_text(proxy)
    finally:
        fake.break_stream_after = None


def test_json_answer_to_a_stream_is_converted(env):
    proxy, fake = env
    fake.wire = "json"
    text, finish = _stream_text(proxy)
    assert text == fake.reply_text
    assert finish[-1] == "stop"
    plain = sdk(proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == text  # streamed and not: the same text


def test_html_answer_to_a_stream_is_an_error_not_an_empty_stream(env):
    proxy, fake = env
    fake.wire = "html"
    with pytest.raises(openai.APIStatusError) as exc:
        _stream_text(proxy)
    assert exc.value.status_code == 502
    assert exc.value.body["code"] == "upstream_not_a_stream"  # type: ignore[index]


def test_endless_stream_is_cut_at_the_route_maximum(env):
    proxy, fake = env
    fake.wire = "endless"
    fake.chunk_delay = 0.02
    with httpx.stream("POST", proxy.base_url + "/chat/completions", timeout=20,
                      json={"model": "short", "messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
        body = r.read().decode()
    assert r.status_code == 200
    assert "upstream_stream_too_long" in body.strip().split("\n\n")[-1]
    assert "[DONE]" not in body


def test_huge_stream_is_cut_at_the_route_maximum(env):
    proxy, fake = env
    fake.reply_text = "x" * 5000
    fake.chunk_size = 100
    with httpx.stream("POST", proxy.base_url + "/chat/completions", timeout=20,
                      json={"model": "small", "messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
        body = r.read().decode()
    assert "upstream_stream_too_large" in body.strip().split("\n\n")[-1]
    assert "[DONE]" not in body


# ---- strict parsing at the edge --------------------------------------------------------------------

def _deep(n: int) -> str:
    return '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": ' + "[" * n + "]" * n + "}"


BAD_BODIES = {
    "stream yes": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
    "temperature string": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "1"}',
    "NaN": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    "Infinity": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}',
    "overflowing float": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
    "huge integer": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": ' + "9" * 5000 + "}",
    "deep nesting": _deep(MAX_JSON_DEPTH + 5),
    "very deep nesting": _deep(100_000),
    "not an object": "[1, 2]",
    "not json": "{nope",
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
@pytest.mark.parametrize("path", ["/chat/completions", "/embeddings"])
def test_strict_parsing_refuses_before_any_provider(env, name, path):
    proxy, fake = env
    raw = BAD_BODIES[name]
    if path == "/embeddings":
        raw = raw.replace('"messages": [{"role": "user", "content": "hi"}]', '"input": "hi"')
        raw = raw.replace('"temperature"', '"dimensions"').replace('"stream": "yes"', '"dimensions": "8"')
    r = httpx.post(proxy.base_url + path, content=raw, headers={"content-type": "application/json"}, timeout=20)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    assert fake.requests == []


def test_nesting_within_the_limit_is_accepted(env):
    proxy, fake = env
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"type": "object", "properties": {"a": schema}}
    r = httpx.post(proxy.base_url + "/chat/completions", timeout=20, json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]})
    assert r.status_code == 200, r.text


def test_unknown_fields_at_any_depth_are_dropped(env):
    proxy, fake = env
    r = httpx.post(proxy.base_url + "/chat/completions", timeout=20, json={
        "model": "m", "frobnicate": "ann@example.com",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "note": "ann@example.com"}]}]})
    assert r.status_code == 200, r.text
    assert "frobnicate" not in fake.last.json and "note" not in json.dumps(fake.last.json)
    assert "ann@example.com" not in fake.last.raw.decode()


def test_steering_fields_are_refused(env):
    proxy, fake = env
    for field in ("api_base", "metadata", "mock_response"):
        r = httpx.post(proxy.base_url + "/chat/completions", timeout=20, json={
            "model": "m", field: {"x": 1}, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "forbidden_field"
    assert fake.requests == []


@pytest.mark.parametrize("raw, deep", [
    ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", True),
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True),
    ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
    ('{"a": "' + "[" * 500 + '"}', False),                                 # brackets inside a string
    ('{"a": "\\" ' + "{" * 300 + '", "b": [1]}', False),                    # after an escaped quote
    (json.dumps({"m": [{"a": [1, [2, [3]]], "b": 'q"[[['} for _ in range(1000)]}), False),
])
def test_nesting_is_measured_before_parsing(raw, deep):
    """Deep nesting is refused before the parser recurses (a 100,000-deep body took it to the
    interpreter's recursion limit, where a finalizer run by the collector failed as well)."""
    from trustproxy.doors.common import _too_deep

    assert _too_deep(raw) is deep
    assert _too_deep(raw.encode()) is deep
