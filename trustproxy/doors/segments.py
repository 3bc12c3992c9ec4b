"""Canonical reply -> ordered segments, shared by the doors whose replies are a list of blocks
(Anthropic content blocks, Responses output items).

The canonical reply is OpenAI-shaped (a chat completion, or chat chunks), already screened and
restored by ``server/response.py``. A door that answers with *blocks* needs them in order:
text first (a ``refusal`` counts as text), then each tool call, whole. In a stream, screening may release the last piece of
text only when the choice finishes (the output-PII window and the restorer hold text back), that
is after the tool-call deltas arrived; so ``Segmenter`` holds tool-call events back until the
choice finishes. The blocks of a streamed reply are then the blocks of the non-streamed one, in
the same order; tool-call arguments still arrive as the fragments the provider sent.

Only choice 0 is read: the doors ask the provider for one choice. Created per stream; not
shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStart:
    key: int          # the canonical tool call's index
    id: str
    name: str


@dataclass(frozen=True)
class ToolArgs:
    key: int
    fragment: str


@dataclass(frozen=True)
class Finish:
    reason: str       # canonical finish_reason: stop | length | tool_calls | content_filter | ...


Segment = TextDelta | ToolStart | ToolArgs | Finish


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> "Usage":
        if not isinstance(usage, dict):
            return cls()
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


@dataclass
class Segmenter:
    """Feed screened canonical chunks; get ordered segments (incremental, one per stream)."""

    usage: Usage = field(default_factory=Usage)
    finished: str | None = None
    _held: list[Segment] = field(default_factory=list)
    _started: set[int] = field(default_factory=set)

    def feed(self, chunk: dict[str, Any]) -> list[Segment]:
        out: list[Segment] = []
        if isinstance(chunk.get("usage"), dict):
            self.usage = Usage.of(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0 or self.finished is not None:
                continue
            delta = choice.get("delta") or {}
            for field_name in ("content", "refusal"):  # a refusal is the model's text too (screened alike)
                if isinstance(delta.get(field_name), str) and delta[field_name]:
                    out.append(TextDelta(delta[field_name]))
            for call in delta.get("tool_calls") or []:
                key = int(call.get("index", 0))
                fn = call.get("function") or {}
                if key not in self._started:
                    self._started.add(key)
                    self._held.append(ToolStart(key, call.get("id") or f"call_{key}", fn.get("name") or ""))
                if fn.get("arguments"):
                    self._held.append(ToolArgs(key, fn["arguments"]))
            if choice.get("finish_reason"):
                out.extend(self._release())
                self.finished = choice["finish_reason"]
                out.append(Finish(choice["finish_reason"]))
        return out

    def end(self) -> list[Segment]:
        """The stream ended: what is still held (a stream with no finish_reason)."""
        out = self._release()
        if self.finished is None:
            self.finished = "stop"
            out.append(Finish("stop"))
        return out

    def _release(self) -> list[Segment]:
        """Held tool events, grouped per call in the order the calls started (a screening tail
        can carry the last fragments of several calls at once)."""
        held, self._held = self._held, []
        order: list[int] = []
        per_call: dict[int, list[Segment]] = {}
        for seg in held:
            key = seg.key if isinstance(seg, (ToolStart, ToolArgs)) else -1
            if key not in per_call:
                order.append(key)
                per_call[key] = []
            per_call[key].append(seg)
        return [seg for key in order for seg in per_call[key]]


def message_segments(message: dict[str, Any], finish_reason: str | None) -> list[Segment]:
    """A non-streamed canonical message as the same segments a stream of it gives."""
    out: list[Segment] = []
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str) and message[key]:
            out.append(TextDelta(message[key]))
    for k, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        out.append(ToolStart(k, call.get("id") or f"call_{k}", fn.get("name") or ""))
        if fn.get("arguments"):
            out.append(ToolArgs(k, fn["arguments"]))
    out.append(Finish(finish_reason or "stop"))
    return out
