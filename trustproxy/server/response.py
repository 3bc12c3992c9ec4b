"""Response screening: per-slot filter chains over stream chunks or a whole reply.

The slots come from ``slots.iter_response_slots`` (the same enumeration the request side uses),
so every text position of a reply is screened. Each slot group (one choice's content, one tool
call's arguments) gets its own chain, created on first sight: content passes toxicity window ->
output-PII window -> restore; tool-call arguments (JSON) pass output-PII -> restore with JSON
escaping. A non-streamed reply is the same chains fed the whole text, then finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustproxy.pipeline import FilterChain, StreamFilter
from trustproxy.slots import Slot, iter_response_slots


class ResponseScreen:
    """Builds and drives the filter chains of one response (one per slot group)."""

    def __init__(self, content_filters: Callable[[], list[StreamFilter]],
                 tool_filters: Callable[[], list[StreamFilter]]) -> None:
        self._content_filters = content_filters
        self._tool_filters = tool_filters
        self._chains: dict[str, FilterChain] = {}
        self.choices: dict[int, bool] = {}  # choice index -> finished
        self.all_filters: list[StreamFilter] = []

    def _chain(self, slot: Slot) -> FilterChain:
        chain = self._chains.get(slot.group)
        if chain is None:
            filters = self._tool_filters() if slot.kind == "json" else self._content_filters()
            self.all_filters.extend(filters)
            chain = self._chains[slot.group] = FilterChain(filters)
        return chain

    async def on_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Screen one stream chunk in place; returns the chunks to send (a flush may precede it)."""
        for choice in chunk.get("choices", []):
            self.choices.setdefault(choice.get("index", 0), False)
            choice.setdefault("delta", {})
        for slot in iter_response_slots(chunk):
            slot.set(await self._chain(slot).feed(slot.get()))
        out: list[dict[str, Any]] = []
        kept = []
        for choice in chunk.get("choices", []):
            idx = choice.get("index", 0)
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
        prefix = f"{idx}:"
        for group, chain in self._chains.items():
            if not group.startswith(prefix):
                continue
            rest = await chain.finish()
            if not rest:
                continue
            kind = group[len(prefix):]
            if kind == "content":
                delta["content"] = rest
            elif kind.startswith("tool"):
                delta.setdefault("tool_calls", []).append({"index": int(kind[4:]), "function": {"arguments": rest}})
            else:  # legacy function_call
                delta["function_call"] = {"arguments": rest}
        return delta

    async def unfinished(self) -> list[int]:
        return [i for i, done in self.choices.items() if not done]

    async def screen_message(self, idx: int, message: dict[str, Any]) -> dict[str, Any]:
        """Non-streamed: the same chains, fed each slot's whole text then finished."""
        doc = {"choices": [{"index": idx, "message": message}]}
        self.choices[idx] = True
        for slot in iter_response_slots(doc):
            chain = self._chain(slot)
            slot.set(await chain.feed(slot.get()) + await chain.finish())
        return message


def _prune_delta(delta: dict[str, Any]) -> None:
    """Drop what screening emptied: held-back content, argument fragments with no id or name."""
    if delta.get("content") == "":
        delta.pop("content")
    calls = []
    for call in delta.get("tool_calls") or []:
        fn = call.get("function") or {}
        if call.get("id") or fn.get("name") or fn.get("arguments"):
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
