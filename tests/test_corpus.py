"""The evaluation corpus (bench/corpus): deterministic per seed, every planted value recorded and
findable, valid check digits, clean texts free of planted values, and a small sample through the
real proxy against the recording fake with nothing planted reaching the provider."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from stdnum import iban, luhn
from stdnum.br import cpf
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.jp import in_ as my_number
from stdnum.nl import bsn

from bench.corpus import PLACEMENTS, fold, folded_request, generate, message_strings
from bench.corpus.evasions import EVASIONS
from bench.corpus.lang import LOCALES
from bench.corpus.score import echo_reply, judge, shape, summarise
from bench.corpus.values import PERSONAL, SECRETS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus():
    return generate(11, 400)


def test_deterministic_per_seed_and_stable_prefix():
    a = [c.to_json() for c in generate(5, 30)]
    assert a == [c.to_json() for c in generate(5, 30)]
    assert a[:10] == [c.to_json() for c in generate(5, 10)]  # case i depends only on (seed, i)
    assert a != [c.to_json() for c in generate(6, 30)]


def test_a_seed_gives_the_same_corpus_in_every_process():
    """Not only within one process: Faker draws some values from the module-level ``random``
    and some lists in set order (hash seed), and the corpus must not depend on either."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-m", "bench.corpus", "--seed", "2", "--n", "120"],
                             capture_output=True, check=True, cwd=root, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": hash_seed})
        digests.add(hashlib.sha256(out.stdout).hexdigest())
    assert len(digests) == 1


def test_every_planted_value_is_recorded_and_findable(corpus):
    for case in corpus:
        folded = folded_request(case.body)
        texts = message_strings(case.body)
        assert case.kind in ("pii", "clean")
        assert bool(case.planted) == (case.kind == "pii"), case.id
        for p in case.planted:
            assert p.category in PERSONAL + SECRETS
            assert p.placement in PLACEMENTS and p.placement == case.placement
            assert p.locale in LOCALES and p.locale == case.locale
            assert p.evasion == "none" or p.evasion in EVASIONS
            assert p.format and p.subtype
            escaped = json.dumps(p.surface, ensure_ascii=False)[1:-1]
            assert any(p.surface in s or escaped in s for s in texts), (case.id, p.id)
            assert p.probes and folded.count(p.probes[0]) == 1, (case.id, p.id)
            assert all(pr in folded for pr in p.probes)
            if p.evasion != "none":
                assert p.surface != p.value or p.evasion == "glued"


def test_corpus_covers_the_issue(corpus):
    planted = [p for c in corpus for p in c.planted]
    assert {p.locale for p in planted} == set(LOCALES)
    assert {p.placement for p in planted} == set(PLACEMENTS)
    assert {p.evasion for p in planted} == {"none", *EVASIONS}
    formats = Counter(p.format for p in planted)
    for fmt in ("csv", "json_in_text", "json_escaped", "json_number", "json_key_label", "json_key_is_value",
                "env", "log", "traceback", "http", "name_field"):
        assert formats[fmt] > 0, fmt
    assert {"support", "hr", "medical", "sales", "finance", "dev"} <= {c.domain for c in corpus}
    cats = Counter(p.category for p in planted)
    assert set(cats) >= set(PERSONAL) - {"DRIVER_LICENSE"} and set(cats) >= set(SECRETS) - {"PRIVATE_KEY"}
    assert any(p.subtype == "mastercard2" for p in planted)
    kinds = Counter(c.clean_kind for c in corpus if c.kind == "clean")
    assert kinds["prose"] and kinds["products"] and kinds["checksums"] and kinds["uuids"]
    sizes = [len(json.dumps(c.body["messages"], ensure_ascii=False)) for c in corpus]
    assert 150 < min(sizes) and max(sizes) < 4000 and 400 < sorted(sizes)[len(sizes) // 2] < 2000


VALIDATORS = {"de.idnr": idnr, "fr.nir": nir, "es.dni": dni, "es.nie": nie, "it.codicefiscale": codicefiscale,
              "nl.bsn": bsn, "br.cpf": cpf, "jp.in": my_number, "cn.ric": ric, "gb.nhs": nhs,
              "in.aadhaar": aadhaar, "in.pan": pan}


def test_identifiers_carry_valid_check_digits(corpus):
    seen = Counter()
    for p in (p for c in corpus for p in c.planted):
        if p.category == "NATIONAL_ID":
            if p.subtype in VALIDATORS:
                assert VALIDATORS[p.subtype].is_valid(p.value), p.subtype
            elif p.subtype == "us.ssn":
                assert re.fullmatch(r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}", p.value)
            elif p.subtype == "sa.nid":
                assert re.fullmatch(r"[12]\d{9}", p.value) and luhn.is_valid(p.value)
            else:
                assert p.subtype == "gb.nino" and re.fullmatch(r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]", p.value)
            seen[p.subtype] += 1
        elif p.category == "IBAN":
            assert iban.is_valid(p.value)
        elif p.category == "CREDIT_CARD":
            assert luhn.is_valid(re.sub(r"\D", "", p.value))
    assert len(seen) >= 10


def test_clean_texts_hold_no_planted_value(corpus):
    probes = {pr for c in corpus for p in c.planted for pr in p.probes if len(pr) >= 6}
    clean = [c for c in corpus if c.kind == "clean"]
    assert len(clean) > 50
    for case in clean:
        folded = folded_request(case.body)
        assert not [pr for pr in probes if pr in folded], case.id
        text = "\n".join(message_strings(case.body))
        assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", text)  # no email address
        assert not re.search(r"\b(AKIA|ghp_|npm_|hf_|xox[bp]-|sk_live_|SG\.)", text)


def test_fold_and_shape():
    assert fold("4000 0566\r\n5566\t55\u200b56") == "4000056655665556"
    assert fold("_Le\u0301na_ FISCHER") == fold("lena fischer")
    assert fold('{"card": "4000\\n0566"}') == "card40000566"  # JSON escapes count as what they mean
    assert shape("Ab 12\x07") == "Aa 99\\x07"


# ---- a small sample through the real proxy ------------------------------------------------------

@pytest.mark.slow
def test_sample_through_the_proxy_leaks_nothing(tmp_path):
    from bench.bench_detect_quality import Recorder, run_cases, settings_for
    from tests.fakes.providers import FakeOpenAI
    from tests.proxy import ProxyServer

    cases = generate(3, 40)
    recorder = Recorder()
    with FakeOpenAI(model="m") as fake:
        fake.script = recorder
        with ProxyServer(settings_for(fake, "default", REPO / "policies")) as proxy:
            results = asyncio.run(run_cases(proxy, recorder, cases))
    assert len(results) == 40 and all(r.status == 200 for r in results)
    s = summarise(results)
    leaked = [(v.category, v.placement, v.evasion, v.format, v.shape) for r in results for v in r.values if v.leaked]
    assert s["planted"] > 40
    assert leaked == []
    assert s["placeholder_leakage"] == 0


def test_judge_sees_a_leak_and_a_restore():
    """The judge itself: a provider body with the value is a leak; a masked one that comes back is
    a restore; a placeholder left in the reply is counted."""
    case = next(c for c in generate(2, 40) if c.kind == "pii" and c.placement == "user")
    text, calls = echo_reply(case.body)
    res = judge(case, 200, case.body, text, calls)
    assert all(v.leaked and v.restored for v in res.values) and res.round_trip_exact
    masked = json.loads(json.dumps(case.body))
    user = masked["messages"][-1]
    for i, p in enumerate(case.planted):
        escaped = json.dumps(p.surface, ensure_ascii=False)[1:-1]
        user["content"] = user["content"].replace(p.surface, f"<X_{i}>").replace(escaped, f"<X_{i}>")
    m_text, m_calls = echo_reply(masked)
    res = judge(case, 200, masked, m_text, m_calls)
    assert not any(v.leaked for v in res.values) and not any(v.restored for v in res.values)
    assert res.placeholders_left == len(case.planted)
