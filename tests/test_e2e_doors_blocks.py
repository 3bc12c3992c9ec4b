"""Policy blocks on the agent doors, in each door's own shape: a toxic reply (whole and
streamed) and a request carrying a blocked entity type (never sent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import anthropic
import openai
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent
TOXIC = "You are a stupid fucking idiot and I hate you."
POLICIES = {
    "tox": """name: tox
extends: default
output:
  toxicity:
    enabled: true
    scorer: profanity_check
    mode: hold
    categories:
      toxicity: {threshold: 0.5, action: block}
""",
    "nossn": """name: nossn
extends: default
entities:
  - {type: US_SSN, action: block}
""",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    for name, text in POLICIES.items():
        (pdir / f"{name}.yaml").write_text(text)
    clients = [Client(name=n, key_sha256=hash_key(f"key-{n}"), policy=n) for n in POLICIES]
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0)},
                            clients=clients, policy_dir=str(pdir), audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    env[1].reply_text = TOXIC
    env[1].chunk_size = 3


def test_messages_toxic_reply_blocked(env):
    proxy, _ = env
    c = anthropic.Anthropic(base_url=proxy.url, api_key="key-tox", max_retries=0)
    args = dict(model="m", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    msg = c.messages.create(**args)
    assert msg.stop_reason == "refusal"
    assert "idiot" not in msg.content[0].text
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as ei:
        with c.messages.stream(**args) as s:
            for piece in s.text_stream:
                seen.append(piece)
    assert "idiot" not in "".join(seen)
    assert ei.value.body["type"] == "error"


def test_responses_toxic_reply_blocked(env):
    proxy, _ = env
    c = openai.OpenAI(base_url=proxy.base_url, api_key="key-tox", max_retries=0)
    resp = c.responses.create(model="m", input="hi")
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "content_filter"
    assert "idiot" not in resp.output_text
    events = list(c.responses.create(model="m", input="hi", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "idiot" not in text
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.error.code == "content_filter"


def test_blocked_entity_never_sent_and_refused_in_door_shape(env):
    proxy, fake = env
    text = "My SSN is 536-22-8106."
    with pytest.raises(anthropic.BadRequestError) as ei:
        anthropic.Anthropic(base_url=proxy.url, api_key="key-nossn", max_retries=0).messages.create(
            model="m", max_tokens=8, messages=[{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": text}]}])
    assert ei.value.body["error"]["type"] == "invalid_request_error" and "US_SSN" in ei.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as ei2:
        openai.OpenAI(base_url=proxy.base_url, api_key="key-nossn", max_retries=0).responses.create(
            model="m", input=[{"type": "function_call_output", "call_id": "c1", "output": text}])
    assert ei2.value.body["code"] == "policy_blocked"
    assert not fake.requests
