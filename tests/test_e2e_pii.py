"""The PII round trip through the running proxy: every slot, every action, concurrency,
output-side values, zero-data-retention requirements, and failing closed."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.base import Reply, ToolCall
from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent

ACTIONS = """name: actions
extends: default
entities:
  - {type: PERSON, action: synthetic}
  - {type: EMAIL_ADDRESS, action: hash}
  - {type: CREDIT_CARD, action: redact}
  - {type: US_SSN, action: block}
"""
ZDR = """name: zdr
extends: default
retention:
  require_zero_data_retention_for: [US_SSN, CREDIT_CARD]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    (pdir / "actions.yaml").write_text(ACTIONS)
    (pdir / "zdr.yaml").write_text(ZDR)
    clients = [Client(name="plain", key_sha256=hash_key("k-plain")),
               Client(name="actions", key_sha256=hash_key("k-actions"), policy="actions"),
               Client(name="zdr", key_sha256=hash_key("k-zdr"), policy="zdr")]
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        route = Route(model=p["model"], api_base=p["api_base"], max_retries=0)
        settings = Settings(routes={"m": route, "m-zdr": route.model_copy(update={"zero_data_retention": True})},
                            clients=clients, policy_dir=str(pdir), hash_key="test-hash-key",
                            audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


@pytest.fixture(autouse=True)
def _reset(env):
    _, fake = env
    fake.reset()
    fake.script = None
    fake.reply_text = None
    fake.chunk_size = 4
    yield


def sdk(proxy, key="k-plain"):
    return openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)


def test_every_request_slot_is_masked(env):
    proxy, fake = env
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Look up the file of Maria Garcia",
                                               "parameters": {"type": "object", "properties": {}}}}]
    messages = [
        {"role": "system", "content": "Customer: John Smith, john.smith@example.com"},
        {"role": "developer", "content": "Escalate to 415-555-0123"},
        {"role": "user", "name": "John Smith", "content": [
            {"type": "text", "text": "My card is 4111 1111 "}, {"type": "text", "text": "1111 1111, SSN 536-22-8106."}]},
        {"role": "assistant", "content": "Noted, John Smith.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup",
                                                          "arguments": json.dumps({"email": "john.smith@example.com",
                                                                                   "nested": {"who": ["John Smith"]}})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Found: AKIAIOSFODNN7EXAMPLE for John Smith"},
        {"role": "user", "content": "Thanks. Also, my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"},
    ]
    sdk(proxy).chat.completions.create(model="m", messages=messages, tools=tools)
    seen = fake.last.json
    text = json.dumps(seen)
    for raw in ("John Smith", "john.smith@example.com", "415-555-0123", "4111", "536-22-8106",
                "AKIAIOSFODNN7EXAMPLE", "sk-proj-", "Maria Garcia"):
        assert raw not in text, raw
    # the same value gets the same placeholder in every turn and slot
    assert text.count("<PERSON_1>") >= 4
    # a participant's name is a PERSON as a whole, in the bracketed form OpenAI accepts in `name`
    assert seen["messages"][2]["name"] == "[PERSON_1]"
    args = json.loads(seen["messages"][3]["tool_calls"][0]["function"]["arguments"])
    assert args == {"email": "<EMAIL_ADDRESS_1>", "nested": {"who": ["<PERSON_1>"]}}
    # a value split across content parts is caught; the rest of it is removed from the later part
    parts = seen["messages"][2]["content"]
    assert "<CREDIT_CARD_1>" in parts[0]["text"] and "1111" not in parts[1]["text"]


def test_clean_technical_text_reaches_provider_unaltered(env):
    proxy, fake = env
    text = ("Traceback (most recent call last):\n  File \"app.py\", line 42, in handler\n"
            "KeyError: 'user_id'\nDeploy v2.3.1 (sha 9f2c1e7a4b) to S3 in us-east-1 next week; "
            "the Q3 roadmap says HTTP 404 on /api/v1/items/550e8400-e29b-41d4-a716-446655440000 "
            "at 2024-05-01T12:00:00Z is expected.")
    resp = sdk(proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    assert fake.last.json["messages"][0]["content"] == text
    assert resp.choices[0].message.content == text


def test_actions_synthetic_hash_redact_and_block(env):
    proxy, fake = env
    c = sdk(proxy, "k-actions")
    text = "John Smith (john.smith@example.com) paid with 4111 1111 1111 1111."
    resp = c.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    sent = fake.last.json["messages"][0]["content"]
    assert "John Smith" not in sent and "john.smith@example.com" not in sent
    assert "<CREDIT_CARD>" in sent and "<EMAIL_ADDRESS_h" in sent
    # synthetic names are restored, hashes and redactions are not
    out = resp.choices[0].message.content
    assert out.startswith("John Smith (") and "<EMAIL_ADDRESS_h" in out and "<CREDIT_CARD>" in out
    # hash tokens are stable across requests
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    assert fake.last.json["messages"][0]["content"] == sent
    with pytest.raises(openai.BadRequestError) as ei:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "SSN 536-22-8106"}])
    assert ei.value.body["code"] == "policy_blocked"
    assert "US_SSN" in ei.value.body["message"] and "536-22-8106" not in json.dumps(ei.value.body)
    assert not any("536-22-8106" in json.dumps(r.json) for r in fake.requests)


def test_zero_data_retention_required(env):
    proxy, fake = env
    c = sdk(proxy, "k-zdr")
    with pytest.raises(openai.PermissionDeniedError) as ei:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "SSN 536-22-8106"}])
    assert ei.value.body["code"] == "zero_data_retention_required"
    assert not fake.requests
    r = c.chat.completions.create(model="m-zdr", messages=[{"role": "user", "content": "SSN 536-22-8106"}])
    assert r.choices[0].message.content == "SSN 536-22-8106"
    assert fake.last.json.get("store") is False
    # without sensitive types any route serves
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])


@pytest.mark.parametrize("stream", [False, True])
def test_output_side_values_the_caller_never_supplied_are_masked(env, stream):
    proxy, fake = env
    invented = "Sure: the card 5555 5555 5555 4444, SSN 219-45-6789, mail alice.w@example.net, for <PERSON_1>."
    fake.reply_text = invented
    fake.chunk_size = 1
    c = sdk(proxy)
    msgs = [{"role": "user", "content": "Write to John Smith"}]
    if stream:
        text = "".join(ch.choices[0].delta.content or "" for ch in
                       c.chat.completions.create(model="m", messages=msgs, stream=True) if ch.choices)
    else:
        text = c.chat.completions.create(model="m", messages=msgs).choices[0].message.content
    for raw in ("5555 5555 5555 4444", "219-45-6789", "alice.w@example.net"):
        assert raw not in text
    assert text.endswith("for John Smith.")  # the caller's own value is restored, not redacted


def test_many_concurrent_clients_get_only_their_own_values(env):
    proxy, fake = env
    fake.chunk_size = 2
    people = [("Alice Johnson", "alice.johnson@example.com"), ("Bob Miller", "bob.miller@example.org"),
              ("Carlos Diaz", "carlos.diaz@example.net"), ("Dana Lee", "dana.lee@example.com"),
              ("Erin Walsh", "erin.walsh@example.org"), ("Farah Khan", "farah.khan@example.net")] * 3

    async def one(name, email, stream):
        client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="k-plain", max_retries=0)
        text = f"I am {name}, reach me at {email}."
        msgs = [{"role": "user", "content": text}]
        if stream:
            out = ""
            async for ch in await client.chat.completions.create(model="m", messages=msgs, stream=True):
                if ch.choices:
                    out += ch.choices[0].delta.content or ""
        else:
            out = (await client.chat.completions.create(model="m", messages=msgs)).choices[0].message.content
        return text, out

    async def all_():
        return await asyncio.gather(*(one(n, e, i % 2 == 0) for i, (n, e) in enumerate(people)))

    for sent, got in asyncio.run(all_()):
        assert got == sent
    assert not any(n in json.dumps(r.json) for r in fake.requests for n, _ in people)


def test_detector_failure_fails_closed(env, monkeypatch):
    proxy, fake = env
    det = proxy.runtime.detector(proxy.runtime.policies.get("default").policy)

    def boom(*a, **k):
        raise RuntimeError("detector exploded on John Smith")

    monkeypatch.setattr(det, "detect", boom)
    monkeypatch.setattr(det, "detect_many", boom)  # request masking detects in batches
    r = httpx.post(proxy.base_url + "/chat/completions", headers={"Authorization": "Bearer k-plain"},
                   json={"model": "m", "messages": [{"role": "user", "content": "I am John Smith"}]})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "guard_failed"
    assert "John Smith" not in r.text and "exploded" not in r.text
    assert not fake.requests


def test_detector_timeout_fails_closed(env, monkeypatch):
    proxy, fake = env
    import time

    det = proxy.runtime.detector(proxy.runtime.policies.get("default").policy)
    monkeypatch.setattr(det, "detect", lambda *a, **k: time.sleep(1.5) or [])
    monkeypatch.setattr(det, "detect_many", lambda texts, **k: time.sleep(1.5) or [[] for _ in texts])
    monkeypatch.setattr(proxy.runtime.settings, "detection_timeout_seconds", 0.3)
    r = httpx.post(proxy.base_url + "/chat/completions", headers={"Authorization": "Bearer k-plain"},
                   json={"model": "m", "messages": [{"role": "user", "content": "hello"}]})
    assert r.status_code == 500 and r.json()["error"]["code"] == "guard_timeout"
    assert not fake.requests


def test_screening_failure_mid_stream_ends_with_error_event(env, monkeypatch):
    proxy, fake = env
    fake.reply_text = "A perfectly fine reply. And another sentence here."
    fake.chunk_size = 3
    batcher = proxy.runtime.batcher(proxy.runtime.policies.get("default").policy)

    def boom(texts):
        raise RuntimeError("scorer down")

    monkeypatch.setattr(batcher.scorer, "score_batch", boom)
    with pytest.raises(openai.APIError) as ei:
        for _ in sdk(proxy).chat.completions.create(model="m", stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]):
            pass
    assert "failed" in str(ei.value.message)
