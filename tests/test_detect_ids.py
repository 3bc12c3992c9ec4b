"""Identifiers, phones, bank / medical / licence numbers and secrets (issue 11): one table per
class, each case with a counter-example that must stay unmasked; and the speed-ups of the
pattern pass (one recognizer, pre-checks, phone windows) checked to change nothing found.
Values are made up (valid check digits where the type has them)."""

from __future__ import annotations

from collections.abc import Iterator

import phonenumbers
import pytest

from trustproxy.pii.detector import DEFAULT_ENTITIES, Detector, _phone_windows, get_detector
from trustproxy.pii.normalize import normalize
from trustproxy.pii.recognizers import (
    PatternPass, RegexRecognizer, _Prechecks, build_recognizers, merge_recognizers, need_finder,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector() -> Iterator[Detector]:
    yield get_detector()


def _found(det: Detector, text: str) -> list[tuple[str, str]]:
    spans = det.detect(text, entities=DEFAULT_ENTITIES, thresholds={}, default_threshold=0.5)
    return [(s.entity_type, text[s.start:s.end]) for s in spans]


def _check(det: Detector, text: str, etype: str, value: str, counter: str) -> None:
    found = _found(det, text)
    assert any(t in etype.split("|") and value in v for t, v in found), found
    assert _found(det, counter) == [], counter


# (text, type, value that must be covered, counter-example that must find nothing)
LABELS: list[tuple[str, str, str, str]] = [
    # bank account numbers under their labels in the corpus languages
    ("口座番号: _527263815832_", "US_BANK_NUMBER", "527263815832", "口座番号は後でお送りします。"),
    ("Numero di conto 10029384756.", "US_BANK_NUMBER", "10029384756", "Il conto è di 45 euro."),
    ("Rekeningnummer 43222634.", "US_BANK_NUMBER", "43222634", "We houden rekening met 3 dagen."),
    ("खाता संख्या 123456789 है।", "US_BANK_NUMBER", "123456789", "खाता संख्या बाद में भेजूँगा।"),
    ("رقم الحساب 123456789.", "US_BANK_NUMBER", "123456789", "رقم الحساب غير متوفر حاليا."),
    ("账号是62220212345678。", "US_BANK_NUMBER", "62220212345678", "账号是公司邮箱。"),
    ("Kontonummer 12345678 bei der Sparkasse.", "US_BANK_NUMBER", "12345678",
     "Kontonummer 12345 fehlt noch."),
    # medical record numbers
    ("Patientennummer 111633017 im System.", "MEDICAL_RECORD_NUMBER", "111633017",
     "Patientennummer folgt morgen."),
    ("Numero di cartella clinica 7654321.", "MEDICAL_RECORD_NUMBER", "7654321",
     "La cartella clinica è stata aggiornata."),
    ("カルテ番号1234567の患者です。", "MEDICAL_RECORD_NUMBER", "1234567", "カルテ番号は未定です。"),
    ("病历号9790947的患者。", "MEDICAL_RECORD_NUMBER", "9790947", "病历号待定。"),
    ("病历号7 6 5 4 3 2 1 8的患者。", "MEDICAL_RECORD_NUMBER", "7 6 5 4 3 2 1 8", "病历号待定，床位 1 2 3。"),
    ("Patient M R N 4 4 5 5 6 6 7 admitted.", "MEDICAL_RECORD_NUMBER", "4 4 5 5 6 6 7",
     "Patient M R N pending, bed A 1 2."),
    ("Número do prontuário 4455667.", "MEDICAL_RECORD_NUMBER", "4455667",
     "O prontuário foi atualizado ontem."),
    # driver licences (UK DVLA shape too)
    ("DL#: MITCH515272XV9QQ", "US_DRIVER_LICENSE", "MITCH515272XV9QQ", "DL#: pending"),
    ("Rijbewijsnummer 5123456789.", "US_DRIVER_LICENSE", "5123456789", "Rijbewijs verloopt in 2031."),
    ("CNH número 12345678901.", "US_DRIVER_LICENSE", "12345678901", "CNH vence em 2030."),
    # phones after a label or a call-back phrase, in every corpus language
    ("Richiamare al 03760038064 dopo le 15.", "PHONE_NUMBER", "03760038064",
     "Richiamare al più presto, entro le 15."),
    ("Retornar a ligação para 79 9949-9756 depois das 15h.", "PHONE_NUMBER", "79 9949-9756",
     "Retornar a ligação para o cliente às 15h."),
    ("15時以降に090-1234-5678へ折り返してください。", "PHONE_NUMBER", "090-1234-5678",
     "15時以降に折り返してください。"),
    ("يرجى معاودة الاتصال على 0551234567 بعد الساعة الثالثة.", "PHONE_NUMBER", "0551234567",
     "يرجى معاودة الاتصال بعد الساعة الثالثة."),
    ("दोपहर 3 बजे के बाद 9123456780 पर वापस कॉल करें।", "PHONE_NUMBER", "9123456780",
     "दोपहर 3 बजे के बाद वापस कॉल करें।"),
    ("Telefoon: 0612345678", "PHONE_NUMBER", "0612345678", "Telefoon kapot sinds 2019."),
    ("请在下午三点后回电13812345678。", "PHONE_NUMBER", "13812345678", "请在下午三点后回电。"),
    # national identifiers: a verb between label and value; checksums decide
    ("Mijn BSN is 111222333.", "NL_BSN", "111222333", "Mijn BSN is 111222334."),
    ("Meine Steuer-ID lautet 16451701920.", "DE_TAX_ID", "16451701920",
     "Meine Steuer-ID lautet 16451701921."),
    ("رقم الهوية الوطنية الخاص بي هو 1489371169.", "SA_NATIONAL_ID", "1489371169",
     "رقم الهوية الوطنية الخاص بي هو 1489371161."),
    ("Iqama: 2\n489371167", "SA_NATIONAL_ID", "2\n489371167", "Iqama: 3489371168"),
    # India's PAN: the fourth letter is the holder type (P, C, H, F, A, T, B, L, J, G)
    ("मेरा पैन ABCPE1234F है।", "IN_PAN", "ABCPE1234F", "मेरा पैन ABCDE1234F है।"),
    ('{"pan": "bakgl6123v"}', "IN_PAN", "bakgl6123v", "commit abcaf1234e fixed the build"),
    # dates of birth after a cue and a particle
    ("出生日期为1960年3月2日。", "DATE_OF_BIRTH", "1960年3月2日", "发布日期为2023年3月2日。"),
    ("生年月日は1953年11月7日です。", "DATE_OF_BIRTH", "1953年11月7日", "更新日は2023年11月7日です。"),
]


@pytest.mark.parametrize("text,etype,value,counter", LABELS)
def test_labelled_value_and_counter_example(detector: Detector, text: str, etype: str, value: str,
                                            counter: str) -> None:
    _check(detector, text, etype, value, counter)


IBANS: list[tuple[str, str, str]] = [
    ("IBAN: ES82 5531 6820\n8367 1482 4353", "ES82 5531 6820\n8367 1482 4353",
     "ref ES82 5531 6820 8367 1482 4354"),
    ("The transfer came from IBANGB36 JJTJ 7563 3887 7132 00.", "GB36 JJTJ 7563 3887 7132 00",
     "The transfer came from GB36 JJTJ 7563 3887 7132 01."),
    ("iban: gb36jjtj75633887713200 please", "gb36jjtj75633887713200", "key gb36 jjtj"),
    # a combining mark on a letter of the bank code
    ("account_iban: NL91 AB\u0323NA 0417 1643 00", "NL91 AB\u0323NA 0417 1643 00", "Room 12 Cafe\u0301 3 NL"),
    # spelled out one character at a time, letters too
    ("Refund to IBAN G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2 today.",
     "G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2", "Refund to I B A N soon, ref A B C 1 2 3."),
    ("Bitte auf das Konto D E 8 9 3 7 0 4 0 0 4 4 0 5 3 2 0 1 3 0 0 0 überweisen.",
     "D E 8 9 3 7 0 4 0 0 4 4 0 5 3 2 0 1 3 0 0 0", "Bitte auf das Konto D E 8 9 überweisen."),
]


@pytest.mark.parametrize("text,value,counter", IBANS)
def test_iban_however_spaced(detector: Detector, text: str, value: str, counter: str) -> None:
    _check(detector, text, "IBAN_CODE", value, counter)


def test_ibans_on_consecutive_lines_are_two(detector: Detector) -> None:
    text = "IBAN\nIT93H2245065003327060861794\nIT85 N591 6149 5026 9749 1825 211"
    found = [v for t, v in _found(detector, text) if t == "IBAN_CODE"]
    assert found == ["IT93H2245065003327060861794", "IT85 N591 6149 5026 9749 1825 211"]


SECRETS: list[tuple[str, str, str, str]] = [
    # the token a failed request was made with; words after the same phrase stay
    ("Why does the API return 401 with Kq3vT9xLmB2wPz?", "GENERIC_SECRET", "Kq3vT9xLmB2wPz",
     "Why does the API return 401 with an expired session? It returns 403 for /api/v2/users."),
    # a URL's password cut by a line break before the "@"
    ("connection to postgres://ana:Kq3\nvT9xLm@db.internal:5432/orders refused", "PASSWORD",
     "Kq3\nvT9xLm", "see https://example.com/a:b\nthen the admin page"),
    # a password glued to its label in CJK text; a description of a password is none
    ("我的密码是Hq7(mZ!2，但是登录不了", "PASSWORD", "Hq7(mZ!2", "密码是ASCII字符，长度8位。"),
    ("パスワードはab12cdです。", "PASSWORD", "ab12cd", "パスワードは8桁です。"),
    ("我的密码是%Tp4)kW%9aLm，但是登录不了", "PASSWORD", "%Tp4)kW%9aLm", "密码是%s，见配置。"),
    ("TWILIO_API_KEY=SK386c5eab85\n0617dff4f290e1824bce04\nTEST=1", "GENERIC_SECRET",
     "SK386c5eab85\n0617dff4f290e1824bce04", "notes: SKIP the 386c5eab85\nstep today"),
    ("AWS_ACCESS_KEY_ID=AKIACFKN4\n5B5UFAZQCDL", "AWS_ACCESS_KEY", "AKIACFKN4\n5B5UFAZQCDL",
     "AKIA is the prefix\nof such keys"),
    ("I pasted keyAKIAQ7XNB2ZLR5TW3HME into the channel", "AWS_ACCESS_KEY", "AKIAQ7XNB2ZLR5TW3HME",
     "call getAKIAPrefix() on the ASIA region"),
    ('curl -H "X-Api-Key: A\r\nKIAIDX4Q2RYG3ECPRWA" https://api.example', "AWS_ACCESS_KEY",
     "A\r\nKIAIDX4Q2RYG3ECPRWA", 'curl -H "X-Trace: A\r\nKIND" https://api.example'),
    ("SLACK_BOT_TOKEN=xoxp-9759875108\r\n80-86269287381-UlOgfsaQpcSXwchYvHfdD7MX", "SLACK_TOKEN|GENERIC_SECRET",
     "xoxp-9759875108\r\n80-86269287381-UlOgfsaQpcSXwchYvHfdD7MX", "the xoxp- prefix\nis Slack's"),
    ("text: xoxp-9759875108\r\n80-86269287381-UlOgfsaQpcSXwchYvHfdD7MX", "SLACK_TOKEN",
     "xoxp-9759875108\r\n80-86269287381-UlOgfsaQpcSXwchYvHfdD7MX", "xoxp-9759875108 is a prefix"),
    ("  hf_token: hf_FCuJWkwpSdvEHjixgBgmuXtnVFhFnodUn\r\ny\n  x: 1", "GENERIC_SECRET",
     "hf_FCuJWkwpSdvEHjixgBgmuXtnVFhFnodUn\r\ny", "use hf_hub_download\nfor models"),
    ("RuntimeError: authentication failed for credential 43cc074d3af74a5e6175d516f0705918",
     "GENERIC_SECRET", "43cc074d3af74a5e6175d516f0705918",
     "RuntimeError: authentication failed for credential rotation_policy"),
    ("  authorization: Basic dWFsLWhzeW46MlBybEk0ZmpBTU4=\n  card_note: x", "PASSWORD",
     "dWFsLWhzeW46MlBybEk0ZmpBTU4=", "  auth: Basic\n  mode: strict"),
    ("curl -H 'Authorization: Basic aG\nlkZWtpNDk6RzBPVjRuSXYxMmpnbHgx' https://x", "PASSWORD",
     "aG\nlkZWtpNDk6RzBPVjRuSXYxMmpnbHgx", "Basic auth is\nenabled here"),
    ("KEY=-----BEGIN EC\r\nPRIVATE KEY-----\nMHcCAQEEIBk5v1Q2nN3rL8wQ0ZfZ4y0x7w\n-----END EC PRIVATE KEY-----",
     "PRIVATE_KEY", "-----BEGIN EC\r\nPRIVATE KEY-----", "the -----BEGIN marker\nof a key file"),
    ("The credential sQ0vuZfdtSe3 shows up in our build output.", "GENERIC_SECRET", "sQ0vuZfdtSe3",
     "The credential rotation is due; I pasted 1234 lines."),
    ("I accidentally pasted 62a393e0c612559ca5cd3cdfad40f5ac into the channel", "GENERIC_SECRET",
     "62a393e0c612559ca5cd3cdfad40f5ac", "I committed 9fceb02 and pasted the log into the channel"),
    # a key's value continued on the next line (a .env line, a YAML plain scalar)
    ("TWILIO_AUTH_TOKEN=cf41556884\n402fab5bbdb23fc6b2d1df\nEOF", "GENERIC_SECRET",
     "cf41556884\n402fab5bbdb23fc6b2d1df", "TOKEN_TTL=3600\nEOF"),
    ("service:\n  password: I\r\ni47tzp$G#QyARd5\n  replicas: 3", "PASSWORD", "I\r\ni47tzp$G#QyARd5",
     "service:\n  password:\n    min_length: 12"),
]


@pytest.mark.parametrize("text,etype,value,counter", SECRETS)
def test_secret_broken_over_a_line(detector: Detector, text: str, etype: str, value: str,
                                   counter: str) -> None:
    _check(detector, text, etype, value, counter)


def test_whole_token_keeps_the_next_word(detector: Detector) -> None:
    text = "SLACK=xoxb-1234567890-1234567890-abcdefghijklmnopqrstuvwx\nDeploy done"
    found = [v for t, v in _found(detector, text) if t == "SLACK_TOKEN"]
    assert found == ["xoxb-1234567890-1234567890-abcdefghijklmnopqrstuvwx"]


def test_continued_value_stops_at_the_next_key(detector: Detector) -> None:
    text = 'export TWILIO_API_KEY="SKbf665ad3\n69e2ecfe184b7eff50803565"\nLOG_LEVEL=debug'
    found = _found(detector, text)
    assert ("GENERIC_SECRET", "SKbf665ad3\n69e2ecfe184b7eff50803565") in found
    assert all("LOG_LEVEL" not in v and "debug" not in v for _, v in found)


# --- the pattern pass: faster, and nothing found differently ------------------------------

def _texts() -> list[str]:
    from bench.corpus import generate, message_strings

    out = []
    for seed in (21, 22):
        for case in generate(seed, 80):
            out += [normalize(s)[0] for s in message_strings(case.body) if s]
    return out + [normalize(t)[0] for t, *_ in LABELS + SECRETS] + [normalize(t)[0] for t, *_ in IBANS]


def _key(r):  # noqa: ANN001, ANN202
    return (r.entity_type, r.start, r.end, r.score, r.recognition_metadata["recognizer_name"])


def test_prechecks_never_skip_a_match() -> None:
    """A rule whose pre-check fails on a text has no match in it (so the pre-checks only save
    time)."""
    texts = _texts()
    for rec in build_recognizers("en"):
        if not isinstance(rec, RegexRecognizer):
            continue
        for rule, rx in rec._rules:
            if not rule.need and rule.need_rx is None:
                continue
            for t in texts:
                if not _Prechecks(t).passes(rule):
                    assert rx.search(t) is None, (rec.name, rule.name)


def test_one_literal_pass_decides_what_each_rules_own_search_decides() -> None:
    """The Aho-Corasick pass over every rule's literals gives each rule the answer its own
    substring search gives, on the corpus texts and on texts made of the literals themselves
    (overlapping, nested, at both ends, in other cases)."""
    rules = [rule for rec in build_recognizers("en") if isinstance(rec, RegexRecognizer) for rule, _ in rec._rules]
    finder = need_finder(rules)
    words = sorted({w for r in rules for w in r.need})
    made = ["".join(words[i:i + 3]) for i in range(0, len(words), 2)] + [w.upper() for w in words] + \
        [w[1:] for w in words] + [" " + w[:-1] for w in words]
    for t in _texts() + made:
        one, own = _Prechecks(t, finder), _Prechecks(t)
        assert [one.passes(r) for r in rules] == [own.passes(r) for r in rules], t[:80]


def test_one_pass_finds_what_the_rule_sets_find() -> None:
    recs = build_recognizers("en")
    merged = merge_recognizers(recs)
    passes = [r for r in merged if isinstance(r, PatternPass)]
    assert len(passes) == 1 and len(merged) < len(recs)
    one = passes[0]
    inside = {id(r) for r in one.rule_sets}
    ents = list(DEFAULT_ENTITIES)
    for t in _texts():
        apart = sorted(_key(r) for rec in recs if id(rec) in inside for r in rec.analyze(t, ents))
        assert sorted(_key(r) for r in one.analyze(t, ents)) == apart
        # a type not asked for costs nothing and is not reported
        assert all(r.entity_type != "PASSWORD" for r in one.analyze(t, [e for e in ents if e != "PASSWORD"]))


@pytest.mark.parametrize("region", ["US", "GB", "DE", "IT", "BR", "SA", "JP", "CN", "IN"])
def test_phone_windows_find_what_the_whole_text_finds(region: str) -> None:
    """phonenumbers on the windows around digit runs finds the numbers it finds on the whole
    text (card numbers aside, which the card recognizer takes)."""
    from trustproxy.pii.recognizers import card_valid

    from trustproxy.pii.detector import _DIGIT_RUN

    leniency = phonenumbers.Leniency.VALID
    for t in _texts():
        cards = [m.span() for m in _DIGIT_RUN.finditer(t)
                 if sum(c.isdigit() for c in m.group(0)) >= 16 and card_valid(m.group(0))]
        whole = {(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(t, region, leniency=leniency)
                 if not any(a <= m.start and m.end <= b for a, b in cards)}
        parts = set()
        for a, b in _phone_windows(t, cards_found=True):
            parts |= {(a + m.start, a + m.end)
                      for m in phonenumbers.PhoneNumberMatcher(t[a:b], region, leniency=leniency)}
        assert whole <= parts, (region, sorted(whole - parts))


def test_phone_windows_skip_text_without_a_long_digit_run() -> None:
    assert _phone_windows("v2.4.1 on the 14th, 200 words, build 9fceb02", cards_found=True) == []
    assert _phone_windows("card 4111 1111 1111 1111 only", cards_found=True) == []
    assert _phone_windows("card 4111 1111 1111 1111 only", cards_found=False) != []


BROKEN: list[tuple[str, str, str, str]] = [
    ("Geboortedatum: 11-1\n1-1993", "DATE_OF_BIRTH", "11-1\n1-1993", "Geboortedatum: 11-1\nvolgt"),
    ("Fecha de nacimiento: 15/0\r\n7/1998", "DATE_OF_BIRTH", "15/0\r\n7/1998",
     "Fecha de nacimiento: 15/0\r\n7/19988"),
    ("Mijn BSN is 31569\r\n2078.", "NL_BSN", "31569\r\n2078", "Mijn BSN is 31569 2079."),
    ("Rekeningnummer\n43222634\nSchrijf terug", "US_BANK_NUMBER", "43222634", "Rekeningnummer\nvolgt"),
]


@pytest.mark.parametrize("text,etype,value,counter", BROKEN)
def test_value_broken_once_after_its_label(detector: Detector, text: str, etype: str, value: str,
                                           counter: str) -> None:
    _check(detector, text, etype, value, counter)


@pytest.mark.parametrize("key,etype", [
    ("Numéro de compte", "US_BANK_NUMBER"), ("numero_de_compte", "US_BANK_NUMBER"),
    ("मेडिकल रिकॉर्ड नंबर", "MEDICAL_RECORD_NUMBER"), ("Führerscheinnummer", "US_DRIVER_LICENSE"),
    ("Telefone", "PHONE_NUMBER"), ("national_id", "SA_NATIONAL_ID"),
])
def test_keys_in_the_corpus_languages(key: str, etype: str) -> None:
    from trustproxy.pii.keyed import key_type

    assert key_type(key) == etype
    assert key_type("Numéro de commande") is None


def test_presidio_prechecks_never_skip_a_match() -> None:
    """Presidio's e-mail and IP recognizers are skipped on texts without "@" / a dotted digit
    or two colons; on the corpus and the tables they find what they find unskipped."""
    from trustproxy.pii.detector import DEFAULT_ENTITIES, get_detector

    det = get_detector()
    wrapped = [r for r in det._analyzer.registry.recognizers if "analyze" in vars(r)]
    assert {r.name for r in wrapped} == {"EmailRecognizer", "IpRecognizer"}
    ents = list(DEFAULT_ENTITIES)
    extra = ["::1 and fe80::1ff:fe23:4567:890a", "10.0.0.1", "a@b.co", "ip 2001:db8::8a2e:370:7334"]
    skipped = 0
    for t in _texts() + extra:
        for r in wrapped:
            got = sorted(_key(x) for x in r.analyze(t, ents))
            assert got == sorted(_key(x) for x in type(r).analyze(r, t, ents)), (r.name, t)
            skipped += not got
    assert skipped
