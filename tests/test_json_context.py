"""Restored values land escaped inside JSON the model wrote in plain content, at every split."""

from __future__ import annotations

import asyncio
import json

import pytest

from trustproxy.pii.restore import StreamRestorer
from trustproxy.pii.vault import Vault
from trustproxy.pipeline import FilterChain
from trustproxy.server.json_context import JsonStringRestorer

VALUE = 'Ann "B" Lee\\x'


def _run(vault: Vault, pieces: list[str]) -> str:
    chain = FilterChain([JsonStringRestorer(vault), StreamRestorer(vault)])

    async def go() -> str:
        out = ""
        for p in pieces:
            out += await chain.feed(p)
        return out + await chain.finish()

    return asyncio.run(go())


def _vault() -> tuple[Vault, str]:
    vault = Vault()
    return vault, vault.mask("PERSON", VALUE)


def test_json_in_content_stays_valid_and_prose_stays_plain() -> None:
    vault, ph = _vault()
    text = f'Here: {{"to": "{ph}", "cc": ["x", "{ph}"], "n": 1}}\nand in prose {ph} "quoted {ph}" done'
    out = _run(vault, [text])
    doc, rest = out.split("\n")
    assert json.loads(doc[6:]) == {"to": VALUE, "cc": ["x", VALUE], "n": 1}
    assert rest.startswith(f"and in prose {VALUE} ")


@pytest.mark.parametrize("text", [
    '{"to": "<PERSON_1>"}',
    '{"a": "x\\"<PERSON_1>\\\\", "b": "<PERSON_1>"} <PERSON_1>',
    '"\\u003cPERSON_1\\u003e" and [PERSON_1]',
    'line "open\n<PERSON_1> closed by the newline',
])
def test_every_split_point_gives_the_whole_text_result(text: str) -> None:
    vault, ph = _vault()
    assert ph == "<PERSON_1>"
    whole = _run(vault, [text])
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1, 3):
            assert _run(_vault()[0], [text[:i], text[i:j], text[j:]]) == whole, (i, j)
    if text.startswith("{"):  # the JSON part stays valid and holds the value itself
        doc = json.loads(whole[:whole.rindex("}") + 1])
        assert VALUE in doc.values()


def test_random_texts_give_the_same_result_at_random_splits() -> None:
    """Long runs of ordinary characters are copied in one step; whatever the mix of quotes,
    backslashes, line ends and placeholder forms, the chunking never changes the result."""
    import random

    rnd = random.Random(12)
    frags = ['"', "\\", "\n", "\r\n", "ab ", "plain prose, " * 5, "<PERSON_1>", "\\u003cPERSON_1\\u003e",
             "[PERSON_1]", "&lt;PERSON_1&gt;", "<PER", "&", "[", " x"]
    for _ in range(300):
        text = "".join(rnd.choice(frags) for _ in range(rnd.randint(1, 14)))
        whole = _run(_vault()[0], [text])
        i, j = sorted(rnd.randint(0, len(text)) for _ in range(2))
        assert _run(_vault()[0], [text[:i], text[i:j], text[j:]]) == whole, (text, i, j)


def test_a_value_after_a_long_run_of_prose_inside_a_string_is_escaped() -> None:
    vault, ph = _vault()
    out = _run(vault, ['{"note": "' + "a long sentence of prose, " * 40 + ph + '"}'])
    assert json.loads(out)["note"].endswith(VALUE)
