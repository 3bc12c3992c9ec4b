"""``trustproxy.dryrun``: the one dry run behind inspect, explain, golden tests and the
playground, on the real detector and scorer (no server)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trustproxy  # noqa: F401
from trustproxy.dryrun import (LocalGuards, dry_run_sync, golden_inspector, inspect_input, parse_input)
from trustproxy.errors import InvalidRequest
from trustproxy.policy import commands
from trustproxy.policy.golden import run_golden
from trustproxy.policy.loader import LoadedPolicy, load_policy_dir

ROOT = Path(__file__).resolve().parents[1]
TEXT = "I am John Smith, mail john.smith@example.com, card 4111 1111 1111 1111"


@pytest.fixture(scope="module")
def policies() -> dict[str, LoadedPolicy]:
    return load_policy_dir(ROOT / "policies")


@pytest.fixture(scope="module")
def guards() -> LocalGuards:
    return LocalGuards()


def test_text_detections_point_at_the_values(policies: dict[str, LoadedPolicy]) -> None:
    lp = policies["default"]
    run = dry_run_sync(lp.policy, lp.version, TEXT)
    got = {d.entity_type: (TEXT[d.start:d.end], d.action, d.recognizer) for d in run.detected if d.start is not None}
    assert got == {"PERSON": ("John Smith", "mask", "SpacyRecognizer"),
                   "EMAIL_ADDRESS": ("john.smith@example.com", "mask", "EmailRecognizer"),
                   "CREDIT_CARD": ("4111 1111 1111 1111", "mask", "CreditCardRecognizer")}
    assert all(0.5 <= d.score <= 1 for d in run.detected)
    assert run.provider_text == "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert run.reply is not None and run.reply.user_text == TEXT  # the echo, restored
    assert run.input.vault is None  # cleared before the result is handed out


def test_actions_of_another_policy(policies: dict[str, LoadedPolicy]) -> None:
    lp = policies["pci"]
    run = dry_run_sync(lp.policy, lp.version, "card 4111 1111 1111 1111 cvv 123", with_reply=False)
    assert [d.action for d in run.detected if d.entity_type == "CREDIT_CARD"] == ["redact"]
    assert "<CREDIT_CARD>" in run.provider_text and run.reply is None


def test_blocked_input_sends_nothing(policies: dict[str, LoadedPolicy]) -> None:
    lp = policies["pci"]
    run = dry_run_sync(lp.policy, lp.version, "%B4111111111111111^DOE/JOHN^2512101000000000000000000?")
    assert run.blocked and run.blocked_types == ["CARD_TRACK_DATA"]
    assert run.provider_text == "" and run.input.provider_doc is None and run.reply is None
    assert all(s.provider == "" for s in run.input.slots)


def test_scripted_reply_output_pii_and_toxicity(policies: dict[str, LoadedPolicy]) -> None:
    lp = policies["default"]
    run = dry_run_sync(lp.policy, lp.version, TEXT,
                       reply="Hello <PERSON_1>. The admin card is 5555 5555 5555 4444.")
    rep = run.reply
    assert rep is not None and not rep.blocked
    assert rep.user_text == "Hello John Smith. The admin card is <CREDIT_CARD>."
    assert rep.restored == ["PERSON_1"]
    assert [(o["entity_type"], o["action"]) for o in rep.output_pii] == [("CREDIT_CARD", "redact")]
    assert rep.output_pii[0]["score"] >= 0.85
    assert rep.toxicity is not None and rep.toxicity["decision"] == "pass"
    toxic = dry_run_sync(lp.policy, lp.version, TEXT, reply="<PERSON_1>, you are a stupid idiot.")
    assert toxic.reply is not None and toxic.reply.blocked
    assert toxic.reply.user_text == lp.policy.output.toxicity.block_message
    assert toxic.reply.toxicity is not None and toxic.reply.toxicity["decision"] == "block"
    assert any(d["category"] == "toxicity" and d["action"] == "block" for d in toxic.reply.toxicity["decisions"])


def test_a_chat_body_every_slot(policies: dict[str, LoadedPolicy], guards: LocalGuards) -> None:
    lp = policies["default"]
    body = {"model": "echo", "messages": [
        {"role": "user", "name": "Maria Garcia", "content": [{"type": "text", "text": "Hi, I am John Smith"},
                                                               {"type": "text", "text": "tomorrow at noon"}]},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                              "function": {"name": "f", "arguments": json.dumps({"to": "a.b@example.com"})}}]},
        {"role": "user", "content": "ok"}]}
    parsed = parse_input(json.dumps(body))
    assert parsed.kind == "chat" and parsed.route == "echo"
    res = inspect_input(lp.policy, parsed, guards.detector(lp.policy))
    slots = {s.path: s for s in res.slots}
    # content parts are detected as one text with a boundary no token crosses, and written back
    # part by part: nothing of the caller's words is lost
    p0, p1 = slots["messages[0].content[0].text"], slots["messages[0].content[1].text"]
    assert [p0.original[d.start:d.end] for d in p0.detections if d.start is not None] == ["John Smith"]
    assert p1.detections == [] and p1.provider == "tomorrow at noon"
    assert p0.provider.endswith("<PERSON_2>")
    name = slots["messages[0].name"]
    assert name.detections[0].recognizer == "name field" and name.provider == "[PERSON_1]"
    args = slots["messages[1].tool_calls[0].function.arguments"]
    d = args.detections[0]
    assert d.start is not None and d.end is not None
    assert args.original[d.start:d.end] == "a.b@example.com"
    assert json.loads(args.provider) == {"to": "<EMAIL_ADDRESS_1>"}
    assert res.provider_doc is not None and res.provider_doc["messages"][1]["tool_calls"][0]["function"]["arguments"] \
        == args.provider
    assert res.provider_text == "ok"  # the last message, as the echo route answers
    assert parsed.doc["messages"][0]["name"] == "Maria Garcia"  # the input is not changed
    res.close()


def test_an_embeddings_body(policies: dict[str, LoadedPolicy]) -> None:
    lp = policies["default"]
    run = dry_run_sync(lp.policy, lp.version, json.dumps({"model": "echo", "input": ["Mail a.b@example.com", "plain"]}))
    assert run.input.kind == "embeddings" and run.reply is None
    assert run.input.provider_doc is not None and run.input.provider_doc["input"] == ["Mail <EMAIL_ADDRESS_1>", "plain"]
    assert run.provider_text == "Mail <EMAIL_ADDRESS_1>\nplain"
    assert run.to_json()["reply"] is None


def test_parse_input() -> None:
    assert parse_input("plain text").kind == "text"
    assert parse_input('{"not": "a request"}').kind == "text"  # JSON of no door is text to screen
    assert parse_input('{"model": "echo", "input": "x"}').kind == "embeddings"
    assert parse_input("{broken json").kind == "text"
    with pytest.raises(InvalidRequest):
        parse_input({"model": "echo", "api_key": "sk-x", "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(InvalidRequest):
        parse_input({"model": "echo", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})


def test_same_masking_as_inspect_text(policies: dict[str, LoadedPolicy], guards: LocalGuards) -> None:
    """The dry run and the masker's own single-text path agree (one masking)."""
    from trustproxy.pii.masker import inspect_text

    for name in ("default", "pci", "hipaa", "gdpr"):
        lp = policies[name]
        for example in lp.policy.tests:
            old = inspect_text(lp.policy, example.text, guards.detector(lp.policy))
            new = inspect_input(lp.policy, parse_input(example.text), guards.detector(lp.policy))
            assert new.provider_text == old.provider_text, (name, example.name)
            assert [(d.entity_type, d.action, d.start, d.end) for d in new.detected] == \
                [(d.entity_type, d.action, d.start, d.end) for d in old.detected], (name, example.name)
            new.close()


@pytest.mark.parametrize("name", ["default", "pci", "hipaa", "gdpr"])
def test_golden_examples_pass_through_the_dry_run(policies: dict[str, LoadedPolicy], guards: LocalGuards,
                                                  name: str) -> None:
    results = run_golden(policies[name], golden_inspector(guards.detector))
    assert results and all(r.passed for r in results), [r.failures for r in results if not r.passed]


def _explain(*args: str, **kw: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = commands.explain(*args, **kw)  # type: ignore[arg-type]
    return code, buf.getvalue()


def test_policy_explain_uses_the_dry_run() -> None:
    code, out = _explain("default", TEXT, str(ROOT / "policies"),
                         reply="Thanks <PERSON_1>; also 5555 5555 5555 4444")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("policy default ")
    assert "  EMAIL_ADDRESS  score 1.00  mask       chars 22-44  (EmailRecognizer)" in lines
    assert lines[lines.index("provider sees:") + 1] == "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert lines[lines.index("user gets:") + 1] == "Thanks John Smith; also <CREDIT_CARD>"
    assert any(x.startswith("  output CREDIT_CARD: redact (score ") for x in lines), lines
    code, out = _explain("default", json.dumps({"model": "echo", "messages": [
        {"role": "user", "content": "mail a.b@example.com"}]}), str(ROOT / "policies"))
    assert code == 0 and "of messages[0].content" in out and '"content": "mail <EMAIL_ADDRESS_1>"' in out


def test_cli_explain_reply_flag() -> None:
    r = subprocess.run([sys.executable, "-m", "trustproxy.cli", "policy", "explain", "--policy", "default",
                        "--reply", "Bye <PERSON_1>", "Hi, I am John Smith"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "Hi, I am <PERSON_1>" in r.stdout and "user gets:\nBye John Smith" in r.stdout


# -- every front door's body is dry-run through its own codec ---------------------------------

@pytest.mark.parametrize("body,door", [
    ({"model": "echo", "max_tokens": 50, "system": "You help Ana Ruiz",
      "messages": [{"role": "user", "content": [{"type": "text", "text": "mail ana.ruiz@example.com"}]}]}, "messages"),
    ({"model": "echo", "instructions": "be brief",
      "input": [{"role": "user", "content": [{"type": "input_text", "text": "mail ana.ruiz@example.com"}]}]}, "responses"),
    ({"model": "echo", "messages": [{"role": "user", "content": "mail ana.ruiz@example.com"}]}, "chat"),
    ({"model": "echo", "input": "mail ana.ruiz@example.com"}, "embeddings"),
])
def test_any_door_body_is_parsed_by_its_codec(body: dict, door: str) -> None:
    from trustproxy.dryrun import guess_door, parse_input

    assert guess_door(body) == door
    parsed = parse_input(body)
    assert parsed == parse_input(body, door)
    texts = json.dumps(parsed.doc)
    assert "ana.ruiz@example.com" in texts  # the canonical request carries the text to screen
    assert parsed.route == "echo"
