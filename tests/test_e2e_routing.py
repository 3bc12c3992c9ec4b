"""Retries and fallbacks: litellm's retries on a single route, the Router's fallbacks across
routes, seen from the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.providers import FakeAnthropic, FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Route, Settings


@pytest.fixture(scope="module")
def env():
    with FakeOpenAI(model="primary") as first, FakeAnthropic() as second:
        p1, p2 = first.litellm_params(), second.litellm_params()
        routes = {
            "retry": Route(model=p1["model"], api_base=p1["api_base"], max_retries=2),
            "primary": Route(model=p1["model"], api_base=p1["api_base"], max_retries=0, fallbacks=["backup"]),
            "backup": Route(model=p2["model"], api_base=p2["api_base"], max_retries=0),
        }
        with ProxyServer(Settings(routes=routes, audit={"stdout": False, "path": None})) as proxy:
            yield proxy, first, second


@pytest.fixture(autouse=True)
def _reset(env):
    for f in env[1:]:
        f.reset()
        f.fail_status = None
        f.fail_times = None
    yield


def client(proxy):
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)


def test_retry_recovers_from_a_transient_failure(env):
    proxy, first, _ = env
    first.fail_status, first.fail_times = 503, 1
    r = client(proxy).chat.completions.create(model="retry", messages=[{"role": "user", "content": "hello John Smith"}])
    assert r.choices[0].message.content == "hello John Smith"
    assert len(first.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_another_provider(env, stream):
    proxy, first, second = env
    first.fail_status = 500
    msgs = [{"role": "user", "content": "hello John Smith"}]
    c = client(proxy)
    if stream:
        text = "".join(ch.choices[0].delta.content or "" for ch in
                       c.chat.completions.create(model="primary", messages=msgs, stream=True) if ch.choices)
    else:
        text = c.chat.completions.create(model="primary", messages=msgs).choices[0].message.content
    assert text == "hello John Smith"
    assert first.requests and second.requests
    assert "John Smith" not in str(second.last.json)  # the fallback provider saw the masked text too
