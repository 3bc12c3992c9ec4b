"""The embedded default: the echo model, the default policy, the official openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from tests.proxy import ProxyServer
from trustproxy.settings import load_settings


@pytest.fixture(scope="module")
def proxy():
    with ProxyServer(load_settings()) as p:
        yield p


def test_round_trip_masks_out_restores_back(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused")
    text = "Hi, I am John Smith, mail john.smith@example.com or call 415-555-0123."
    raw = client.chat.completions.with_raw_response.create(model="echo", messages=[{"role": "user", "content": text}])
    resp = raw.parse()
    assert resp.choices[0].message.content == text
    ents = raw.headers["x-trustproxy-entities"]
    assert "EMAIL_ADDRESS=1" in ents and "PERSON=1" in ents
    assert raw.headers["x-request-id"]


def test_streaming_equals_non_streaming(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused")
    text = "Card 4111 1111 1111 1111 belongs to Maria Garcia, SSN 536-22-8106."
    full = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": text}])
    parts = []
    for chunk in client.chat.completions.create(model="echo", messages=[{"role": "user", "content": text}],
                                                stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    assert "".join(parts) == full.choices[0].message.content == text


async def test_async_client(proxy):
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="unused")
    resp = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello there"}])
    assert resp.choices[0].message.content == "hello there"


def test_models_and_unknown_paths(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused")
    assert [m.id for m in client.models.list()] == ["echo"]
    with pytest.raises(openai.NotFoundError) as ei:
        client.completions.create(model="echo", prompt="x")
    assert ei.value.body["code"] == "not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_inspect_shows_what_provider_sees(proxy):
    import urllib.request

    req = urllib.request.Request(proxy.url + "/v1/trust/inspect", method="POST",
                                 data=json.dumps({"text": "Email jane.doe@example.org now"}).encode(),
                                 headers={"Content-Type": "application/json"})
    body = json.loads(urllib.request.urlopen(req).read())
    assert body["provider_text"] == "Email <EMAIL_ADDRESS_1> now"
    assert body["detected"][0]["entity_type"] == "EMAIL_ADDRESS"


def test_cli_policy_explain_and_check():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "trustproxy.cli", "policy", "explain", "--policy", "default",
                          "Hi, I am John Smith"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "Hi, I am <PERSON_1>" in out.stdout and "PERSON" in out.stdout
    out = subprocess.run([sys.executable, "-m", "trustproxy.cli", "policy", "check", "policies"],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "ok default" in out.stdout
