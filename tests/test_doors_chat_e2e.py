"""Every chat field the doors issue listed, end to end: the official openai SDK -> the proxy on
loopback -> a recording fake OpenAI. No planted value in what the provider received; every
value back to the client; streamed and non-streamed give the same text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.base import Reply, ToolCall
from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent
EMAIL = "ann.lee@example.com"
PHONE = "415-555-0123"
PERSON = "John Smith"

POLICIES = {
    "names_screen": "name: names_screen\nextends: default\npii: {participant_names: screen}\n",
    "names_opaque": "name: names_opaque\nextends: default\npii: {participant_names: opaque}\n",
    "open": "name: open\nextends: default\noutput:\n  pii: {enabled: false}\n  toxicity: {enabled: false}\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    for name, text in POLICIES.items():
        (pdir / f"{name}.yaml").write_text(text)
    clients = [Client(name=n, key_sha256=hash_key(f"k-{n}"), policy=None if n == "default" else n)
               for n in ("default", *POLICIES)]
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0)},
                            clients=clients, policy_dir=str(pdir), audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


@pytest.fixture(autouse=True)
def _reset(env):
    _, fake = env
    fake.reset()
    fake.script = None
    fake.reply_text = "ok"
    fake.chunk_size = 3
    yield


def sdk(proxy: ProxyServer, policy: str = "default") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=f"k-{policy}", max_retries=0)


def sent(fake: FakeOpenAI) -> str:
    return fake.last.raw.decode()


def assert_clean(fake: FakeOpenAI, *values: str) -> None:
    raw = sent(fake)
    for v in values:
        assert v not in raw, v
        assert json.dumps(v)[1:-1] not in raw, v


def test_history_fields_never_reach_the_provider(env):
    proxy, fake = env
    messages: list[Any] = [
        {"role": "user", "content": f"Please email {EMAIL}"},
        {"role": "assistant", "refusal": f"I will not email {EMAIL} or call {PHONE}."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{EMAIL}", "type": "function", "extra": f"x {EMAIL}",
             "function": {"name": "lookup", "arguments": json.dumps({"q": EMAIL}), "secret": PHONE}}]},
        {"role": "tool", "tool_call_id": f"call_{EMAIL}", "content": "found"},
        {"role": "user", "content": "thanks"},
    ]
    tools: list[Any] = [{"type": "function", "function": {
        "name": "lookup", "description": f"Looks people up; ask {EMAIL}",
        "parameters": {"type": "object", "title": f"for {EMAIL}", "properties": {
            "q": {"type": "string", "description": f"e.g. {EMAIL}", "enum": [EMAIL, "other"],
                  "default": EMAIL, "examples": [EMAIL, {"phone": PHONE}], "pattern": "^.+$"}},
            "required": ["q"]}}}]
    functions: list[Any] = [{"name": "legacy", "description": f"Call {PHONE}",
                             "parameters": {"type": "object", "properties": {
                                 "who": {"type": "string", "description": f"like {EMAIL}"}}}}]
    response_format: Any = {"type": "json_schema", "json_schema": {
        "name": "contact", "description": f"A contact such as {EMAIL}",
        "schema": {"type": "object", "properties": {"email": {"type": "string", "description": f"e.g. {EMAIL}",
                                                              "const": EMAIL}}}}}
    sdk(proxy).chat.completions.create(model="m", messages=messages, tools=tools, functions=functions,
                                       response_format=response_format, stop=[EMAIL, "END"],
                                       logit_bias={"1234": 5}, user=EMAIL)
    assert_clean(fake, EMAIL, PHONE)
    body = fake.last.json
    # extra keys inside tool_calls[] and function are dropped, not forwarded
    call = body["messages"][2]["tool_calls"][0]
    assert set(call) == {"id", "type", "function"} and set(call["function"]) == {"name", "arguments"}
    # the same id gets the same replacement in the assistant call and the tool message
    assert call["id"] == body["messages"][3]["tool_call_id"] == "call_EMAIL_ADDRESS_1"
    params = body["tools"][0]["function"]["parameters"]
    assert params["properties"]["q"]["enum"] == ["<EMAIL_ADDRESS_1>", "other"]
    assert params["properties"]["q"]["type"] == "string" and params["required"] == ["q"]
    assert params["properties"]["q"]["pattern"] == "^.+$"
    assert body["stop"] == ["<EMAIL_ADDRESS_1>", "END"]
    assert body["logit_bias"] == {"1234": 5}
    assert body.get("user", "EMAIL_ADDRESS_1") == "EMAIL_ADDRESS_1"  # litellm may drop `user`
    assert body["response_format"]["json_schema"]["schema"]["properties"]["email"]["const"] == "<EMAIL_ADDRESS_1>"
    assert body["functions"][0]["parameters"]["properties"]["who"]["description"] == "like <EMAIL_ADDRESS_1>"


def test_logit_bias_keys_must_be_token_ids(env):
    proxy, fake = env
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                           logit_bias={EMAIL: 1})  # type: ignore[dict-item]
    assert EMAIL not in exc.value.response.text
    assert fake.requests == []


def _tool_script(body: Any) -> Reply:
    """The fake model calls the tool it was offered, by the name it saw, with what it saw."""
    name = body["tools"][0]["function"]["name"]
    seen = body["messages"][-1]["content"]
    return Reply(text=f"Writing to {seen}", refusal=f"I won't share {seen}",
                 tool_calls=[ToolCall(name=name, arguments=json.dumps({"to": seen, "note": "a \"quoted\" one"}))])


@pytest.mark.parametrize("stream", [False, True])
def test_reply_fields_are_restored(env, stream):
    proxy, fake = env
    fake.script = _tool_script
    tools: list[Any] = [{"type": "function", "function": {"name": "mail_John_Smith", "parameters": {"type": "object"}}}]
    kwargs: dict[str, Any] = {"model": "m", "tools": tools, "messages": [{"role": "user", "content": EMAIL}],
                              "tool_choice": {"type": "function", "function": {"name": "mail_John_Smith"}}}
    c = sdk(proxy, "open")  # no output screening: what the fake says comes back restored
    if not stream:
        msg = c.chat.completions.create(**kwargs).choices[0].message
        content, refusal = msg.content, msg.refusal
        call = msg.tool_calls[0]  # type: ignore[index]
        name, args = call.function.name, call.function.arguments  # type: ignore[union-attr]
    else:
        parts: dict[str, str] = {"content": "", "refusal": "", "name": "", "args": ""}
        for chunk in c.chat.completions.create(stream=True, **kwargs):
            for ch in chunk.choices:
                parts["content"] += ch.delta.content or ""
                parts["refusal"] += ch.delta.refusal or ""
                for tc in ch.delta.tool_calls or []:
                    parts["name"] += (tc.function.name or "") if tc.function else ""
                    parts["args"] += (tc.function.arguments or "") if tc.function else ""
        content, refusal, name, args = parts["content"], parts["refusal"], parts["name"], parts["args"]
    assert_clean(fake, EMAIL, PERSON, "John_Smith")
    assert fake.last.json["tools"][0]["function"]["name"] == "mail_PERSON_1"
    assert fake.last.json["tool_choice"]["function"]["name"] == "mail_PERSON_1"  # the forced call still matches
    assert content == f"Writing to {EMAIL}"
    if not stream:  # litellm drops streamed refusal deltas: see the xfail below
        assert refusal == f"I won't share {EMAIL}"
    assert EMAIL not in json.dumps(fake.last.json)
    assert name == "mail_John_Smith"  # the function name the model echoed is restored exactly
    assert json.loads(args) == {"to": EMAIL, "note": 'a "quoted" one'}


def test_logprobs_refused_while_output_is_screened(env):
    proxy, fake = env
    with pytest.raises(openai.BadRequestError) as exc:
        sdk(proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert exc.value.code == "logprobs_not_allowed"
    assert fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_unrequested_logprobs_are_dropped_while_output_is_screened(env, stream):
    proxy, fake = env
    fake.script = lambda body: Reply(text="hello", logprobs=["tok", EMAIL])
    c = sdk(proxy)
    if stream:
        chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                stream=True))
        assert all(ch.logprobs is None for chunk in chunks for ch in chunk.choices)
    else:
        resp = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].logprobs is None
        assert EMAIL not in resp.model_dump_json()


def test_logprobs_pass_when_the_policy_screens_no_output(env):
    proxy, fake = env
    fake.script = lambda body: Reply(text="hello", logprobs=["hel", "lo"])
    resp = sdk(proxy, "open").chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                       logprobs=True, top_logprobs=1)
    assert [t.token for t in resp.choices[0].logprobs.content] == ["hel", "lo"]  # type: ignore[union-attr]


def _name_script(body: Any) -> str:
    return "Hi " + body["messages"][0].get("name", "")


@pytest.mark.parametrize("policy,name,provider_sees", [
    ("default", "Maria Garcia", "[PERSON_1]"),     # person: the whole value, restorable
    ("default", "docs_helper", "[PERSON_1]"),      # person: even an agent's name
    ("names_screen", "docs_helper", "docs_helper"),  # screen: an agent name passes
    ("names_screen", "Maria Garcia", "[PERSON_1]"),  # screen: a person's name is found
    ("names_opaque", "Maria Garcia", "Maria Garcia"),  # opaque: never screened
])
@pytest.mark.parametrize("stream", [False, True])
def test_participant_name_policy_and_restore(env, policy, name, provider_sees, stream):
    proxy, fake = env
    fake.script = _name_script
    kwargs: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "name": name, "content": "hello"}]}
    c = sdk(proxy, policy)
    if stream:
        text = "".join(ch.delta.content or "" for chunk in c.chat.completions.create(stream=True, **kwargs)
                       for ch in chunk.choices)
    else:
        text = c.chat.completions.create(**kwargs).choices[0].message.content
    assert fake.last.json["messages"][0]["name"] == provider_sees
    assert text == f"Hi {name}"  # whatever was masked is restored


@pytest.mark.xfail(strict=True, reason="litellm's stream handler drops `delta.refusal` (1.110): a streamed "
                   "refusal never reaches the proxy; nothing leaks, but the text is lost")
def test_streamed_refusal_arrives(env):
    proxy, fake = env
    fake.script = lambda body: Reply(text="", refusal="I won't")
    text = "".join(ch.delta.refusal or "" for chunk in sdk(proxy, "open").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True) for ch in chunk.choices)
    assert text == "I won't"
