"""Response screening: per-choice filter chains applied to stream chunks or a whole reply.

For each choice: content passes toxicity window -> output-PII window -> restore; each tool
call's arguments pass the restorer (JSON-escaping restored values). A non-streamed reply is the
same chains fed the whole text then finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustproxy.pipeline import FilterChain, StreamFilter


@dataclass
class ChoiceState:
    content: FilterChain
    tools: dict[int, FilterChain] = field(default_factory=dict)
    tool_meta: dict[int, dict[str, Any]] = field(default_factory=dict)
    finished: bool = False


class ResponseScreen:
    """Builds and drives the filter chains of one response."""

    def __init__(self, content_filters: Callable[[], list[StreamFilter]],
                 tool_filters: Callable[[], list[StreamFilter]]) -> None:
        self._content_filters = content_filters
        self._tool_filters = tool_filters
        self.choices: dict[int, ChoiceState] = {}
        self.all_filters: list[StreamFilter] = []

    def _state(self, idx: int) -> ChoiceState:
        st = self.choices.get(idx)
        if st is None:
            fl = self._content_filters()
            self.all_filters.extend(fl)
            st = self.choices[idx] = ChoiceState(FilterChain(fl))
        return st

    def _tool_chain(self, st: ChoiceState, tidx: int) -> FilterChain:
        ch = st.tools.get(tidx)
        if ch is None:
            fl = self._tool_filters()
            self.all_filters.extend(fl)
            ch = st.tools[tidx] = FilterChain(fl)
        return ch

    async def on_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Screen one stream chunk; returns the chunks to send (possibly none, or a flush + it)."""
        out_choices = []
        flush_chunks: list[dict[str, Any]] = []
        for choice in chunk.get("choices", []):
            idx = choice.get("index", 0)
            st = self._state(idx)
            delta = dict(choice.get("delta") or {})
            if isinstance(delta.get("content"), str):
                text = await st.content.feed(delta["content"])
                if text:
                    delta["content"] = text
                else:
                    delta.pop("content")
            if delta.get("tool_calls"):
                calls = []
                for call in delta["tool_calls"]:
                    call = {**call, "function": dict(call.get("function") or {})}
                    tidx = call.get("index", 0)
                    args = call["function"].get("arguments")
                    if isinstance(args, str):
                        call["function"]["arguments"] = await self._tool_chain(st, tidx).feed(args)
                    has_meta = call.get("id") or call["function"].get("name")
                    if has_meta or call["function"].get("arguments"):
                        if not call["function"].get("arguments"):
                            call["function"]["arguments"] = ""
                        calls.append(call)
                if calls:
                    delta["tool_calls"] = calls
                else:
                    delta.pop("tool_calls")
            finish = choice.get("finish_reason")
            if finish:
                tail = await self.finish_choice(idx)
                if tail:
                    flush_chunks.append({**_shell(chunk), "choices": [{"index": idx, "delta": tail,
                                                                      "finish_reason": None}]})
            if delta or finish:
                out_choices.append({**choice, "delta": delta})
        out = flush_chunks
        if out_choices or chunk.get("usage"):
            out.append({**chunk, "choices": out_choices})
        return out

    async def finish_choice(self, idx: int) -> dict[str, Any]:
        """End of one choice's stream: release held text (content and tool args) as a delta."""
        st = self._state(idx)
        if st.finished:
            return {}
        st.finished = True
        delta: dict[str, Any] = {}
        text = await st.content.finish()
        if text:
            delta["content"] = text
        calls = []
        for tidx, chain in st.tools.items():
            rest = await chain.finish()
            if rest:
                calls.append({"index": tidx, "function": {"arguments": rest}})
        if calls:
            delta["tool_calls"] = calls
        return delta

    async def unfinished(self) -> list[int]:
        return [i for i, st in self.choices.items() if not st.finished]

    async def screen_message(self, idx: int, message: dict[str, Any]) -> dict[str, Any]:
        """Non-streamed: the same chains, fed the whole text then finished."""
        st = self._state(idx)
        msg = dict(message)
        if isinstance(msg.get("content"), str):
            msg["content"] = await st.content.feed(msg["content"]) + await st.content.finish()
        else:
            await st.content.finish()
        if msg.get("tool_calls"):
            calls = []
            for k, call in enumerate(msg["tool_calls"]):
                fn = dict(call.get("function") or {})
                if isinstance(fn.get("arguments"), str):
                    chain = self._tool_chain(st, k)
                    fn["arguments"] = await chain.feed(fn["arguments"]) + await chain.finish()
                calls.append({**call, "function": fn})
            msg["tool_calls"] = calls
        st.finished = True
        return msg


def _shell(chunk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
