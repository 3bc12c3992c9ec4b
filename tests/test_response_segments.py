"""The response screen over declared segments: every split of content, refusal, tool name and
arguments gives the same final text as the non-streamed reply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from trustproxy.doors.masking import IdentityMap
from trustproxy.pii.restore import StreamRestorer
from trustproxy.pii.vault import Vault
from trustproxy.server.json_context import JsonStringRestorer
from trustproxy.server.response import ResponseScreen

VALUE = 'ann"lee@example.com'


def _screen() -> tuple[ResponseScreen, str]:
    vault = Vault()
    ph = vault.mask("EMAIL_ADDRESS", VALUE)
    ids = IdentityMap()
    ids.record("mail_PERSON_1", "mail_John_Smith")
    screen = ResponseScreen(lambda: [JsonStringRestorer(vault), StreamRestorer(vault)],
                            lambda: [StreamRestorer(vault, json_escape=True)], ids.restore)
    return screen, ph


def _chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


async def _stream(chunks: list[dict[str, Any]], screen: ResponseScreen) -> dict[str, str]:
    got = {"content": "", "refusal": "", "name": "", "args": ""}
    for c in chunks:
        for out in await screen.on_chunk(c):
            for ch in out["choices"]:
                d = ch["delta"]
                got["content"] += d.get("content") or ""
                got["refusal"] += d.get("refusal") or ""
                for tc in d.get("tool_calls") or []:
                    got["name"] += (tc.get("function") or {}).get("name") or ""
                    got["args"] += (tc.get("function") or {}).get("arguments") or ""
    return got


@pytest.mark.parametrize("field", ["content", "refusal", "args"])
def test_every_split_gives_the_non_streamed_result(field: str) -> None:
    screen, ph = _screen()
    content = f'Sure {ph}: {{"to": "{ph}"}}'
    refusal = f"No {ph}."
    args = json.dumps({"to": ph, "n": 1})
    message = {"role": "assistant", "content": content, "refusal": refusal, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "mail_PERSON_1", "arguments": args}}]}
    whole = asyncio.run(screen.screen_message(0, json.loads(json.dumps(message))))
    assert json.loads(whole["content"][len("Sure ") + len(VALUE) + 2:]) == {"to": VALUE}
    assert whole["refusal"] == f"No {VALUE}."
    assert whole["tool_calls"][0]["function"]["name"] == "mail_John_Smith"
    assert json.loads(whole["tool_calls"][0]["function"]["arguments"]) == {"to": VALUE, "n": 1}
    text = {"content": content, "refusal": refusal, "args": args}[field]
    for i in range(len(text) + 1):
        parts = {"content": [content], "refusal": [refusal], "args": [args]}
        parts[field] = [text[:i], text[i:]]
        chunks = [_chunk({"role": "assistant", "content": p}) for p in parts["content"]]
        chunks += [_chunk({"refusal": p}) for p in parts["refusal"]]
        chunks.append(_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": "mail_PERSON_1", "arguments": ""}}]}))
        chunks += [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in parts["args"]]
        chunks.append(_chunk({}, "tool_calls"))
        got = asyncio.run(_stream(chunks, _screen()[0]))
        assert got == {"content": whole["content"], "refusal": whole["refusal"], "name": "mail_John_Smith",
                       "args": whole["tool_calls"][0]["function"]["arguments"]}, i


def test_logprobs_are_dropped_unless_kept() -> None:
    screen, _ = _screen()
    lp = {"content": [{"token": "x", "logprob": -1.0, "bytes": [120], "top_logprobs": []}]}
    out = asyncio.run(screen.on_chunk({"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": "hi"}, "logprobs": lp, "finish_reason": None}]}))
    assert "logprobs" not in out[0]["choices"][0]
    reply = screen.reply({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "logprobs": lp}]})
    assert "logprobs" not in reply["choices"][0]
    kept = ResponseScreen(lambda: [], lambda: [], keep_logprobs=True).reply(
        {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "hi"}, "logprobs": lp}]})
    assert kept["choices"][0]["logprobs"]["content"][0]["token"] == "x"


def test_undeclared_reply_fields_never_pass() -> None:
    screen, _ = _screen()
    out = asyncio.run(screen.on_chunk({"object": "chat.completion.chunk", "leak": "x", "choices": [
        {"index": 0, "delta": {"content": "hi", "audio": {"transcript": "raw"}}, "finish_reason": None}]}))
    assert "leak" not in out[0] and "audio" not in out[0]["choices"][0]["delta"]
