"""What a door hands the shared request loop (``server/routes.py``) to answer in its own format.

The loop screens the canonical reply (``server/response.py``) and gives the door the screened
result: a whole chat completion (``ReplyCodec.complete``) or, streamed, each screened chunk
(``StreamEncoder.chunk``), the end of the stream (``end``) or an error that ends it (``error``).
An encoder is created per stream and holds that stream's state only.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from trustproxy.errors import TrustProxyError


class StreamEncoder(Protocol):
    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, err: TrustProxyError) -> bytes: ...


class ReplyCodec(Protocol):
    def complete(self, resp: dict[str, Any]) -> dict[str, Any]: ...

    def encoder(self) -> StreamEncoder: ...


def typed_event(event: dict[str, Any]) -> bytes:
    """One SSE event named by its ``type`` (Anthropic and Responses streams: ``event:`` + ``data:``)."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
