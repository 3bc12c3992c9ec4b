"""Guard protocols shared by the request path and the response path.

A response guard hands out a fresh per-choice ``StreamFilter``; a non-streamed reply is
``feed(whole)`` then ``finish()``: one code path for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    """What a guard did, for the audit trail. Never carries user text."""

    guard: str
    action: str
    entity_type: str | None = None
    category: str | None = None
    score: float | None = None
    reason: str | None = None


class StreamFilter(Protocol):
    """An incremental text transformer for one stream of text (one choice's content, or one
    tool call's arguments). ``feed`` may hold text back; ``finish`` releases the rest at end of
    stream. Either may raise ``PolicyBlocked`` (content must stop) or ``GuardFailed``."""

    async def feed(self, text: str) -> str: ...

    async def finish(self) -> str: ...


@dataclass
class FilterChain:
    """Runs filters in order: the output of one is the input of the next."""

    filters: list[StreamFilter] = field(default_factory=list)

    async def feed(self, text: str) -> str:
        for f in self.filters:
            text = await f.feed(text)
        return text

    async def whole(self, text: str) -> str:
        """The complete text at once (a non-streamed reply): each filter sees all of it and is
        finished. Same result as ``feed`` + ``finish`` (the filters do not depend on chunking);
        a filter with a ``whole`` method of its own may do it in one pass."""
        for f in self.filters:
            one = getattr(f, "whole", None)
            text = await one(text) if one is not None else await f.feed(text) + await f.finish()
        return text

    async def finish(self) -> str:
        out = ""
        for i, f in enumerate(self.filters):
            # what earlier filters release at the end still passes through later ones
            tail = await f.finish()
            for g in self.filters[i + 1:]:
                tail = await g.feed(tail) if tail else tail
            out += tail
        return out
