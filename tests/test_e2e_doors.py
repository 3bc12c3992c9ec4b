"""The agent doors end to end: the official ``anthropic`` and ``openai`` SDKs against the proxy on
loopback, with a fake OpenAI and a fake Anthropic provider behind it that record what they
receive. No planted value reaches a provider; every value comes back to the client."""

from __future__ import annotations

import json
import os

import anthropic
import httpx
import openai
import pytest

from tests.fakes.base import Reply, ToolCall
from tests.fakes.providers import FakeAnthropic, FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

CLIENT_KEY = "tp-doors-client-key-0001"
PII = "I am John Smith, mail john.smith@example.com, SSN 536-22-8106."
RAW = ["John Smith", "john.smith@example.com", "536-22-8106"]
TOOL_PII = {"to": "maria.garcia@example.org", "phone": "415-555-0123"}
ROUTES = ["gpt", "claude"]
EMAIL_TOOL = {"name": "send_email", "description": "Send an email",
              "input_schema": {"type": "object", "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                               "required": ["to"]}}


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI(model="gpt-fake") as o, FakeAnthropic() as a:
        yield {"gpt": o, "claude": a}


@pytest.fixture(scope="module")
def proxy(fakes):
    os.environ["TP_DOORS_PROVIDER_KEY"] = "sk-provider-secret"
    routes = {"echo": Route(model="echo")}
    for name, fake in fakes.items():
        p = fake.litellm_params()
        routes[name] = Route(model=p["model"], api_base=p["api_base"], api_key_env="TP_DOORS_PROVIDER_KEY",
                             timeout=5, max_retries=0)
    routes["gpt-state"] = routes["gpt"].model_copy(update={"allow_server_state": True})
    settings = Settings(routes=routes, clients=[Client(name="agent", key_sha256=hash_key(CLIENT_KEY))],
                        max_body_bytes=256 * 1024, audit={"stdout": False, "path": None})
    with ProxyServer(settings) as p:
        yield p


@pytest.fixture(autouse=True)
def _reset(fakes):
    for f in fakes.values():
        f.reset()
        f.script = None
        f.reply_text = None
        f.chunk_size = 3
        f.fail_status = None
    yield


def claude(proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)


def oai(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)


def saw(fake) -> str:
    return json.dumps([r.json for r in fake.requests], ensure_ascii=False)


def assert_clean(fake, values=RAW) -> None:
    seen = saw(fake)
    assert fake.requests, "the provider was not called"
    for v in values:
        assert v not in seen, v


def tool_script(name: str, args: dict, text: str = ""):
    """The fake model calls ``name`` with ``args`` written with the placeholders it received."""
    def script(body):
        received = json.dumps(body)
        placeholders = {k: _placeholder_for(received, v) for k, v in args.items()}
        return Reply(text=text, tool_calls=[ToolCall(name=name, arguments=json.dumps(placeholders))])
    return script


def _placeholder_for(received: str, value: str) -> str:
    import re

    kind = "EMAIL_ADDRESS" if "@" in value else "PHONE_NUMBER"
    found = re.findall(rf"<{kind}_\d+>", received)
    assert found, f"no {kind} placeholder in what the provider received"
    return found[0]


# -- Anthropic Messages ----------------------------------------------------------------------

@pytest.mark.parametrize("route", ROUTES)
def test_messages_create_with_system_blocks(proxy, fakes, route):
    msg = claude(proxy).messages.create(
        model=route, max_tokens=64, system=[{"type": "text", "text": "Reply to John Smith only."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": PII}]}], metadata={"user_id": "John Smith"})
    assert msg.type == "message" and msg.role == "assistant" and msg.model == route
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == PII
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
    assert_clean(fakes[route])
    assert "<PERSON_1>" in saw(fakes[route])


@pytest.mark.parametrize("route", ROUTES)
def test_messages_stream_equals_create(proxy, fakes, route):
    fakes[route].chunk_size = 1  # one provider event per character: splits inside every placeholder
    client = claude(proxy)
    args = dict(model=route, max_tokens=64, messages=[{"role": "user", "content": PII}])
    whole = client.messages.create(**args)
    with client.messages.stream(**args) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == whole.content[0].text == PII
    assert not any("<" in p for p in pieces)
    assert final.stop_reason == "end_turn"
    assert_clean(fakes[route])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", ROUTES)
def test_messages_forced_tool_use(proxy, fakes, route, stream):
    fakes[route].script = tool_script("send_email", TOOL_PII, text="Sending now.")
    args = dict(model=route, max_tokens=64, tools=[EMAIL_TOOL], tool_choice={"type": "tool", "name": "send_email"},
                messages=[{"role": "user", "content": "Mail maria.garcia@example.org, or call 415-555-0123."}])
    client = claude(proxy)
    if stream:
        with client.messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**args)
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    assert msg.content[0].text == "Sending now."
    use = msg.content[1]
    assert use.name == "send_email" and use.input == TOOL_PII and use.id
    assert msg.stop_reason == "tool_use"
    assert_clean(fakes[route], list(TOOL_PII.values()))
    sent = fakes[route].last.json
    if route == "claude":
        assert sent["tool_choice"]["type"] == "tool" and sent["tool_choice"]["name"] == "send_email"
        assert sent["tools"][0]["input_schema"]["required"] == ["to"]
    else:
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "send_email"}}


@pytest.mark.parametrize("route", ROUTES)
def test_messages_tool_result_history(proxy, fakes, route):
    fakes[route].reply_text = "Done."
    msg = claude(proxy).messages.create(model=route, max_tokens=64, tools=[EMAIL_TOOL], messages=[
        {"role": "user", "content": "Mail John Smith."},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Looking him up."},
            {"type": "tool_use", "id": "toolu_01abc", "name": "send_email",
             "input": {"to": "john.smith@example.com", "body": "SSN 536-22-8106"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01abc",
             "content": [{"type": "text", "text": "Sent to john.smith@example.com"}]},
            {"type": "text", "text": "Thanks, John Smith here."}]}])
    assert msg.content[0].text == "Done."
    assert_clean(fakes[route])
    sent = fakes[route].last.json
    if route == "claude":  # litellm translated the canonical turns back to Anthropic blocks
        kinds = [b["type"] for m in sent["messages"] if isinstance(m["content"], list) for b in m["content"]]
        assert "tool_use" in kinds and "tool_result" in kinds
    else:
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "user"]
        assert sent["messages"][2]["tool_call_id"] == "toolu_01abc"


def test_messages_count_tokens(proxy, fakes):
    got = claude(proxy).messages.count_tokens(model="claude", messages=[{"role": "user", "content": PII}],
                                              system="Be terse.", tools=[EMAIL_TOOL])
    assert got.input_tokens > 10
    assert not fakes["claude"].requests  # counted locally: nothing sent


def test_messages_errors_in_anthropic_shape(proxy, fakes):
    client = claude(proxy)
    with pytest.raises(anthropic.NotFoundError) as ei:
        client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["type"] == "error" and ei.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as ei2:
        client.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}])
    assert ei2.value.body["error"]["type"] == "invalid_request_error"
    assert "image" in ei2.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
    with pytest.raises(anthropic.AuthenticationError) as ei3:
        anthropic.Anthropic(base_url=proxy.url, api_key="wrong", max_retries=0).messages.create(
            model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei3.value.body["error"]["type"] == "authentication_error"
    fakes["claude"].fail_status = 429
    with pytest.raises(anthropic.RateLimitError) as ei4:
        client.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei4.value.body["error"]["type"] == "rate_limit_error"
    assert not [r for r in fakes["claude"].requests if "image" in json.dumps(r.json)]


def test_messages_stream_broken_upstream_ends_with_error_event(proxy, fakes):
    fakes["claude"].break_stream_after = 6
    fakes["claude"].chunk_size = 2
    with pytest.raises(anthropic.APIStatusError) as ei:
        with claude(proxy).messages.stream(model="claude", max_tokens=64,
                                           messages=[{"role": "user", "content": PII}]) as s:
            for _ in s.text_stream:
                pass
    assert ei.value.body["type"] == "error"
    fakes["claude"].break_stream_after = None


# -- OpenAI Responses ------------------------------------------------------------------------

@pytest.mark.parametrize("route", ROUTES)
def test_responses_create_plain(proxy, fakes, route):
    resp = oai(proxy).responses.create(model=route, input=PII, instructions="Answer John Smith tersely.")
    assert resp.object == "response" and resp.status == "completed" and resp.model == route
    assert resp.output_text == PII
    assert resp.output[0].type == "message" and resp.output[0].content[0].type == "output_text"
    assert resp.usage.total_tokens > 0
    assert_clean(fakes[route])


@pytest.mark.parametrize("route", ROUTES)
def test_responses_streamed_equals_create(proxy, fakes, route):
    fakes[route].chunk_size = 1
    client = oai(proxy)
    whole = client.responses.create(model=route, input=PII)
    deltas, types, seqs = [], [], []
    for ev in client.responses.create(model=route, input=PII, stream=True):
        types.append(ev.type)
        seqs.append(ev.sequence_number)
        if ev.type == "response.output_text.delta":
            deltas.append(ev.delta)
            assert "<" not in ev.delta
    assert "".join(deltas) == whole.output_text == PII
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert seqs == list(range(len(seqs)))
    with client.responses.stream(model=route, input=PII) as s:
        final = s.get_final_response()
    assert final.output_text == PII
    assert_clean(fakes[route])


@pytest.mark.parametrize("route", ROUTES)
def test_responses_item_list(proxy, fakes, route):
    resp = oai(proxy).responses.create(model=route, input=[
        {"role": "developer", "content": "Be terse with John Smith."},
        {"role": "user", "content": [{"type": "input_text", "text": "Earlier: "},
                                     {"type": "input_text", "text": "john.smith@example.com"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Noted, John Smith."}]},
        {"role": "user", "content": [{"type": "input_text", "text": PII}]}])
    assert resp.output_text == PII
    assert_clean(fakes[route])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", ROUTES)
def test_responses_forced_function_call(proxy, fakes, route, stream):
    fakes[route].script = tool_script("send_email", TOOL_PII)
    tools = [{"type": "function", "name": "send_email", "description": "Send an email",
              "parameters": EMAIL_TOOL["input_schema"]}]
    args = dict(model=route, tools=tools, tool_choice={"type": "function", "name": "send_email"},
                input="Mail maria.garcia@example.org or call 415-555-0123.")
    client = oai(proxy)
    if stream:
        with client.responses.stream(**args) as s:
            resp = s.get_final_response()
    else:
        resp = client.responses.create(**args)
    calls = [o for o in resp.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "send_email"
    assert json.loads(calls[0].arguments) == TOOL_PII
    assert calls[0].call_id
    assert_clean(fakes[route], list(TOOL_PII.values()))


@pytest.mark.parametrize("route", ROUTES)
def test_responses_function_call_output_next_turn(proxy, fakes, route):
    fakes[route].reply_text = "Sent."
    resp = oai(proxy).responses.create(model=route, tools=[
        {"type": "function", "name": "send_email", "parameters": EMAIL_TOOL["input_schema"]}], input=[
        {"role": "user", "content": "Mail John Smith at john.smith@example.com"},
        {"type": "function_call", "call_id": "call_abc123", "name": "send_email",
         "arguments": json.dumps({"to": "john.smith@example.com", "body": "SSN 536-22-8106"})},
        {"type": "function_call_output", "call_id": "call_abc123", "output": "Delivered to john.smith@example.com"}])
    assert resp.output_text == "Sent."
    assert_clean(fakes[route])


def test_responses_server_state_refused(proxy, fakes):
    client = oai(proxy)
    for kwargs in ({"previous_response_id": "resp_123"}, {"store": True}, {"background": True},
                   {"tools": [{"type": "web_search_preview"}]}, {"conversation": "conv_123"}):
        with pytest.raises(openai.BadRequestError) as ei:
            client.responses.create(model="gpt", input="hi", **kwargs)
        assert ei.value.body["code"] in ("unsupported_server_state", "unsupported_tool"), kwargs
    assert not fakes["gpt"].requests
    # a route marked allow_server_state forwards store (the provider keeps the masked exchange)
    resp = client.responses.create(model="gpt-state", input=PII, store=True)
    assert resp.output_text == PII and resp.store is True
    assert fakes["gpt"].last.json.get("store") is True
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-state", input="hi", previous_response_id="resp_123")


# -- echo answers on every door; strict parsing ----------------------------------------------

def test_echo_answers_on_all_three_doors(proxy):
    text = "Hi, I am John Smith, mail john.smith@example.com"
    chat = oai(proxy).chat.completions.create(model="echo", messages=[{"role": "user", "content": text}])
    resp = oai(proxy).responses.create(model="echo", input=text)
    msg = claude(proxy).messages.create(model="echo", max_tokens=32, messages=[{"role": "user", "content": text}])
    assert chat.choices[0].message.content == resp.output_text == msg.content[0].text == text


BAD_BODIES = {
    "stream as a string": lambda base: json.dumps({**base, "stream": "yes"}),
    "NaN": lambda base: json.dumps(base)[:-1] + ', "temperature": NaN}',
    "Infinity": lambda base: json.dumps(base)[:-1] + ', "temperature": Infinity}',
    "not JSON": lambda base: "{",
    "not an object": lambda base: "[1]",
    "huge integer": lambda base: json.dumps(base)[:-1] + ', "max_output_tokens": ' + "9" * 5000 + "}",
    "deep nesting": lambda base: json.dumps(base)[:-1] + ', "metadata": ' + "[" * 5000 + "]" * 5000 + "}",
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
@pytest.mark.parametrize("door", ["/v1/responses", "/v1/messages"])
def test_strict_parsing_gives_400_in_the_door_shape(proxy, fakes, door, case):
    base = {"model": "gpt", "input": "hi"} if door == "/v1/responses" else \
        {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(proxy.url + door, content=BAD_BODIES[case](base),
                   headers={"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400, (case, r.status_code, r.text[:200])
    body = r.json()
    if door == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["error"]["type"] == "invalid_request_error"
    assert not fakes["gpt"].requests


# -- output screening on the agent doors; a Claude-Code-shaped request --------------------------

INVENTED = "Sure: card 5555 5555 5555 4444, SSN 219-45-6789, mail alice.w@example.net, for <PERSON_1>."


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", ["responses", "messages"])
def test_output_values_the_caller_never_sent_are_screened(proxy, fakes, door, stream):
    fakes["gpt"].reply_text = INVENTED
    fakes["gpt"].chunk_size = 1
    if door == "messages":
        args = dict(model="gpt", max_tokens=64, messages=[{"role": "user", "content": "Write to John Smith"}])
        if stream:
            with claude(proxy).messages.stream(**args) as s:
                text = "".join(s.text_stream)
        else:
            text = claude(proxy).messages.create(**args).content[0].text
    else:
        if stream:
            text = "".join(ev.delta for ev in oai(proxy).responses.create(model="gpt", input="Write to John Smith",
                                                                          stream=True)
                           if ev.type == "response.output_text.delta")
        else:
            text = oai(proxy).responses.create(model="gpt", input="Write to John Smith").output_text
    for raw in ("5555 5555 5555 4444", "219-45-6789", "alice.w@example.net"):
        assert raw not in text
    assert text.endswith("for John Smith.")  # the caller's own value is restored


def test_claude_code_shaped_request(proxy, fakes):
    """What Claude Code sends: cache_control everywhere, metadata.user_id, thinking, beta headers,
    a JSON-Schema with $schema, unknown top-level fields; streamed."""
    fakes["claude"].script = tool_script("Bash", {"to": "maria.garcia@example.org"}, text="Running it.")
    body = {
        "model": "claude", "max_tokens": 32000, "stream": True, "temperature": 1,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Working for John Smith."}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": "grep maria.garcia@example.org in .env", "cache_control": {"type": "ephemeral"}}]}],
        "tools": [{"name": "Bash", "description": "Run a command",
                   "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                                    "properties": {"to": {"type": "string"}}, "additionalProperties": False},
                   "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": []},
    }
    with httpx.stream("POST", proxy.url + "/v1/messages", json=body, timeout=30,
                      headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01",
                               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "text_delta")
    args = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "input_json_delta")
    assert text == "Running it." and json.loads(args) == {"to": "maria.garcia@example.org"}
    sent = fakes["claude"].last.json
    assert "maria.garcia@example.org" not in json.dumps(sent)
    assert "John Smith" not in json.dumps(sent)
    assert "thinking" not in sent and "user_abc" not in json.dumps(sent) and "context_management" not in sent
