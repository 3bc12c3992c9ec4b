"""A JSON tool result or pasted JSON document has English keys whatever language its values are
in: it is read in the language of the request's prose (phone regions, ids), and its names are
judged as usual. Also: an env key of two letters on the next line is not glued to a value."""

from __future__ import annotations

import json

import pytest

import trustproxy  # noqa: F401
from trustproxy.pii.masker import all_texts, mask_request
from trustproxy.pii.vault import Vault
from trustproxy.policy.loader import load_policy_dir


@pytest.fixture(scope="module")
def policy_detector():
    from trustproxy.pii.detector import get_detector

    policy = load_policy_dir("policies")["default"].policy
    return policy, get_detector(policy.nlp_model, policy.language)


def _sent(policy_detector, body):
    policy, detector = policy_detector
    mask_request(body, policy, detector, Vault(all_texts(body), hash_key=b"k"))
    return json.dumps(body, ensure_ascii=False)


def _chat(prose: str, tool_json: dict, system: str = "You help the support team write clear notes.") -> dict:
    return {"model": "m", "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": prose},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(tool_json)},
    ]}


@pytest.mark.parametrize("prose, phone", [
    ("Appunti del colloquio per il fascicolo del personale. Il team ne riparlerà giovedì, "
     "ci siamo già scusati e abbiamo offerto un buono.", "3711364362"),          # Italian mobile
    ("客户反馈说上周更新之后问题立刻出现。我们已经道过歉并提供了优惠券。", "15288639312"),  # Chinese mobile
])
def test_phone_as_a_json_key_in_a_foreign_conversation_is_masked(policy_detector, prose, phone):
    sent = _sent(policy_detector, _chat(prose, {"ref": "HR-42088", "contacts": {phone: {"status": "open"}}}))
    assert phone not in sent and "PHONE_NUMBER" in sent
    assert "HR-42088" in sent  # the reference stays


def test_ids_that_are_no_phone_stay(policy_detector):
    prose = ("Appunti del colloquio per il fascicolo del personale. Il team ne riparlerà giovedì, "
             "ci siamo già scusati e abbiamo offerto un buono.")
    sent = _sent(policy_detector, _chat(prose, {"orders": {"100003": {"status": "open"}, "2024": {"n": 4}}}))
    assert '\\"100003\\"' in sent and '\\"2024\\"' in sent


def test_names_in_json_of_a_foreign_conversation_are_still_found(policy_detector):
    prose = ("Appunti del colloquio per il fascicolo del personale. Il team ne riparlerà giovedì, "
             "ci siamo già scusati e abbiamo offerto un buono.")
    sent = _sent(policy_detector, _chat(prose, {"owner": "Maria Garcia", "note": "call back"}))
    assert "Maria Garcia" not in sent


def test_env_value_before_a_two_letter_key_is_found(policy_detector):
    body = {"model": "m", "messages": [{"role": "user", "content":
            "Config from the failing box:\n\nPORT=8080\nALLOWED_IP=90.163.142.92\nTZ=UTC\n"}]}
    sent = _sent(policy_detector, body)
    assert "90.163.142.92" not in sent and "TZ=UTC" in sent and "PORT=8080" in sent
