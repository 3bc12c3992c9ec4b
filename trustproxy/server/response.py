"""Response screening: per-segment filter chains over stream chunks or a whole reply.

Every reply and chunk is first rebuilt from the door's declared model
(``doors/openai_chat.py``: nothing undeclared passes) and walked for its declared slots, so
every output field is screened: content and refusals (prose) pass toxicity window ->
output-PII window -> restore; tool-call and function-call arguments (JSON in a string) pass
output-PII -> restore with JSON escaping; function names (identifiers) are restored by exact
match from the request's ``IdentityMap``. ``logprobs`` are dropped unless the policy screens
no output (the request side refuses to ask for them then).

A segment is ``(choice index, location inside the message or delta)``; stream lists are keyed
by their items' ``index``, so one segment's chain is fed across chunks. A non-streamed reply
is the same chains fed the whole text, then finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustproxy.doors.fields import Kind
from trustproxy.doors.openai_chat import ChatCompletion, ChatCompletionChunk
from trustproxy.doors.walk import Loc, Slot, walk, walk_instance
from trustproxy.pipeline import FilterChain, StreamFilter

Segment = tuple[int, Loc]


class ResponseScreen:
    """Builds and drives the filter chains of one response (one per segment)."""

    def __init__(self, content_filters: Callable[[], list[StreamFilter]],
                 tool_filters: Callable[[], list[StreamFilter]],
                 restore_identifier: Callable[[str], str] = lambda s: s, *, keep_logprobs: bool = False) -> None:
        self._content_filters = content_filters
        self._tool_filters = tool_filters
        self._restore_identifier = restore_identifier
        self._keep_logprobs = keep_logprobs
        self._chains: dict[Segment, FilterChain] = {}
        self.choices: dict[int, bool] = {}  # choice index -> finished
        self.all_filters: list[StreamFilter] = []

    def _chain(self, seg: Segment, kind: str) -> FilterChain:
        chain = self._chains.get(seg)
        if chain is None:
            filters = self._tool_filters() if kind == Kind.JSON_STRING.value else self._content_filters()
            self.all_filters.extend(filters)
            chain = self._chains[seg] = FilterChain(filters)
        return chain

    @staticmethod
    def _segment(slot: Slot) -> Segment:
        # loc = ("choices", <index>, "delta" | "message", ...rest)
        idx = slot.loc[1]
        return (idx if isinstance(idx, int) else 0, slot.loc[3:])

    async def on_chunk(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        """Screen one stream chunk; returns the chunks to send (a flush may precede it)."""
        inst = ChatCompletionChunk.model_validate(raw)
        chunk = inst.model_dump(by_alias=True, exclude_unset=True)
        for choice in chunk.get("choices", []):
            self.choices.setdefault(choice["index"], False)
            choice.setdefault("delta", {})
            if not self._keep_logprobs:
                choice.pop("logprobs", None)
        for slot in list(walk_instance(inst, chunk)):
            if slot.kind == Kind.IDENTIFIER.value:
                slot.set(self._restore_identifier(slot.get()))
            elif slot.loc[:1] == ("choices",):
                slot.set(await self._chain(self._segment(slot), slot.kind).feed(slot.get()))
        out: list[dict[str, Any]] = []
        kept = []
        for choice in chunk.get("choices", []):
            idx = choice["index"]
            _prune_delta(choice["delta"])
            if choice.get("finish_reason"):
                tail = await self.finish_choice(idx)
                if tail:
                    out.append({**_shell(chunk), "choices": [{"index": idx, "delta": tail, "finish_reason": None}]})
            if choice["delta"] or choice.get("finish_reason"):
                kept.append(choice)
        if kept or chunk.get("usage"):
            out.append({**chunk, "choices": kept})
        return out

    async def finish_choice(self, idx: int) -> dict[str, Any]:
        """End of one choice's stream: release what its chains hold, as one delta."""
        if self.choices.get(idx):
            return {}
        self.choices[idx] = True
        delta: dict[str, Any] = {}
        for (i, rel), chain in self._chains.items():
            if i != idx:
                continue
            rest = await chain.finish()
            if rest:
                _put(delta, rel, rest)
        return delta

    async def unfinished(self) -> list[int]:
        return [i for i, done in self.choices.items() if not done]

    def reply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed reply rebuilt from the declared model (logprobs dropped unless kept)."""
        resp = ChatCompletion.model_validate(raw).model_dump(by_alias=True, exclude_unset=True)
        if not self._keep_logprobs:
            for choice in resp.get("choices", []):
                choice.pop("logprobs", None)
        return resp

    async def screen_message(self, idx: int, message: dict[str, Any]) -> dict[str, Any]:
        """Non-streamed: the same chains, fed each slot's whole text then finished."""
        doc = {"choices": [{"index": idx, "message": message}]}
        self.choices[idx] = True
        for slot in list(walk(ChatCompletion, doc)):
            if slot.kind == Kind.IDENTIFIER.value:
                slot.set(self._restore_identifier(slot.get()))
                continue
            chain = self._chain(self._segment(slot), slot.kind)
            slot.set(await chain.whole(slot.get()))
        return message


def _put(delta: dict[str, Any], rel: Loc, value: str) -> None:
    """Set ``value`` at ``rel`` inside a delta; list positions are the items' ``index``."""
    node: dict[str, Any] = delta
    j = 0
    while j < len(rel) - 1:
        key = rel[j]
        if isinstance(rel[j + 1], int):
            items = node.setdefault(str(key), [])
            k = rel[j + 1]
            item = next((x for x in items if x.get("index") == k), None)
            if item is None:
                item = {"index": k}
                items.append(item)
            node = item
            j += 2
        else:
            node = node.setdefault(str(key), {})
            j += 1
    node[str(rel[-1])] = value


def _prune_delta(delta: dict[str, Any]) -> None:
    """Drop what screening emptied: held-back content, argument fragments with no id or name."""
    for key in ("content", "refusal"):
        if delta.get(key) == "":
            delta.pop(key)
    calls = []
    for call in delta.get("tool_calls") or []:
        fn = call.get("function") or {}
        if call.get("id") or fn.get("name") or fn.get("arguments"):
            if "function" in call:
                fn.setdefault("arguments", "")
            calls.append(call)
    if calls:
        delta["tool_calls"] = calls
    else:
        delta.pop("tool_calls", None)
    fc = delta.get("function_call")
    if isinstance(fc, dict) and not fc.get("name") and not fc.get("arguments"):
        delta.pop("function_call")


def _shell(chunk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
