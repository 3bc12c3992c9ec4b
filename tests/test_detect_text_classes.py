"""Issue 11, text slice: normalisation, structure-aware detection, write-back and restore.

Table-driven, one row per class, each with a counter-example that must stay unmasked; through
the real masker and detector, and once end-to-end through the proxy with the echoing fake.
Values are made up; they show the class, not corpus cases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustproxy.pii.detector import Detector, get_detector
from trustproxy.pii.masker import Masker
from trustproxy.pii.normalize import normalize
from trustproxy.pii.restore import StreamRestorer
from trustproxy.pii.structure import fields
from trustproxy.pii.vault import Vault
from trustproxy.policy.loader import load_policy_dir
from trustproxy.policy.schema import Policy
from trustproxy.server.json_context import JsonStringRestorer

REPO = Path(__file__).resolve().parent.parent


# ---- restore: values come back as the caller wrote them (no detector needed) ---------------

def _content(vault: Vault, text: str) -> str:
    out = text
    for f in (JsonStringRestorer(vault), StreamRestorer(vault)):
        out = f.feed_sync(out) + f.finish_sync()
    return out


def _args(vault: Vault, text: str) -> str:
    f = StreamRestorer(vault, json_escape=True)
    return f.feed_sync(text) + f.finish_sync()


def _split_content(vault: Vault, text: str, i: int, j: int) -> str:
    chain = [JsonStringRestorer(vault), StreamRestorer(vault)]
    out = ""
    for piece in (text[:i], text[i:j], text[j:]):
        x = piece
        for f in chain:
            x = f.feed_sync(x)
        out += x
    tail = ""
    for f in chain:
        tail = f.feed_sync(tail) + f.finish_sync() if tail else f.finish_sync()
    return out + tail


# (how the vault learnt the value, reply text with its placeholder, what the client must get)
RESTORE: list[tuple[str, str, str]] = [
    # written escaped inside the caller's JSON string: back exactly as written, not escaped twice
    ("written:ana\x05@example.com|ana\\u0005@example.com", '{"email": "<E>"}',
     '{"email": "ana\\u0005@example.com"}'),
    ("written:-----BEGIN KEY-----\nAbC\n-----END KEY-----|-----BEGIN KEY-----\\nAbC\\n-----END KEY-----",
     '{"key": "<E>"}', '{"key": "-----BEGIN KEY-----\\nAbC\\n-----END KEY-----"}'),
    # a non-canonical escape the caller used stays theirs
    ("written:Jos\u00e9 Ruiz|Jos\\u00e9 Ruiz", '{"to": "<E>"}', '{"to": "Jos\\u00e9 Ruiz"}'),
    # written raw outside JSON (a quoted CSV cell, a shell argument): raw again
    ("raw:070-27\r\n45-6886", 'Phone\n"<E>",x', 'Phone\n"070-27\r\n45-6886",x'),
    # ... but a quote or backslash would break a JSON string: escaped (counter-example to the above)
    ('raw:Ann "B" Lee', '{"to": "<E>"}', '{"to": "Ann \\"B\\" Lee"}'),
    # prose stays prose
    ("raw:Ana\nRuiz", "call <E> today", "call Ana\nRuiz today"),
    # a JSON number comes back a number, at the top level and one level of escaping down
    ("number:4000056655665556", '{"card": "<E>", "n": 3}', '{"card": 4000056655665556, "n": 3}'),
    ("number:4000056655665556", '{"body": "{\\"card\\": \\"<E>\\"}"}', '{"body": "{\\"card\\": 4000056655665556}"}'),
    # counter-example: a string value's placeholder in quotes keeps its quotes
    ("raw:4000056655665556", '{"card": "<E>"}', '{"card": "4000056655665556"}'),
]


def _learn(vault: Vault, how: str) -> str:
    kind, _, rest = how.partition(":")
    if kind == "number":
        return vault.mask_number("CREDIT_CARD", rest)
    if kind == "written":
        value, _, written = rest.partition("|")
        return vault.mask("SECRET", value, written=written)
    return vault.mask("SECRET", rest)


@pytest.mark.parametrize("how,reply,want", RESTORE)
def test_restore_as_written(how: str, reply: str, want: str) -> None:
    vault = Vault()
    ph = _learn(vault, how)
    text = reply.replace("<E>", ph)
    assert _content(vault, text) == want
    for i in range(len(text) + 1):          # any chunking of a stream gives the same
        for j in range(i, len(text) + 1, 5):
            v2 = Vault()
            _learn(v2, how)
            assert _split_content(v2, text, i, j) == want, (i, j)


def test_number_in_tool_arguments_every_split() -> None:
    vault = Vault()
    ph = vault.mask_number("CREDIT_CARD", "4000056655665556")
    other = vault.mask("PERSON", 'Ana "A" Ruiz')
    args = json.dumps({"card": ph, "who": other, "note": f"card {ph}"})
    want = _args(vault, args)
    assert json.loads(want) == {"card": 4000056655665556, "who": 'Ana "A" Ruiz',
                                "note": "card 4000056655665556"}
    for i in range(len(args) + 1):
        r = StreamRestorer(vault, json_escape=True)
        out = r.feed_sync(args[:i])
        assert want.startswith(out)
        out += r.feed_sync(args[i:])
        assert out + r.finish_sync() == want, i


# ---- normalisation and structure classes, through the real detector ------------------------

@pytest.fixture(scope="module")
def detector() -> Iterator[Detector]:
    yield get_detector()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_dir(REPO / "policies")["default"].policy


def _spans(policy: Policy, det: Detector, text: str) -> list[tuple[str, str]]:
    m = Masker(policy, det, Vault())
    return [(s.entity_type, text[s.start:s.end]) for s in m.detect(text)]


# (text, type, the original value that must be covered exactly) ; counter-example (nothing found)
DETECT: list[tuple[str, str, str, str]] = [
    # an invisible character inside a value no longer hides its shape from the structural rules
    ("IBAN FR81 3338 6652 8\ufe0e046 0386 3648 064 please", "IBAN_CODE",
     "FR81 3338 6652 8\ufe0e046 0386 3648 064", "the net\xadwork is down again"),
    # a line break inside a digit group joins the digits; between words it is no join
    ("SSN 657-73-164\n5 on file", "US_SSN", "657-73-164\n5", "version 1.2.3\n4 items left"),
    # CRLF between words reads like LF
    ("Please call Peter\r\nWood tomorrow", "PERSON", "Peter\r\nWood", "Status: OK\r\nDone for today"),
    # a one-character stub of a wrapped key; a SHA after a word on the previous line stays clean
    ("aws key A\r\nKIAIOSFODNN7EXAMPLE rotated", "AWS_ACCESS_KEY", "A\r\nKIAIOSFODNN7EXAMPLE",
     "commit\r\n9f2c1e7a4b3d5f6a7b8c9d0e1f2a3b4c5d6e7f80 merged"),
    # capitals-and-digits halves of a key; capital words on two lines stay apart
    ("aws_access_key_id: AKIACI\nY7MUBSXBILFKDY\n", "AWS_ACCESS_KEY", "AKIACI\nY7MUBSXBILFKDY",
     "STATUS: READY\nDEPLOYMENT2 DONE"),
    # a combining mark inside an address is noise; on a word it is an accent
    ("mail ana.ruiz@example.co\u0301m today", "EMAIL_ADDRESS", "ana.ruiz@example.co\u0301m",
     "the cafe\u0301 opens at 9"),
    # a vertical tab inside a number is a control character; a form feed between words is not
    ("card 40000566\x0b55665556 thanks", "CREDIT_CARD", "40000566\x0b55665556", "page 1 \x0c page 2"),
    # a wrapped hex token is one token, not a label glued to a number
    ("loaded TWILIO_AUTH_TOKEN=cf41556884\n402fab5bbdb23fc6b2d1df\nEOF", "GENERIC_SECRET",
     "cf41556884\n402fab5bbdb23fc6b2d1df", "loaded BUILD_ID=cf41556884\nnext step"),
    # a CSV row continued over a line break inside a quoted cell keeps its columns
    ('Date of birth,Account no.,Email\n08/13/1983,"9262012\n835",ana@example.com', "US_BANK_NUMBER",
     "9262012\n835", 'Build,Count\n12,"34\n56"'),
    # a bare value keeps & that does not start the next key= ; a query string still splits
    ("loaded SMTP_PASSWORD=_8&Rcd\x01aaLs", "PASSWORD", "_8&Rcd\x01aaLs", "GET /x?page=2&sort=asc HTTP/1.1"),
    # a label with a control character inside it still labels its value (structure read on
    # the folded view); the same shape under a harmless label stays
    ("acct\x07_no: 24415520", "US_BANK_NUMBER", "24415520", "build\x07_no: 24415520"),
    # a CSV header cell written with a number sign symbol labels its column
    ("E-mail,N\u00b0 de dossier patient\nana@example.com,44556677", "MEDICAL_RECORD_NUMBER",
     "44556677", "Statut,N\u00b0 de commande\nok,44556677"),
    # a column of one: the header alone on its line, each value on a line below it
    ("Rekeningnummer\n55667788\n9 8 7 6 5 4 3 2 1 0\n\nGraag controleren.", "US_BANK_NUMBER",
     "9 8 7 6 5 4 3 2 1 0", "Buildnummer\n55667788\n9 8 7 6 5 4 3 2 1 0\n\nGraag controleren."),
    ("Account number\n55667788\n\nThanks", "US_BANK_NUMBER", "55667788",
     "Name\nPlatform Team\nPhone\nCall me back later"),
    # a header cut by a line break: the two halves are one known key over a full row
    ("IBAN,N\u00famero de\ncuenta\nES91 2100 0418 4502 0005 1332,31415926", "US_BANK_NUMBER",
     "31415926", "Build,N\u00famero de\npedido\nok,31415926"),
    # member names of a contact map are people and their numbers (no regional cue needed);
    # the same names under another map, and counts under a contact map, stay
    ('{"contacts": {"00861391234567": {"status": "open"}, "Total": 4, "active": 2}}', "PHONE_NUMBER",
     "00861391234567", '{"builds": {"00861391234567": {"status": "open"}}, "contacts": {"Total": 4}}'),
    ('{"recipients": {"47\\n2031-5566": "to"}}', "PHONE_NUMBER", "47\\n2031-5566",
     '{"versions": {"47\\n2031-5566": "to"}}'),
    ('{"contacts": {"\u0905\u092e\u093f\u0924 \u0935\u0930\u094d\u092e\u093e": {"priority": 4}}}',
     "PERSON", "\u0905\u092e\u093f\u0924 \u0935\u0930\u094d\u092e\u093e",
     '{"services": {"Billing Api": {"replicas": 4}}, "contacts": {"Active": 1}}'),
    # a secret's value inside a log line is the whole token, brackets and all; a random
    # password may open with a bracket or a sigil; references and bracketed words stay
    ("2025-05-09 DEBUG loaded DB_PASSWORD=(k#2PzRm8Xq)#d\nnext", "PASSWORD", "(k#2PzRm8Xq)#d",
     "loaded DB_PASSWORD=${DB_PASSWORD} and API_TOKEN=<YOUR_TOKEN_123>\nDB_PASSWORD=(none)\n"
     "SECRET_KEY=[REDACTED]\npassword=%(pw)s\nrun PASSWORD=$(cat /run/secrets/db) ./start.sh"),
    # ... also inside a JSON string (a .env written by a tool call), after a written "\n"
    ('{"command": "cat <<EOF > .env\\nPORT=80\\npwd=(k#2PzRm8Xq)#d\\nEOF"}', "PASSWORD", "(k#2PzRm8Xq)#d",
     '{"command": "export DB_PASSWORD=${DB_PASSWORD}\\nmax_tokens=4096"}'),
    ("PORT=8080\nSMTP_PASSWORD=(uZt8\r\n3Mv&Lq9Wa\nNODE_ENV=production", "PASSWORD",
     "(uZt8\r\n3Mv&Lq9Wa", "max_tokens=4096 token_count=12 secret_name=db-creds"),
    # a value glued to a label of its own type under its column; a date cut by a line break
    # inside a quoted cell
    ("Fecha de nacimiento\ndob07/11/1962\n", "DATE_OF_BIRTH", "07/11/1962", "Build,Version\nv07/11/1962,ok"),
    ('Date of birth,Status\n"12/03/19\n99",ok', "DATE_OF_BIRTH", "12/03/19\n99",
     'Release,Status\n"12/03/19\n99",ok'),
    # a name under its label goes on on the next line after a particle
    ("Naam: Lotte\nvan Dijkstra\nBSN: 111222333", "PERSON", "Lotte\nvan Dijkstra",
     "Status: klaar\nvan de week"),
    # an address that ends a sentence before a line break
    ("You can reach them at ana@example.org.\nNothing else changed.", "EMAIL_ADDRESS",
     "ana@example.org", "Nothing else changed.\nThanks."),
    # a TAB inside an address joins it like a line break; a word before a TAB stays apart
    ("Contact ana.ruiz@exam\tple.org today", "EMAIL_ADDRESS", "ana.ruiz@exam\tple.org",
     "build@exam\tple step"),
    # an author or committer name in a .env file reads like a bare "name" key
    ("GIT_AUTHOR_NAME=\u0905\u092e\u093f\u0924\t\u0935\u0930\u094d\u092e\u093e\nNODE_ENV=production",
     "PERSON", "\u0905\u092e\u093f\u0924\t\u0935\u0930\u094d\u092e\u093e",
     "GIT_AUTHOR_NAME=release-bot\nGIT_COMMITTER_NAME=ci"),
    # a JSON string value reads decoded: an escaped control character hides no name
    ('Record:\n{"ref": "HR-1", "name": "\u738b\\b\u7ea2\u6885"}', "PERSON", "\u738b\\b\u7ea2\u6885",
     'Record:\n{"ref": "HR-1", "name": "\\bnginx"}'),
]


@pytest.mark.slow
@pytest.mark.parametrize("text,etype,value,counter", DETECT)
def test_detect_class(policy: Policy, detector: Detector, text: str, etype: str, value: str,
                      counter: str) -> None:
    assert (etype, value) in _spans(policy, detector, text)
    assert _spans(policy, detector, counter) == []


def test_structure_is_read_on_the_folded_view() -> None:
    # a zero-width character in a CSV header, a line break in a quoted cell
    text = 'Name,Acc\u200bount no.\nAna,"2441\n5520"\n'
    got = [(f.key, text[f.start:f.end]) for f in fields(text)]
    assert got == [("Name", "Ana"), ("Account no.", "2441\n5520")]
    # lines stay lines (the view for structure keeps line breaks), JSON stays parseable
    doc = '{"e\u200bmail": "a\\u0005b@x.com",\n "n": 1}'
    assert [f.key for f in fields(doc)] == ["email", "n"]
    assert normalize("a\u200bb")[0] == "ab"


@pytest.mark.parametrize("text,want", [
    # a column of one under a known key; stops at a blank line
    ("Kontonummer\n12345678\n87654321\n\nDanke", [("Kontonummer", "12345678"), ("Kontonummer", "87654321")]),
    # a header line that is no known key labels nothing; prose under a key is no column
    ("Summary\n12345678\n", []),
    # a header's last cell continued on the next line, when only together they are a key
    ("Name,Account\nnumber\nAna,12345678", [("Name", "Ana"), ("Account number", "12345678")]),
    # a blank line ends a table: a sentence with a comma above the real header is no header
    ("Merci pour le dossier, bonne journ\u00e9e.\n\nNom,Compte\nAna Ruiz,12345678",
     [("Nom", "Ana Ruiz"), ("Compte", "12345678")]),
    # a prose line with a comma above a header is no header (the header is no row of it)
    ("Scheda dalla reception, per favore\nstrutturala per la cartella.\nCartella clinica n.,Nome\n"
     "12345678,Ana Ruiz", [("Cartella clinica n.", "12345678"), ("Nome", "Ana Ruiz")]),
    # a row cut after a header that is already whole stays a row
    ("Name,Account number\nAna\nRuiz,12345678", [("Name", "Ana\nRuiz"), ("Account number", "12345678")]),
])
def test_csv_columns(text: str, want: list[tuple[str, str]]) -> None:
    assert [(f.key, text[f.start:f.end]) for f in fields(text)] == want


# (parts, what the provider must not see) ; counter-example parts that must pass unchanged
PARTS: list[tuple[list[str], str, list[str]]] = [
    # a CSV header in one part, its rows in the next
    (["Case context:\nAccount no.,Email", "_24415520_,ana@example.com\nthanks"], "24415520",
     ["Build,Status", "24415520,ok"]),
    # a label awaiting its value, and the value in the next part
    (["Account no.:", "24415520"], "24415520", ["Build no.:", "24415520"]),
    # no word glued to the next part's first character, nothing lost
    (["Please call Ana Ruiz", "tomorrow at noon"], "Ana Ruiz", ["Please call", "tomorrow at noon"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("parts,secret,counter", PARTS)
def test_content_parts(policy: Policy, detector: Detector, parts: list[str], secret: str,
                       counter: list[str]) -> None:
    vault = Vault(parts)
    out = Masker(policy, detector, vault)._mask_pieces(parts)
    assert secret not in "\n".join(out)
    assert [vault.restore(p) for p in out] == parts
    assert Masker(policy, detector, Vault(counter))._mask_pieces(counter) == counter


# (a text as a tool result or pasted in a message) ; the value that must not reach the provider
WRITE_BACK: list[tuple[str, str]] = [
    (json.dumps({"ref": "DEV-1", "email": "ana\x05@example.com"}), "ana"),
    (json.dumps({"private_key": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yBy"
                 "pHZpZEq2O2CKj3Ss1mP0kFjVoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"}), "MHcCAQEE"),
    (json.dumps({"contacts": {"+33\r\n2 19 84 36 92": {"status": "open"}}}), "19 84 36"),
    (json.dumps({"card": 4000056655665556, "n": 3}), "4000056655665556"),
    ('Phone,Name\n"+1 212\r\n555 0188",x\n', "0188"),
]


@pytest.mark.slow
@pytest.mark.parametrize("text,secret", WRITE_BACK)
def test_write_back_round_trip(policy: Policy, detector: Detector, text: str, secret: str) -> None:
    vault = Vault([text])
    masked = Masker(policy, detector, vault).mask_text(text)
    assert secret not in masked
    if text.startswith("{"):
        json.loads(masked)  # the JSON stays valid
    assert _content(vault, masked) == text  # byte-exact, JSON numbers numbers again


@pytest.mark.slow
def test_clean_json_and_csv_unchanged(policy: Policy, detector: Detector) -> None:
    for text in (json.dumps({"sha": "9f2c1e7a4b3d5f6a7b8c9d0e1f2a3b4c5d6e7f80",
                             "id": "550e8400-e29b-41d4-a716-446655440000", "count": 12345678}),
                 'build,sha\n"12\n34",9f2c1e7a4b3d5f6a\n'):
        assert Masker(policy, detector, Vault([text])).mask_text(text) == text


# ---- end to end: the proxy, the openai SDK, the echoing fake --------------------------------

@pytest.mark.slow
def test_round_trip_through_the_proxy_is_exact() -> None:
    from bench.bench_detect_quality import Recorder, run_cases, settings_for
    from bench.corpus.model import Case, Planted
    from tests.fakes.providers import FakeOpenAI
    from tests.proxy import ProxyServer

    tool_result = json.dumps({"email": "ana\x05@example.com", "notes": "call +1 212\r\n555 0188"})
    args = json.dumps({"card_number": 4000056655665556, "ref": "SUP-1"})
    body = {"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Case context:\nAccount no.,Email"},
                                     {"type": "text", "text": "24415520,lena.fischer@example.org"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "refund", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "c1", "content": tool_result},
        {"role": "user", "content": "Summarise."}]}
    values = ["ana\x05@example.com", "4000056655665556", "24415520", "lena.fischer@example.org"]
    planted = [Planted(id=f"p{i}", category="X", subtype="x", placement="user", evasion="none",
                       format="x", locale="en_US", domain="support", value=v, surface=v,
                       probes=[v.replace("\x05", "")]) for i, v in enumerate(values)]
    case = Case(id="t1", kind="pii", domain="support", locale="en_US", placement="user", body=body,
                planted=planted)
    recorder = Recorder()
    with FakeOpenAI(model="m") as fake:
        fake.script = recorder
        with ProxyServer(settings_for(fake, "default", REPO / "policies")) as proxy:
            [res] = asyncio.run(run_cases(proxy, recorder, [case]))
    sent = json.dumps(recorder.bodies[-1], ensure_ascii=False)
    for v in values:
        assert v not in sent and json.dumps(v)[1:-1] not in sent
    assert res.status == 200 and not res.withheld
    assert res.round_trip_exact  # text byte-exact, tool-call arguments with the number a number
    assert all(v.restored for v in res.values)
