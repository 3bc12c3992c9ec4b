"""Vault: placeholders, redaction, hashing, synthetic values, tolerant restore."""

from __future__ import annotations

import json
import re

import pytest

import trustproxy  # noqa: F401  (offline env first)
from trustproxy.errors import GuardFailed
from trustproxy.pii.vault import Vault


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_mask_counts_per_type_and_is_stable() -> None:
    v = Vault()
    assert v.mask("PERSON", "John Smith") == "<PERSON_1>"
    assert v.mask("EMAIL_ADDRESS", "j@x.io") == "<EMAIL_ADDRESS_1>"
    assert v.mask("PERSON", "Ann Lee") == "<PERSON_2>"
    assert v.mask("PERSON", "John Smith") == "<PERSON_1>"
    assert v.mask("person", "Ann Lee") == "<PERSON_2>"
    assert v.mask("EMAIL_ADDRESS", "j2@x.io") == "<EMAIL_ADDRESS_2>"


def test_mask_skips_placeholders_already_in_the_request() -> None:
    v = Vault(["quote: <PERSON_1> and [person 2]", "also &lt;EMAIL_ADDRESS_1&gt;"])
    assert v.mask("PERSON", "John") == "<PERSON_3>"
    assert v.mask("EMAIL_ADDRESS", "j@x.io") == "<EMAIL_ADDRESS_2>"
    # the caller's own literal placeholders are never turned into values
    assert v.restore("<PERSON_1> <PERSON_2> <PERSON_3>") == "<PERSON_1> <PERSON_2> John"


def test_redact_and_hash() -> None:
    v = Vault(hash_key=b"k1")
    assert v.redact("US_SSN") == "<US_SSN>"
    token = v.hash("EMAIL_ADDRESS", "j@x.io")
    assert re.fullmatch(r"<EMAIL_ADDRESS_h[0-9a-f]{8}>", token)
    assert Vault(hash_key=b"k1").hash("EMAIL_ADDRESS", "j@x.io") == token  # across requests
    assert Vault(hash_key=b"k2").hash("EMAIL_ADDRESS", "j@x.io") != token
    assert v.hash("PERSON", "j@x.io") != token.replace("EMAIL_ADDRESS", "PERSON")
    assert v.restore(f"a {token} <US_SSN>") == f"a {token} <US_SSN>"  # never restored


def test_hash_without_key_fails_closed() -> None:
    with pytest.raises(GuardFailed) as err:
        Vault().hash("EMAIL_ADDRESS", "j@x.io")
    assert "j@x.io" not in str(err.value)


@pytest.mark.parametrize("bad", ["", "PER SON", "A__B", "_X", "X-Y", "<X>"])
def test_bad_entity_type_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        Vault().mask(bad, "v")


def test_synthetic_values_look_real_and_restore() -> None:
    v = Vault()
    person = v.synthetic("PERSON", "John Smith")
    email = v.synthetic("EMAIL_ADDRESS", "john@corp.com")
    phone = v.synthetic("PHONE_NUMBER", "+1 415 555 2671")
    card = v.synthetic("CREDIT_CARD", "4111 1111 1111 1111")
    card2 = v.synthetic("CREDIT_CARD", "5500000000000004")
    ssn = v.synthetic("US_SSN", "123-45-6789")
    other = v.synthetic("IBAN_CODE", "DE89370400440532013000")
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z\-A-Z]+", person)
    assert re.fullmatch(r"[a-z]+\.[a-z\-]+\d+@example\.com", email)
    assert re.fullmatch(r"555-01\d\d", phone)
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", card) and luhn_ok(card.replace(" ", ""))
    assert re.fullmatch(r"\d{16}", card2) and luhn_ok(card2)
    assert re.fullmatch(r"9\d\d-\d\d-\d{4}", ssn)
    assert other == "<IBAN_CODE_1>"
    assert v.synthetic("PERSON", "John Smith") == person  # consistent
    text = f"{person} <{email}> {phone}; {card}, {card2}, {ssn}, {other}."
    assert v.restore(text) == ("John Smith <john@corp.com> +1 415 555 2671; 4111 1111 1111 1111, "
                               "5500000000000004, 123-45-6789, DE89370400440532013000.")


def test_synthetic_is_deterministic_and_avoids_request_text() -> None:
    first = Vault().synthetic("PERSON", "John")
    assert Vault().synthetic("PERSON", "John") == first
    v = Vault([f"hello {first.upper()}"])
    other = v.synthetic("PERSON", "John")
    assert other != first and other.casefold() not in f"hello {first}".casefold()
    # distinct values never share a fake
    fakes = [v.synthetic("PHONE_NUMBER", f"+1 212 555 {i:04d}") for i in range(40)]
    assert len(set(fakes)) == 40


def test_synthetic_restores_on_word_boundaries_only() -> None:
    v = Vault()
    fake = v.synthetic("PERSON", "John")
    assert v.restore(f"{fake}s and x{fake} and {fake}.") == f"{fake}s and x{fake} and John."


MANGLED = [
    "<PERSON_1>", "<person_1>", "< PERSON_1 >", "<PERSON 1>", "<Person-1>", "<PERSON  1>",
    "&lt;PERSON_1&gt;", "&LT;PERSON_1&GT;", "&#60;PERSON_1&#62;", "&#x3C;PERSON_1&#x3e;",
    "\\u003cPERSON_1\\u003e", "\\u003CPERSON_1\\u003E", "[PERSON_1]", "[ person 1 ]",
    "\\<PERSON_1\\>", "\\[PERSON_1\\]",
]


@pytest.mark.parametrize("form", MANGLED)
def test_restore_tolerates_mangled_placeholders(form: str) -> None:
    v = Vault()
    v.mask("PERSON", "John")
    assert v.restore(f"Dear {form}, bye") == "Dear John, bye"
    assert v.restore(f"**{form}** and \"{form}\"") == '**John** and "John"'


@pytest.mark.parametrize("text", [
    "<PERSON_99>", "<PERSON_2>", "<PERSON_01>", "<PERSONA_1>", "<EMAIL_ADDRESS_1>", "<PERSON>",
    "PERSON_1", "<PERSON_1_>", "<PERSON_1", "PERSON_1>", "<PER SON_1>", "<PERSON_1x>",
])
def test_forged_or_foreign_tokens_stay(text: str) -> None:
    v = Vault()
    v.mask("PERSON", "John")
    assert v.restore(text) == text


def test_only_this_vaults_values() -> None:
    a, b = Vault(), Vault()
    a.mask("PERSON", "Alice")
    b.mask("PERSON", "Bob")
    b.mask("PERSON", "Carol")
    assert a.restore("<PERSON_1> <PERSON_2>") == "Alice <PERSON_2>"
    assert b.restore("<PERSON_1> <PERSON_2>") == "Bob Carol"


def test_json_escape_keeps_json_valid() -> None:
    v = Vault()
    value = 'O"Brien \\ {x} \n "日本"'
    v.mask("PERSON", value)
    doc = '{"name": "<PERSON_1>", "raw": "\\u003cPERSON_1\\u003e", "n": 1}'
    out = json.loads(v.restore(doc, json_escape=True))
    assert out == {"name": value, "raw": value, "n": 1}
    assert v.restore("<PERSON_1>") == value


def test_owns_counts_and_surface_len() -> None:
    v = Vault(["please email ann@corp.com today"], b"k")
    tok = v.mask("PERSON", "John Smith")
    fake = v.synthetic("EMAIL_ADDRESS", "john@corp.com")
    v.hash("US_SSN", "123-45-6789")
    v.redact("US_SSN")
    assert v.owns("John Smith") and v.owns("john smith ") and v.owns("john@corp.com")
    assert v.owns("123-45-6789") and v.owns("ANN@corp.com")
    assert not v.owns("Jane Doe") and not v.owns("nn@corp.com") and not v.owns("")
    assert v.entity_counts() == {"PERSON": 1, "EMAIL_ADDRESS": 1, "US_SSN": 2}
    assert v.max_surface_len >= max(len(tok), len(fake), len("\\u003c PERSON___1 \\u003e"))


def test_clear_forgets_everything() -> None:
    v = Vault(["x <PERSON_1>"])
    tok = v.mask("PERSON", "John")
    fake = v.synthetic("PERSON", "Ann")
    assert v.restore(f"{tok} {fake}") == "John Ann"
    v.clear()
    assert v.restore(f"{tok} {fake}") == f"{tok} {fake}"
    assert not v.owns("John") and v.entity_counts() == {}
    assert v.pattern() is None and v.token_spans(tok) == []
