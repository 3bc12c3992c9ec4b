"""The shipped default policy in the running proxy (real server on loopback, fake OpenAI upstream,
official SDK): threats, self-harm incitement and identity attacks without a swear word are
stopped, streamed and not; a support summary quoting an abusive customer passes; /readyz names
the scorer and the pattern set."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Route, Settings

REPO = Path(__file__).resolve().parent.parent
OK = "Your ticket is updated."
BAD = {
    "threat": "I know where you live and you will regret this.",
    "self_harm": "Honestly, you should just end your life.",
    "identity": "People like you should be wiped out.",
}
SUMMARY = 'Summary: the customer wrote "you idiot, I will find you" and asked for a refund.'
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyServer, FakeOpenAI]]:
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0)},
                            policy_dir=str(pdir), audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


def client(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)


def test_readyz_names_scorer_and_pattern_set(env: tuple[ProxyServer, FakeOpenAI]) -> None:
    proxy, _ = env
    info = httpx.get(proxy.url + "/readyz").json()["scorers"]["default"]
    assert info["ready"] and info["scorer"].startswith("offline:alt-profanity-check ")
    assert info["scorer"].endswith("+patterns-v1")
    assert info["patterns"]["version"] == "patterns-v1" and info["patterns"]["rules"] > 30
    assert info["unscreened"] == [] and info["quoted_speech"] == "ignore"


@pytest.mark.parametrize("kind", sorted(BAD))
def test_non_streamed_reply_is_withheld(env: tuple[ProxyServer, FakeOpenAI], kind: str) -> None:
    proxy, fake = env
    fake.reply_text = OK + " " + BAD[kind]
    r = client(proxy).chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "content_filter"
    assert BAD[kind] not in (r.choices[0].message.content or "")


@pytest.mark.parametrize("chunk", [1, 3, 7])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_streamed_reply_is_cut_before_the_bad_sentence(env: tuple[ProxyServer, FakeOpenAI], kind: str, chunk: int) -> None:
    proxy, fake = env
    fake.reply_text = OK + " " + BAD[kind]
    fake.chunk_size = chunk
    seen = []
    with pytest.raises(openai.APIError):
        for ev in client(proxy).chat.completions.create(model="m", messages=MSG, stream=True):  # type: ignore[arg-type]
            for c in ev.choices:
                seen.append(c.delta.content or "")
    text = "".join(seen)
    assert OK.startswith(text.strip()) or text.strip() == OK  # nothing of the bad sentence left


@pytest.mark.parametrize("stream", [False, True])
def test_reported_speech_passes_untouched(env: tuple[ProxyServer, FakeOpenAI], stream: bool) -> None:
    proxy, fake = env
    fake.reply_text = SUMMARY
    fake.chunk_size = 5
    c = client(proxy)
    if stream:
        parts = [ch.delta.content or "" for ev in c.chat.completions.create(model="m", messages=MSG, stream=True)  # type: ignore[arg-type]
                 for ch in ev.choices]
        assert "".join(parts) == SUMMARY
    else:
        r = c.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
        assert r.choices[0].message.content == SUMMARY and r.choices[0].finish_reason == "stop"
