"""The playground's endpoint and page, `/v1/trust/inspect` and tenant scoping, over real
loopback HTTP against the real proxy (real detector, a fake OpenAI provider server)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.policy import commands
from trustproxy.settings import Client, Route, Settings, hash_key

REPO = Path(__file__).resolve().parent.parent
TEXT = "I am John Smith, mail john.smith@example.com, card 4111 1111 1111 1111"
CANARY_NAME = "Quentin Abernathy-Lowell"

STRICT = """name: strict
extends: default
entities:
  - {type: US_SSN, action: block}
"""
ROUTEPOL = """name: routepol
extends: default
entities:
  - {type: EMAIL_ADDRESS, action: redact}
retention:
  require_zero_data_retention_for: [CREDIT_CARD]
output:
  toxicity:
    screen_prompts: true
"""
OTHER = """name: other
extends: default
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyServer, FakeOpenAI, Path, Path]]:
    tmp = tmp_path_factory.mktemp("pg")
    pdir = tmp / "policies"
    pdir.mkdir()
    for f in (REPO / "policies").glob("*.yaml"):
        shutil.copy(f, pdir / f.name)
    (pdir / "strict.yaml").write_text(STRICT)
    (pdir / "routepol.yaml").write_text(ROUTEPOL)
    (pdir / "other.yaml").write_text(OTHER)
    audit = tmp / "audit.jsonl"
    clients = [Client(name="plain", key_sha256=hash_key("k-plain"), tenant="t1"),
               Client(name="strict", key_sha256=hash_key("k-strict"), tenant="t2", policy="strict")]
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        route = Route(model=p["model"], api_base=p["api_base"], max_retries=0)
        settings = Settings(routes={"m": route, "m-routed": route.model_copy(update={"policy": "routepol"}),
                                    "m-routed-zdr": route.model_copy(update={"policy": "routepol",
                                                                             "zero_data_retention": True})},
                            clients=clients, policy_dir=str(pdir),
                            audit={"stdout": False, "path": str(audit)})
        with ProxyServer(settings) as proxy:
            yield proxy, fake, pdir, audit


def post(proxy: ProxyServer, path: str, body: Any, key: str | None = "k-plain") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(proxy.url + path, json=body, headers=headers, timeout=60)


def pg(proxy: ProxyServer, body: Any, key: str | None = "k-plain") -> httpx.Response:
    return post(proxy, "/v1/trust/playground", body, key)


# ---- inspect: compatible, one dry run, scoped --------------------------------------------------

def test_inspect_keeps_its_keys_and_adds_recognizers(env: Any) -> None:
    proxy = env[0]
    r = post(proxy, "/v1/trust/inspect", {"text": TEXT})
    assert r.status_code == 200
    body = r.json()
    assert body["provider_text"] == "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert {"detected", "blocked", "blocked_types", "provider_text", "policy", "policy_version"} <= set(body)
    assert body["policy"] == "default" and body["blocked"] is False
    found = {d["entity_type"]: d for d in body["detected"]}
    assert TEXT[found["EMAIL_ADDRESS"]["start"]:found["EMAIL_ADDRESS"]["end"]] == "john.smith@example.com"
    assert found["CREDIT_CARD"]["recognizer"] == "CreditCardRecognizer"
    assert found["PERSON"]["action"] == "mask" and 0 < found["PERSON"]["score"] <= 1
    assert "reply" not in body  # only when a reply is scripted


def test_inspect_with_a_scripted_reply(env: Any) -> None:
    proxy = env[0]
    body = post(proxy, "/v1/trust/inspect", {"text": TEXT, "reply": "Hi <PERSON_1>, my card is 5555 5555 5555 4444."}).json()
    rep = body["reply"]
    assert rep["user_text"] == "Hi John Smith, my card is <CREDIT_CARD>."
    assert rep["restored"] == ["PERSON_1"]
    assert [o["entity_type"] for o in rep["output_pii"]] == ["CREDIT_CARD"]
    assert rep["toxicity"]["decision"] == "pass" and "toxicity" in rep["toxicity"]["max_scores"]


def test_dry_run_of_a_request_body_is_what_the_provider_really_receives(env: Any) -> None:
    """The same masking as the live path: the fake provider's received body equals the dry
    run's provider view, slot for slot."""
    proxy, fake = env[0], env[1]
    req = {"model": "m", "messages": [
        {"role": "system", "content": "You help John Smith."},
        {"role": "user", "name": "Maria Garcia", "content": [{"type": "text", "text": "mail me at a.b@example.com, I am Bob "},
                                                                {"type": "text", "text": "Jones"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "send", "arguments": json.dumps({"to": "jane.roe@example.org"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to jane.roe@example.org"}]}
    dry = post(proxy, "/v1/trust/inspect", {"request": req}).json()
    fake.reset()
    r = post(proxy, "/v1/chat/completions", req)
    assert r.status_code == 200, r.text
    sent = fake.last.json["messages"]
    assert [m.get("content") for m in sent] == [m.get("content") for m in dry["provider_body"]["messages"]]
    assert sent[1]["name"] == dry["provider_body"]["messages"][1]["name"]
    assert sent[2]["tool_calls"][0]["function"]["arguments"] == \
        dry["provider_body"]["messages"][2]["tool_calls"][0]["function"]["arguments"]
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for d in dry["detected"]:
        by_slot.setdefault(d["slot"], []).append(d)
    originals = {s["path"]: s["original"] for s in dry["slots"]}
    values = {originals[p][d["start"]:d["end"]] for p, ds in by_slot.items() for d in ds if d["start"] is not None}
    assert {"a.b@example.com", "jane.roe@example.org", "Maria Garcia"} <= values
    assert by_slot["messages[1].name"][0]["recognizer"] == "name field"


def test_unknown_policy_is_404_in_the_error_shape(env: Any) -> None:
    proxy = env[0]
    for path, body in (("/v1/trust/inspect", {"text": "x", "policy": "nope"}),
                       ("/v1/trust/playground", {"op": "source", "policy": "nope"})):
        r = post(proxy, path, body)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"error": {"message": "Unknown policy.", "type": "invalid_request_error",
                                      "param": "policy", "code": "policy_not_found"}}


def test_tenant_scoping(env: Any) -> None:
    proxy = env[0]
    names = lambda key: [p["name"] for p in pg(proxy, {"op": "policies"}, key).json()["policies"]]  # noqa: E731
    assert names("k-plain") == ["default", "routepol"]       # the routes' policies and the default
    assert names("k-strict") == ["default", "strict"]        # its own (wins over any route's) and the default
    # another tenant's policy, or one nobody is given, looks exactly like an unknown one
    for key, name in (("k-plain", "strict"), ("k-plain", "other"), ("k-strict", "routepol"), ("k-strict", "pci")):
        for path, body in (("/v1/trust/inspect", {"text": "x", "policy": name}),
                           ("/v1/trust/playground", {"op": "run", "policy": name, "input": "x"}),
                           ("/v1/trust/playground", {"op": "source", "policy": name})):
            r = post(proxy, path, body, key)
            assert r.status_code == 404 and r.json()["error"]["message"] == "Unknown policy.", (key, name, path)
    # no name: what a real request would get
    assert post(proxy, "/v1/trust/inspect", {"text": "x"}, "k-strict").json()["policy"] == "strict"
    assert post(proxy, "/v1/trust/inspect", {"request": {"model": "m-routed", "messages": [
        {"role": "user", "content": "x"}]}}).json()["policy"] == "routepol"
    assert post(proxy, "/v1/trust/inspect", {"text": "x", "policy": "routepol"}).status_code == 200
    # and a key is needed at all
    assert pg(proxy, {"op": "policies"}, key=None).status_code == 401


# ---- the playground endpoint -------------------------------------------------------------------

def test_run_shows_the_three_views(env: Any) -> None:
    proxy = env[0]
    live = pg(proxy, {"op": "run", "input": TEXT}).json()["live"]
    assert live["provider_text"] == "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert live["reply"]["provider_reply"] == live["provider_text"]  # default: the echo
    assert live["reply"]["user_text"] == TEXT
    assert sorted(live["reply"]["restored"]) == ["CREDIT_CARD_1", "EMAIL_ADDRESS_1", "PERSON_1"]
    toxic = pg(proxy, {"op": "run", "input": TEXT, "reply": "You are a stupid idiot, <PERSON_1>."}).json()["live"]
    assert toxic["reply"]["blocked"] is True
    assert toxic["reply"]["user_text"] == "The response was withheld by the content policy."
    assert toxic["reply"]["toxicity"]["decision"] == "block"


def _check_lines(tmp: Path, name: str, text: str) -> list[str]:
    (tmp / f"{name}.yaml").write_text(text)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        commands.check([str(tmp / f"{name}.yaml")])
    prefix = str(tmp) + "/"
    return [line.replace(prefix, "") for line in buf.getvalue().splitlines() if not line.endswith("problem(s) found")]


def test_draft_errors_are_policy_checks_own(env: Any, tmp_path: Path) -> None:
    proxy, _, pdir, _ = env
    broken = "name: default\nentities:\n  - {type: EMAIL_ADDRESS, action: mask_all}\n  - type: PERSON\n    treshold: 0.5\n"
    d = pg(proxy, {"op": "check", "policy": "default", "draft": broken}).json()
    assert d["ok"] is False
    assert d["problems"] == _check_lines(tmp_path, "default", broken)
    assert d["problems"][0].startswith("default.yaml:3:")
    assert any(p.startswith("default.yaml:5:5 entities[1].treshold: unknown field 'treshold' (did you mean 'threshold'?)")
               for p in d["problems"])
    yaml_error = pg(proxy, {"op": "check", "policy": "default", "draft": "name: default\nentities: [\n"}).json()
    assert re.match(r"^default\.yaml:\d+:\d+: YAML syntax error", yaml_error["problems"][0])
    # extends composes on the live parent; an unknown parent is named, no server path shown
    child = pg(proxy, {"op": "check", "policy": "routepol", "draft": ROUTEPOL}).json()
    assert child["ok"] and child["chain"] == ["routepol", "default"]
    assert child["version"] == proxy.runtime.policies.policies["routepol"].version
    orphan = pg(proxy, {"op": "check", "policy": "routepol", "draft": ROUTEPOL.replace("extends: default", "extends: strict")}).json()
    assert orphan["ok"] is False and "no policy named 'strict'" in orphan["problems"][0]
    assert "/tmp" not in json.dumps(orphan) and str(pdir) not in json.dumps(orphan)


def test_golden_tests_of_a_draft(env: Any) -> None:
    proxy = env[0]
    src = pg(proxy, {"op": "source", "policy": "default"}).json()["yaml"]
    good = pg(proxy, {"op": "test", "policy": "default", "draft": src}).json()
    assert good["ok"] and good["failed"] == 0 and good["passed"] == len(good["results"]) > 0
    wrong = src + ("\n  - name: expects the card to pass\n    text: \"card 4111 1111 1111 1111\"\n"
                   "    expect: {detected: []}\n")
    bad = pg(proxy, {"op": "test", "policy": "default", "draft": wrong}).json()
    assert bad["failed"] == 1
    fail = [r for r in bad["results"] if not r["passed"]][0]
    assert fail["name"] == "expects the card to pass" and "also detected CREDIT_CARD" in fail["failures"][0]


def test_draft_vs_live_and_the_draft_never_goes_live(env: Any) -> None:
    proxy, _, pdir, _ = env
    before = proxy.runtime.policies.versions()
    on_disk = (pdir / "default.yaml").read_text()
    src = pg(proxy, {"op": "source", "policy": "default"}).json()["yaml"]
    assert src == on_disk
    draft = src.replace("{type: EMAIL_ADDRESS, action: mask}", "{type: EMAIL_ADDRESS, action: redact}", 1)
    assert draft != src
    out = pg(proxy, {"op": "run", "policy": "default", "input": TEXT, "draft": draft}).json()
    diff = out["diff"]
    assert diff["same"] is False
    assert [(c["change"], c["entity_type"], c["live_action"], c["action"]) for c in diff["changes"]] == \
        [("action changed", "EMAIL_ADDRESS", "mask", "redact")]
    assert diff["provider_text"] == {"live": "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>",
                                     "draft": "I am <PERSON_1>, mail <EMAIL_ADDRESS>, card <CREDIT_CARD_1>",
                                     "changed": True}
    assert diff["user_text"]["draft"] == "I am John Smith, mail <EMAIL_ADDRESS>, card 4111 1111 1111 1111"
    assert out["draft"]["version"] != before["default"]
    # nothing swapped, nothing written
    assert proxy.runtime.policies.versions() == before
    assert (pdir / "default.yaml").read_text() == on_disk
    assert post(proxy, "/v1/trust/inspect", {"text": TEXT}).json()["provider_text"].count("<EMAIL_ADDRESS_1>") == 1


def test_a_draft_needing_a_model_the_proxy_has_not_loaded_is_refused(env: Any) -> None:
    proxy = env[0]
    d = pg(proxy, {"op": "check", "policy": "default",
                   "draft": "name: default\nnlp_model: de_core_news_lg\nlanguage: de\n"}).json()
    assert d["ok"] is False and "is not loaded in this proxy" in d["problems"][0]
    r = pg(proxy, {"op": "run", "policy": "default", "input": "x",
                   "draft": "name: default\nnlp_model: de_core_news_lg\nlanguage: de\n"}).json()
    assert "result" not in r["draft"] and "diff" not in r


def test_bad_bodies(env: Any) -> None:
    proxy = env[0]
    assert pg(proxy, {"op": "format-disk"}).status_code == 400
    assert pg(proxy, {"op": "run"}).status_code == 400
    r = pg(proxy, {"op": "run", "input": json.dumps({"model": "m", "api_base": "http://evil/", "messages": [
        {"role": "user", "content": "x"}]})})
    assert r.status_code == 400 and r.json()["error"]["code"] == "forbidden_field"


def test_one_audit_event_per_call_and_no_text_in_it(env: Any) -> None:
    proxy, _, _, audit = env
    rid = "0b1e7a52-6c1f-4b7e-9a55-2f4f3c8d9e01"  # a UUID: kept as the request id (other ids are hashed)
    r = httpx.post(proxy.url + "/v1/trust/playground", timeout=60,
                   headers={"Authorization": "Bearer k-plain", "x-request-id": rid},
                   json={"op": "run", "input": f"I am {CANARY_NAME}", "reply": f"Bye {CANARY_NAME}",
                         "draft": "name: default\n"})
    assert r.status_code == 200 and CANARY_NAME in r.text  # the caller's own answer
    import time

    deadline = time.monotonic() + 10  # audit events are written by a writer thread
    while True:
        events = [json.loads(line) for line in audit.read_text().splitlines()]
        mine = [e for e in events if e["request_id"] == rid]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 1 and mine[0]["route"] == "playground" and mine[0]["outcome"] == "ok"
    assert CANARY_NAME not in audit.read_text() and "Quentin" not in audit.read_text()


# ---- the page ---------------------------------------------------------------------------------

class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.urls: list[str] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
            self._in_script = True
        self.handlers += [k for k in a if k.startswith("on")]
        self.urls += [v for k, v in a.items() if k in ("src", "href") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def test_page_is_self_contained_with_a_strict_csp(env: Any) -> None:
    proxy = env[0]
    r = httpx.get(proxy.url + "/playground")  # a browser cannot send a key on navigation: the page holds no data
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    scan = _Scan()
    scan.feed(r.text)
    assert scan.scripts == [{"src": "/playground/app.js", "defer": None}] and not scan.inline_script
    assert scan.handlers == []
    assert all(u.startswith("/playground/") for u in scan.urls), scan.urls
    for asset in ("app.js", "app.css"):
        a = httpx.get(proxy.url + f"/playground/{asset}")
        assert a.status_code == 200 and a.headers["content-security-policy"] == csp
        assert not re.search(r"https?://", a.text), asset  # no third-party origin
    assert httpx.get(proxy.url + "/playground/favicon.svg").status_code == 200
    js = httpx.get(proxy.url + "/playground/app.js").text
    assert "innerHTML" not in js and "eval(" not in js and "localStorage" not in js and "sessionStorage" not in js


def _settings(**kw: Any) -> Settings:
    return Settings(audit={"stdout": False, "path": None}, **kw)


@pytest.mark.parametrize("case", ["switched off", "open non-loopback"])
def test_playground_off(case: str) -> None:
    s = _settings(playground={"enabled": False}) if case == "switched off" else \
        _settings(host="0.0.0.0", allow_unauthenticated=True)
    with ProxyServer(s) as proxy:
        assert httpx.get(proxy.url + "/playground").status_code == 404
        assert httpx.get(proxy.url + "/playground/app.js").status_code == 404
        r = httpx.post(proxy.url + "/v1/trust/playground", json={"op": "policies"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert httpx.post(proxy.url + "/v1/trust/inspect", json={"text": "x"}).status_code == 200


def test_non_loopback_needs_a_client_key() -> None:
    with ProxyServer(_settings(host="0.0.0.0", clients=[Client(name="a", key_sha256=hash_key("k-a"))])) as proxy:
        assert httpx.get(proxy.url + "/playground").status_code == 200
        r = httpx.post(proxy.url + "/v1/trust/playground", json={"op": "policies"})
        assert r.status_code == 401
        r = httpx.post(proxy.url + "/v1/trust/playground", json={"op": "policies"}, headers={"Authorization": "Bearer k-a"})
        assert r.status_code == 200 and [p["name"] for p in r.json()["policies"]] == ["default"]


def test_only_its_own_origin_may_call() -> None:
    with ProxyServer(_settings()) as proxy:
        url = proxy.url + "/v1/trust/playground"
        ok = httpx.post(url, json={"op": "policies"}, headers={"Origin": proxy.url})
        assert ok.status_code == 200
        # a cross-site page: a simple text/plain post, or a JSON one from another origin
        r = httpx.post(url, content=b'{"op": "policies"}', headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = httpx.post(url, json={"op": "policies"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
        # a DNS name rebound to 127.0.0.1 reaching a keyless proxy
        r = httpx.post(url, json={"op": "policies"}, headers={"Host": "rebound.evil.example:8080"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "loopback_only"
        assert "access-control-allow-origin" not in {k.lower() for k in ok.headers}


def test_the_request_checks_after_masking(env: Any) -> None:
    """As a real request: the route's zero-data-retention requirement, the prompt screen."""
    proxy, fake = env[0], env[1]

    def body(model: str, text: str) -> dict[str, Any]:
        return {"model": model, "messages": [{"role": "user", "content": text}]}

    card = "pay with 4111 1111 1111 1111"
    dry = post(proxy, "/v1/trust/inspect", {"request": body("m-routed", card), "reply": "ok"}).json()
    assert dry["policy"] == "routepol" and dry["refusal"] == "zero_data_retention_required"
    assert "CREDIT_CARD" in dry["refusal_message"] and "reply" in dry and dry["reply"] is None
    real = post(proxy, "/v1/chat/completions", body("m-routed", card))
    assert real.status_code == 403 and real.json()["error"]["code"] == dry["refusal"]
    ok = post(proxy, "/v1/trust/inspect", {"request": body("m-routed-zdr", card)}).json()
    assert ok["refusal"] is None
    rude = "You are a stupid idiot."
    dry = pg(proxy, {"op": "run", "input": body("m-routed", rude)}).json()["live"]
    assert dry["refusal"] == "prompt_blocked" and dry["reply"] is None
    fake.reset()
    real = post(proxy, "/v1/chat/completions", body("m-routed", rude))
    assert real.status_code == 400 and real.json()["error"]["code"] == "prompt_blocked" and not fake.requests


def test_a_second_call_while_one_runs_gets_a_fast_503() -> None:
    from trustproxy.playground.handlers import BUSY

    with ProxyServer(_settings()) as proxy:
        assert proxy.app is not None
        busy = proxy.app[BUSY]
        proxy.call(busy.acquire())  # a dry run in progress
        try:
            r = httpx.post(proxy.url + "/v1/trust/playground", json={"op": "policies"}, timeout=5)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "playground_busy"
        finally:
            proxy.loop.call_soon_threadsafe(busy.release)
        assert httpx.post(proxy.url + "/v1/trust/playground", json={"op": "policies"}).status_code == 200
