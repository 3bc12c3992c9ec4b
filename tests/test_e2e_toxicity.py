"""Toxicity screening in the running proxy: block, redact and flag, streamed and not, with the
offline scorer; clean replies pass untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import openai
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent
TOXIC = "You are a stupid fucking idiot and I hate you."
CLEAN = "Thanks for asking. The weather in the report looks fine."

POLICY = """name: tox-{action}
extends: default
output:
  toxicity:
    enabled: true
    scorer: profanity_check
    mode: {mode}
    categories:
      toxicity: {{threshold: 0.5, action: {action}}}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("policies")
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    clients = []
    for action in ("block", "redact", "flag"):
        (pdir / f"tox-{action}.yaml").write_text(POLICY.format(action=action, mode="hold"))
        clients.append(Client(name=action, key_sha256=hash_key(f"key-{action}"), policy=f"tox-{action}"))
    (pdir / "tox-fast.yaml").write_text(POLICY.format(action="block", mode="fast").replace("tox-block", "tox-fast"))
    clients.append(Client(name="fast", key_sha256=hash_key("key-fast"), policy="tox-fast"))
    (pdir / "tox-prompt.yaml").write_text(POLICY.format(action="block", mode="hold").replace("tox-block", "tox-prompt")
                                          + "    screen_prompts: true\n")
    clients.append(Client(name="prompt", key_sha256=hash_key("key-prompt"), policy="tox-prompt"))
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0)},
                            clients=clients, policy_dir=str(pdir), audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


def client(proxy, name):
    return openai.OpenAI(base_url=proxy.base_url, api_key=f"key-{name}", max_retries=0)


def stream_text(c, **kw):
    parts, finish = [], None
    for chunk in c.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "hi"}], **kw):
        for ch in chunk.choices:
            parts.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    return "".join(parts), finish


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_clean_reply_passes_untouched(env, chunk):
    proxy, fake = env
    fake.reply_text = CLEAN
    fake.chunk_size = chunk
    for name in ("block", "redact", "flag", "fast"):
        c = client(proxy, name)
        assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]) \
            .choices[0].message.content == CLEAN
        assert stream_text(c) == (CLEAN, "stop")


def test_block_non_streamed_replaces_reply(env):
    proxy, fake = env
    fake.reply_text = CLEAN + " " + TOXIC
    resp = client(proxy, "block").chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}])
    r = resp.parse()
    assert r.choices[0].finish_reason == "content_filter"
    assert "idiot" not in r.choices[0].message.content
    assert "withheld" in r.choices[0].message.content


@pytest.mark.parametrize("chunk", [1, 2, 5, 11])
@pytest.mark.parametrize("policy", ["block", "fast"])
def test_block_streamed_ends_with_error_event(env, chunk, policy):
    proxy, fake = env
    fake.reply_text = CLEAN + " " + TOXIC
    fake.chunk_size = chunk
    seen = []
    with pytest.raises(openai.APIError) as ei:
        for ch in client(proxy, policy).chat.completions.create(model="m", stream=True,
                                                                messages=[{"role": "user", "content": "hi"}]):
            for c in ch.choices:
                seen.append(c.delta.content or "")
                if c.finish_reason:
                    assert c.finish_reason == "content_filter"
    assert "content policy" in str(ei.value.message)
    text = "".join(seen)
    if policy == "block":  # hold mode: nothing of the toxic sentence was released
        assert "stupid" not in text and "idiot" not in text
        assert text == "" or CLEAN.startswith(text.strip()) or text.strip() == CLEAN


@pytest.mark.parametrize("stream", [False, True])
def test_redact_replaces_the_sentence(env, stream):
    proxy, fake = env
    fake.reply_text = CLEAN + " " + TOXIC
    fake.chunk_size = 3
    c = client(proxy, "redact")
    if stream:
        text, finish = stream_text(c)
    else:
        r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        text, finish = r.choices[0].message.content, r.choices[0].finish_reason
    assert "idiot" not in text and "stupid" not in text
    assert text.startswith("Thanks for asking.")
    assert "[removed by content policy]" in text
    assert finish == "stop"


def test_flag_passes_and_is_reported(env):
    proxy, fake = env
    fake.reply_text = TOXIC
    raw = client(proxy, "flag").chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == TOXIC
    assert "toxicity:toxicity" in raw.headers["x-trustproxy-flags"]
    assert stream_text(client(proxy, "flag")) == (TOXIC, "stop")


DETOX = """name: default
output:
  toxicity:
    scorer: detoxify
    detoxify_variant: original
    checkpoint: /nonexistent/toxic_original.ckpt
{fallback}
"""


def test_detoxify_policy_without_checkpoint_does_not_start(tmp_path):
    from trustproxy.policy.errors import PolicyFileError

    (tmp_path / "default.yaml").write_text(DETOX.format(fallback=""))
    with pytest.raises(PolicyFileError) as ei:  # the policy cannot be prepared: it never serves
        with ProxyServer(Settings(policy_dir=str(tmp_path), audit={"stdout": False, "path": None})):
            pass
    assert "/nonexistent/toxic_original.ckpt" in str(ei.value)  # the full line, for the operator's terminal
    (safe,) = ei.value.safe_problems()  # what logs and /readyz get: no path
    assert safe.startswith("default.yaml:") and " output.toxicity.scorer: the toxicity scorer cannot be loaded " \
        "(checkpoint missing" in safe and "/nonexistent" not in safe


def test_detoxify_policy_with_named_fallback_says_so(tmp_path):
    import httpx

    (tmp_path / "default.yaml").write_text(DETOX.format(fallback="    fallback: profanity_check"))
    with ProxyServer(Settings(policy_dir=str(tmp_path), audit={"stdout": False, "path": None})) as proxy:
        ready = httpx.get(proxy.url + "/readyz").json()
        scorer = ready["scorers"]["default"]["scorer"]
        assert scorer.startswith("profanity_check (fallback for detoxify:original")
        r = openai.OpenAI(base_url=proxy.base_url, api_key="x").chat.completions.create(
            model="echo", messages=[{"role": "user", "content": TOXIC}])
        assert r.choices[0].finish_reason == "content_filter"


def test_abusive_prompts_are_refused_when_the_policy_screens_them(env):
    proxy, fake = env
    fake.reset()
    with pytest.raises(openai.BadRequestError) as ei:
        client(proxy, "prompt").chat.completions.create(model="m", messages=[{"role": "user", "content": TOXIC}])
    assert ei.value.body["code"] == "prompt_blocked"
    assert "idiot" not in str(ei.value.body)
    assert not fake.requests  # nothing went upstream
    fake.reply_text = CLEAN
    r = client(proxy, "prompt").chat.completions.create(model="m", messages=[{"role": "user", "content": CLEAN}])
    assert r.choices[0].message.content == CLEAN
