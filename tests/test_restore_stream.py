"""StreamRestorer: any chunking gives ``vault.restore(whole)``; nothing partial leaks."""

from __future__ import annotations

import asyncio
import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

import trustproxy  # noqa: F401  (offline env first)
from trustproxy.pii.restore import StreamRestorer
from trustproxy.pii.vault import Vault
from trustproxy.pipeline import StreamFilter

VALUE = 'Jöhn "J" Smith'


def make_vault() -> Vault:
    v = Vault(["the caller wrote <PERSON_9> once"])
    assert v.mask("PERSON", VALUE) == "<PERSON_1>"
    v.mask("EMAIL_ADDRESS", "john@corp.com")
    for i in range(10):  # PERSON_2 .. PERSON_12 (9 is taken): two-digit numbers too
        v.mask("PERSON", f"P{i}")
    return v


def run(v: Vault, chunks: list[str], *, json_escape: bool = False) -> str:
    """Feed ``chunks``; every intermediate output must be a prefix of the final answer."""
    want = v.restore("".join(chunks), json_escape=json_escape)
    r = StreamRestorer(v, json_escape=json_escape)
    out = ""
    for c in chunks:
        out += r.feed_sync(c)
        assert want.startswith(out), (chunks, out)
    out += r.finish_sync()
    assert out == want, chunks
    return out


def splits(text: str, *cuts: int) -> list[str]:
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


TEXTS = [
    "Grüße <PERSON_1> 日本 🙂!",
    "x < person 1 >, &lt;PERSON_1&gt; 🙂",
    "\\u003cPERSON_1\\u003e [EMAIL ADDRESS 1]é",
    "**<PERSON_11>**<PERSON_1><PERSON_99>",
    "\\<PERSON_1\\> &#60;Person-1&#62; <PERSON_",
]


def test_every_single_and_pair_split() -> None:
    v = make_vault()
    for text in TEXTS:
        want = v.restore(text)
        assert "<PERSON_1>" not in want
        for i in range(len(text) + 1):
            assert run(v, splits(text, i)) == want
        for i, j in itertools.combinations(range(len(text) + 1), 2):
            run(v, splits(text, i, j))


def test_every_split_of_longer_text_one_char_chunks() -> None:
    v = make_vault()
    text = " ".join(TEXTS) * 3
    run(v, list(text))
    for i in range(len(text) + 1):
        run(v, splits(text, i))


def test_synthetic_values_every_split() -> None:
    v = Vault()
    name = v.synthetic("PERSON", "John Smith")
    email = v.synthetic("EMAIL_ADDRESS", "john@corp.com")
    card = v.synthetic("CREDIT_CARD", "4111-1111-1111-1111")
    text = f"Hi {name}, mail {email} or pay {card}. Not {name}s, ok {name}"
    want = v.restore(text)
    assert want == ("Hi John Smith, mail john@corp.com or pay 4111-1111-1111-1111. "
                    f"Not {name}s, ok John Smith")
    for i, j in itertools.combinations(range(len(text) + 1), 2):
        run(v, splits(text, i, j))


def test_json_escape_every_split() -> None:
    v = make_vault()
    doc = '{"to": "<PERSON_1>", "cc": "\\u003cEMAIL_ADDRESS_1\\u003e", "n": "日本"}'
    for i, j in itertools.combinations(range(len(doc) + 1), 2):
        out = run(v, splits(doc, i, j), json_escape=True)
        assert json.loads(out) == {"to": VALUE, "cc": "john@corp.com", "n": "日本"}


def test_holds_back_only_possible_tokens() -> None:
    v = make_vault()
    fake = v.synthetic("PERSON", "Ann Lee")
    r = StreamRestorer(v)
    assert r.feed_sync("plain text <div> [link](x) &amp; ") == "plain text <div> [link](x) &amp; "
    assert r.feed_sync("<PERS") == ""
    assert r.feed_sync("ON_1") == ""
    assert r.feed_sync("> and <PERSON_0") == f"{VALUE} and <PERSON_0"
    assert r.feed_sync(f" {fake[:3]}") == " "
    assert r.feed_sync(fake[3:]) == ""          # whole fake: wait for the word to end
    assert r.feed_sync("!") == "Ann Lee!"
    assert r.feed_sync(" end <PERSON_") == " end "
    assert r.finish_sync() == "<PERSON_"         # ends inside a possible placeholder


def test_no_vault_values_means_no_holding() -> None:
    r = StreamRestorer(Vault())
    assert r.feed_sync("a <PERSON_1") == "a <PERSON_1"
    assert r.finish_sync() == ""


async def test_async_interface_and_protocol() -> None:
    v = make_vault()
    r: StreamFilter = StreamRestorer(v)
    assert await r.feed("Hi <PER") == "Hi "
    assert await r.feed("SON_1>.") == f"{VALUE}."
    assert await r.finish() == ""


async def test_many_vaults_in_parallel_restore_only_their_own() -> None:
    async def one(i: int) -> str:
        v = Vault()
        v.mask("PERSON", f"Name{i}")
        if i % 2:
            v.mask("PERSON", f"Second{i}")
        r = StreamRestorer(v)
        out = ""
        for ch in "Hi <PERSON_1> and <PERSON_2>!":
            out += await r.feed(ch)
            await asyncio.sleep(0)
        return out + await r.finish()

    outs = await asyncio.gather(*(one(i) for i in range(60)))
    for i, out in enumerate(outs):
        second = f"Second{i}" if i % 2 else "<PERSON_2>"
        assert out == f"Hi Name{i} and {second}!"


FRAGMENTS = st.sampled_from([
    "<PERSON_1>", "<person 1>", "&lt;PERSON_1&gt;", "\\u003cPERSON_11\\u003e", "[EMAIL_ADDRESS_1]",
    "<PERSON_99>", "<", "&", "\\", "[", "PERSON", "_1", ">", "]", " ", "日本", "🙂", "ü", "a",
    "Alex", "Morgan", "@example.com", "-", "\n",
])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(parts=st.lists(FRAGMENTS, max_size=30), data=st.data())
def test_property_any_chunking(parts: list[str], data: st.DataObject) -> None:
    v = make_vault()
    v.synthetic("PERSON", "Ann Lee")
    v.synthetic("EMAIL_ADDRESS", "ann@corp.com")
    for fake in list(v.fakes):
        parts = parts + [fake]
    text = "".join(data.draw(st.permutations(parts)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    run(v, splits(text, *cuts))
    run(v, splits(text, *cuts), json_escape=True)
