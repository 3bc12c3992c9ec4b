"""The fake providers, driven through litellm as the proxy will drive them.

These tests also pin down how litellm surfaces upstream faults (429 Retry-After, broken and
malformed streams), which the proxy's error mapping relies on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

import trustproxy  # noqa: F401  (offline env vars before litellm is imported)
import litellm

from litellm.exceptions import MidStreamFallbackError

from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI, FakeProvider, Reply, ToolCall
from tests.fakes.fixtures import fake_anthropic, fake_openai, fake_third  # noqa: F401
from tests.fakes.providers import embedding_vector

litellm.suppress_debug_info = True  # else litellm prints "Provider List: ..." for unmapped models

TEXT = "My name is Ada and my email is <EMAIL_1>."
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
NO_RETRY = {"num_retries": 0, "max_retries": 0}  # the openai SDK retries twice by itself otherwise

KINDS = [FakeOpenAI, FakeAnthropic, FakeOllama]


@pytest.fixture(params=KINDS, ids=lambda k: k.name)
def fake(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    with request.param() as server:
        yield server


def params(fake: FakeProvider) -> dict[str, Any]:
    return fake.litellm_params()  # type: ignore[attr-defined, no-any-return]


def user(text: str = TEXT) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


async def collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def sent_user_text(fake: FakeProvider) -> str:
    """The user text as the provider received it, whatever its wire shape."""
    return fake.last_user_text(fake.last.json)


# ---- plain, streamed, tools -------------------------------------------------------------------

async def test_plain_completion_echoes_and_records(fake: FakeProvider) -> None:
    resp = await litellm.acompletion(messages=user(), **params(fake))
    assert resp.choices[0].message.content == TEXT
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == len(TEXT.split())
    chat = [r for r in fake.requests if r.path in ("/v1/chat/completions", "/v1/messages", "/api/chat")]
    assert len(chat) == 1 and chat[0].method == "POST"
    assert sent_user_text(fake) == TEXT
    assert chat[0].json["model"] == fake.model
    assert all(k == k.lower() for k in chat[0].headers)


async def test_fixed_reply_and_script(fake: FakeProvider) -> None:
    fake.reply_text = "fixed"
    resp = await litellm.acompletion(messages=user(), **params(fake))
    assert resp.choices[0].message.content == "fixed"
    seen: list[Any] = []

    def script(body: Any) -> str:
        seen.append(body)
        return "scripted"

    fake.script = script
    resp = await litellm.acompletion(messages=user(), **params(fake))
    assert resp.choices[0].message.content == "scripted"
    assert seen and seen[0]["model"] == fake.model


@pytest.mark.parametrize("size", [1, 5])
async def test_stream_one_delta_per_chunk(fake: FakeProvider, size: int) -> None:
    fake.chunk_size = size
    stream = await litellm.acompletion(messages=user(), stream=True, **params(fake))
    chunks = await collect(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == TEXT
    assert deltas[:2] == [TEXT[:size], TEXT[size:2 * size]]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake.last.json["stream"] is True
    # the client has read the last chunk; the server counts the stream once its handler returns
    await fake.wait_for(lambda: fake.completed == 1)
    assert fake.completed == 1 and fake.cancelled == 0


async def test_tool_call_plain(fake: FakeProvider) -> None:
    fake.script = lambda body: Reply(text="Checking.", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')])
    resp: Any = await litellm.acompletion(messages=user("Weather in Paris?"), tools=TOOLS, **params(fake))
    msg = resp.choices[0].message
    assert msg.content == "Checking."
    assert resp.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        ("get_weather", {"city": "Paris"})]
    tools = fake.last.json["tools"]
    assert "get_weather" in json.dumps(tools)


async def test_tool_call_streamed_in_fragments(fake: FakeProvider) -> None:
    args = '{"city": "Paris", "unit": "C"}'
    fake.chunk_size = 3
    fake.script = lambda body: Reply(text="Checking.", tool_calls=[ToolCall("get_weather", args)])
    stream = await litellm.acompletion(messages=user("Weather?"), tools=TOOLS, stream=True, **params(fake))
    chunks = await collect(stream)
    frags = [tc.function.arguments for c in chunks if c.choices and c.choices[0].delta.tool_calls
             for tc in c.choices[0].delta.tool_calls if tc.function.arguments]
    # OpenAI and Anthropic stream argument fragments; Ollama sends them whole.
    assert "".join(frags) == args if not isinstance(fake, FakeOllama) else frags == [json.dumps(json.loads(args))]
    built: Any = litellm.stream_chunk_builder(chunks)
    assert built is not None
    call = built.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == json.loads(args)
    assert built.choices[0].finish_reason == "tool_calls"


async def test_stream_usage_last_chunk(fake: FakeProvider) -> None:
    stream = await litellm.acompletion(messages=user(), stream=True, stream_options={"include_usage": True},
                                       **params(fake))
    chunks = await collect(stream)
    usage = getattr(chunks[-1], "usage", None)
    assert usage is not None and usage.completion_tokens == len(TEXT.split())


def test_sync_litellm_call(fake: FakeProvider) -> None:
    """The fake runs in its own thread, so even litellm's sync API works against it."""
    resp = litellm.completion(messages=user("sync call"), **params(fake))
    assert resp.choices[0].message.content == "sync call"


# ---- provider-specific wire details -------------------------------------------------------------

async def test_anthropic_request_shape(fake_anthropic: FakeAnthropic) -> None:
    await litellm.acompletion(messages=user(), max_tokens=50, **fake_anthropic.litellm_params())
    req = fake_anthropic.last
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-fake" and "anthropic-version" in req.headers
    assert req.json["system"][0]["text"] == "Be brief." if isinstance(req.json["system"], list) \
        else req.json["system"] == "Be brief."
    assert req.json["messages"][-1]["content"][0] == {"type": "text", "text": TEXT}
    assert req.json["max_tokens"] == 50


async def test_openai_n_choices(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = lambda body: Reply(text=["first choice", "second one"])
    resp = await litellm.acompletion(messages=user(), n=2, **fake_openai.litellm_params())
    assert [c.message.content for c in resp.choices] == ["first choice", "second one"]
    assert fake_openai.last.json["n"] == 2
    stream = await litellm.acompletion(messages=user(), n=2, stream=True, **fake_openai.litellm_params())
    chunks = await collect(stream)
    by_index: dict[int, str] = {}
    for c in chunks:
        for ch in c.choices:
            by_index[ch.index] = by_index.get(ch.index, "") + (ch.delta.content or "")
    assert by_index == {0: "first choice", 1: "second one"}
    # Quirk: litellm's stream wrapper passes on only choice 0's finish chunk (choice 1's is dropped).
    finishes = [(ch.index, ch.finish_reason) for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == [(0, "stop")]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # litellm types base64 as list
async def test_openai_embeddings(fake_openai: FakeOpenAI) -> None:
    resp = await litellm.aembedding(input=["a b", "c"], **fake_openai.litellm_params("emb"))
    assert [d["embedding"] for d in resp.data] == [embedding_vector("a b", 8), embedding_vector("c", 8)]
    assert fake_openai.last.path == "/v1/embeddings" and fake_openai.last.json["input"] == ["a b", "c"]
    # base64 (what the openai SDK asks for when told to): litellm hands the string through.
    resp = await litellm.aembedding(input="a b", encoding_format="base64", dimensions=4,
                                    **fake_openai.litellm_params("text-embedding-3-small"))
    raw = base64.b64decode(resp.data[0]["embedding"])
    assert list(struct.unpack("<4f", raw)) == pytest.approx(embedding_vector("a b", 4))


async def test_openai_models_endpoint(fake_openai: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{fake_openai.base_url}/v1/models") as r:
        body = await r.json()
    assert body["object"] == "list" and body["data"][0]["id"] == fake_openai.model


# ---- faults -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("status", "exc", "code"), [
    (429, litellm.RateLimitError, 429),
    (500, litellm.InternalServerError, 500),
    (400, litellm.BadRequestError, 400),
    (401, litellm.AuthenticationError, 401),
])
async def test_error_status_maps_to_litellm_exception(
        fake: FakeProvider, stream: bool, status: int, exc: type[Exception], code: int) -> None:
    fake.fail_status = status
    with pytest.raises(exc) as info:
        resp = await litellm.acompletion(messages=user(), stream=stream, **NO_RETRY, **params(fake))
        await collect(resp)
    err: Any = info.value
    assert err.status_code == code
    assert len(fake.requests) == 1
    if status == 429:  # Retry-After survives in the exception's httpx.Headers
        assert err.litellm_response_headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [503, 529])
async def test_anthropic_overloaded_becomes_500(fake_anthropic: FakeAnthropic, status: int) -> None:
    """Quirk: litellm maps Anthropic 503/529 (overloaded_error) to InternalServerError, 500."""
    fake_anthropic.fail_status = status
    with pytest.raises(litellm.InternalServerError) as info:
        await litellm.acompletion(messages=user(), **NO_RETRY, **fake_anthropic.litellm_params())
    err: Any = info.value
    assert err.status_code == 500
    assert err.litellm_response_headers["retry-after"] == "7"


async def test_error_message_carries_upstream_body(fake_openai: FakeOpenAI) -> None:
    """litellm copies the upstream error body into str(exc): the proxy must not forward it."""
    fake_openai.fail_status = 400
    fake_openai.fail_message = "echo of the prompt: " + TEXT
    with pytest.raises(litellm.BadRequestError) as info:
        await litellm.acompletion(messages=user(), **NO_RETRY, **fake_openai.litellm_params())
    assert TEXT in str(info.value)


async def test_broken_stream_raises_in_iterator(fake: FakeProvider) -> None:
    fake.break_stream_after = 4
    stream = await litellm.acompletion(messages=user(), stream=True, **params(fake))
    got: list[str] = []
    with pytest.raises(MidStreamFallbackError) as info:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    err = info.value
    assert isinstance(err, litellm.ServiceUnavailableError)  # its base class, but...
    assert err.status_code == 500  # ... the status is the wrapped APIConnectionError's
    assert isinstance(err.original_exception, litellm.APIConnectionError)
    assert got and TEXT.startswith("".join(got)) and "".join(got) != TEXT
    assert err.generated_content == "".join(got) and not err.is_pre_first_chunk
    assert fake.broken == 1 and fake.completed == 0


async def test_malformed_json_plain_raises(fake: FakeProvider) -> None:
    fake.malformed_json = True
    with pytest.raises((litellm.APIConnectionError, litellm.InternalServerError)):
        await litellm.acompletion(messages=user(), **NO_RETRY, **params(fake))


async def test_malformed_json_in_stream(fake: FakeProvider) -> None:
    fake.malformed_json = True
    stream = await litellm.acompletion(messages=user(), stream=True, **params(fake))
    if isinstance(fake, FakeOllama):
        # Quirk: litellm skips an unparsable NDJSON line from Ollama and carries on.
        chunks = await collect(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
        return
    with pytest.raises(MidStreamFallbackError):
        await collect(stream)


async def test_timeout_counts_cancelled(fake: FakeProvider) -> None:
    fake.hang_seconds = 5
    with pytest.raises(litellm.Timeout) as info:
        await litellm.acompletion(messages=user(), timeout=0.3, **NO_RETRY, **params(fake))
    assert info.value.status_code == 408
    await fake.wait_for(lambda: fake.cancelled == 1)
    assert fake.completed == 0


async def test_client_closing_stream_counts_cancelled(fake: FakeProvider) -> None:
    fake.chunk_size = 1
    fake.chunk_delay = 0.02
    stream = await litellm.acompletion(messages=user(), stream=True, **params(fake))
    async for _ in stream:
        break
    await stream.aclose()
    await fake.wait_for(lambda: fake.cancelled == 1)
    assert fake.completed == 0 and fake.active == 0


async def test_concurrent_requests_counted(fake: FakeProvider) -> None:
    fake.hang_seconds = 0.3  # all four are inside the server at once
    results = await asyncio.gather(*(
        litellm.acompletion(messages=user(f"request {i}"), **params(fake)) for i in range(4)))
    assert sorted(r.choices[0].message.content for r in results) == [f"request {i}" for i in range(4)]
    assert fake.max_active == 4 and fake.active == 0 and fake.completed == 4


# ---- Router -------------------------------------------------------------------------------------

async def test_router_retries_on_the_fake(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_status, fake_openai.fail_times, fake_openai.retry_after = 500, 1, None
    router = litellm.Router(model_list=[{"model_name": "chat", "litellm_params": {
        **fake_openai.litellm_params(), "max_retries": 0}}], num_retries=1, retry_after=0)
    resp = await router.acompletion(model="chat", messages=user())
    assert resp.choices[0].message.content == TEXT
    assert [r.path for r in fake_openai.requests] == ["/v1/chat/completions"] * 2


async def test_router_broken_stream_is_api_connection_error(fake_openai: FakeOpenAI) -> None:
    """Through the Router a broken stream surfaces as APIConnectionError (not MidStreamFallbackError)."""
    fake_openai.break_stream_after = 3
    router = litellm.Router(model_list=[{"model_name": "chat", "litellm_params": {
        **fake_openai.litellm_params(), "max_retries": 0}}], num_retries=0)
    stream = await router.acompletion(model="chat", messages=user(), stream=True)
    with pytest.raises(litellm.APIConnectionError):
        await collect(stream)


# ---- nothing but the fake on the wire -----------------------------------------------------------

@pytest.fixture
def wire_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record every outgoing connect and name lookup made in this process (any thread)."""
    seen: list[tuple[str, str]] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        seen.append(("connect", repr(address)))
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        seen.append(("connect", repr(address)))
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(("getaddrinfo", repr(host)))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


async def test_litellm_talks_to_nobody_but_the_fake(wire_log: list[tuple[str, str]]) -> None:
    ports = []
    for kind in KINDS:
        async with kind() as fake:
            ports.append(fake.port)
            p = params(fake)
            await litellm.acompletion(messages=user(), **p)
            await litellm.acompletion(messages=user(), tools=TOOLS, **p)
            await collect(await litellm.acompletion(messages=user(), stream=True, **p))
            if isinstance(fake, FakeOpenAI):
                await litellm.aembedding(input=["hi"], **p)
                router = litellm.Router(model_list=[{"model_name": "m", "litellm_params": p}])
                await router.acompletion(model="m", messages=user())
    allowed = {repr(("127.0.0.1", port)) for port in ports}
    connects = {v for kind, v in wire_log if kind == "connect"}
    lookups = {v for kind, v in wire_log if kind == "getaddrinfo"}
    assert connects and connects <= allowed, connects - allowed
    assert lookups <= {"'127.0.0.1'"}, lookups


async def test_ollama_unknown_model_probes_localhost_11434(wire_log: list[tuple[str, str]]) -> None:
    """Quirk: for a model missing from litellm's cost map, litellm POSTs /api/show to
    OLLAMA_API_BASE or localhost:11434 (sync, ignoring api_base). A cost-map entry stops it."""
    async with FakeOllama(model="not-in-cost-map") as fake:
        await litellm.acompletion(messages=user(), **fake.litellm_params())
        assert repr(("127.0.0.1", 11434)) in {v for _, v in wire_log}
        wire_log.clear()
        litellm.model_cost["ollama_chat/known-now"] = {
            "litellm_provider": "ollama_chat", "mode": "chat", "max_tokens": 8192,
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
        try:
            await litellm.acompletion(messages=user(), **fake.litellm_params("known-now"))
        finally:
            del litellm.model_cost["ollama_chat/known-now"]
        assert {v for _, v in wire_log} <= {repr(("127.0.0.1", fake.port)), "'127.0.0.1'"}
