"""Upstream wire-format guards for OpenAI-compatible streams, at the HTTP layer under litellm.

litellm's OpenAI-compatible stream handler (``CustomStreamWrapper``) cannot tell a minimal
server's complete stream (chunks with only ``choices[].delta``, then ``data: [DONE]``, never a
``finish_reason``) from a cut one: both end in "Stream ended before a finish_reason was
received". It also turns a plain JSON (or HTML) 200 answer to a streamed request into an empty,
successful stream. So the proxy watches the bytes itself, on the httpx transport litellm's
OpenAI client uses (``litellm.aclient_session``):

- ``DoneDecoder``: an incremental SSE line decoder (any split point, ``\\n``/``\\r\\n``/``\\r``)
  that notes a ``data: [DONE]`` line: a stream that ended with it is complete.
- a JSON chat completion answering a streamed request is converted into the equivalent SSE
  chunks (``completion_to_sse``); any other non-SSE 200 (HTML, an error object) is recorded as
  ``problem`` and the request fails with a clear error, never an empty stream.
- the raw size of a stream is counted; past the route's maximum the stream is cut.

The per-call state (``StreamWatch``) is handed to the transport through a context variable set
by ``providers.Provider`` around one streamed call: nothing per-request lives on the shared
transport. No litellm import here.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

MAX_JSON_ANSWER_BYTES = 16 * 1024 * 1024


@dataclass
class StreamWatch:
    """What the transport saw of one streamed upstream call."""

    max_bytes: int
    done: bool = False           # a ``data: [DONE]`` line arrived
    converted: bool = False      # a JSON completion was converted into SSE chunks
    problem: str | None = None   # "not_a_stream" | "too_large"
    bytes: int = 0


CURRENT_WATCH: contextvars.ContextVar[StreamWatch | None] = contextvars.ContextVar("trustproxy_stream_watch",
                                                                                   default=None)


class StreamTooLarge(httpx.ReadError):
    """Raised inside the response stream when it passes the route's maximum size."""


class DoneDecoder:
    """Incremental: ``feed(bytes)`` any pieces; ``done`` once a ``data: [DONE]`` line was seen.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (the SSE rule); a line still open at the end of the
    stream counts too (``finish()``). Only the current line is buffered, bounded to a few bytes:
    a [DONE] line is short, so longer lines are not kept.
    """

    _MAX_LINE = 64

    def __init__(self) -> None:
        self.done = False
        self._line = b""
        self._long = False
        self._cr = False  # the previous byte was \r (a following \n belongs to it)

    def feed(self, data: bytes) -> None:
        start = 0
        n = len(data)
        i = 0
        while i < n:
            b = data[i]
            if b == 0x0A and self._cr:  # \r\n: the line already ended at \r
                self._cr = False
                i += 1
                start = i
                continue
            self._cr = False
            if b in (0x0A, 0x0D):
                self._add(data[start:i])
                self._end_line()
                self._cr = b == 0x0D
                start = i + 1
            i += 1
        self._add(data[start:n])

    def finish(self) -> None:
        self._end_line()

    def _add(self, piece: bytes) -> None:
        if self._long or not piece:
            return
        if len(self._line) + len(piece) > self._MAX_LINE:
            self._long = True
            self._line = b""
        else:
            self._line += piece

    def _end_line(self) -> None:
        if not self._long and self._line.strip() in (b"data: [DONE]", b"data:[DONE]"):
            self.done = True
        self._line = b""
        self._long = False


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def completion_to_sse(doc: Any) -> bytes | None:
    """A chat completion (JSON) as the SSE chunks a stream would have carried; None if ``doc``
    is not a chat completion (an error object, anything else)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list) or "error" in doc:
        return None
    base = {k: doc[k] for k in ("id", "created", "model", "system_fingerprint") if doc.get(k) is not None}
    base["object"] = "chat.completion.chunk"
    out = []
    for i, ch in enumerate(doc["choices"]):
        if not isinstance(ch, dict) or not isinstance(ch.get("message"), dict):
            return None
        idx = ch.get("index") if isinstance(ch.get("index"), int) else i
        msg = ch["message"]
        delta: dict[str, Any] = {"role": "assistant"}
        for key in ("content", "refusal"):
            if isinstance(msg.get(key), str):
                delta[key] = msg[key]
        calls = [{"index": k, **{f: c[f] for f in ("id", "type", "function") if f in c}}
                 for k, c in enumerate(msg.get("tool_calls") or []) if isinstance(c, dict)]
        if calls:
            delta["tool_calls"] = calls
        if isinstance(msg.get("function_call"), dict):
            delta["function_call"] = msg["function_call"]
        out.append(_sse({**base, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]}))
        out.append(_sse({**base, "choices": [{"index": idx, "delta": {},
                                               "finish_reason": ch.get("finish_reason") or "stop"}]}))
    if isinstance(doc.get("usage"), dict):
        out.append(_sse({**base, "choices": [], "usage": doc["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


class _WatchedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, watch: StreamWatch) -> None:
        self._inner = inner
        self._watch = watch
        self._decoder = DoneDecoder()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            self._watch.bytes += len(piece)
            if self._watch.bytes > self._watch.max_bytes:
                self._watch.problem = "too_large"
                raise StreamTooLarge("the upstream stream passed the route's maximum size")
            self._decoder.feed(piece)
            if self._decoder.done:
                self._watch.done = True
            yield piece
        self._decoder.finish()
        self._watch.done = self._decoder.done

    async def aclose(self) -> None:
        await self._inner.aclose()


class WatchingTransport(httpx.AsyncBaseTransport):
    """An httpx transport (one connection pool per event loop: a pool cannot be shared across
    loops) that acts only inside a streamed call (``CURRENT_WATCH`` set)."""

    def __init__(self) -> None:
        self._inner: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = \
            weakref.WeakKeyDictionary()

    def _transport(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        inner = self._inner.get(loop)
        if inner is None:
            inner = self._inner[loop] = httpx.AsyncHTTPTransport()
        return inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await self._transport().handle_async_request(request)
        watch = CURRENT_WATCH.get()
        # only OpenAI-style chat streams: other wire formats sharing this client pass untouched
        if watch is None or resp.status_code != 200 or not request.url.path.endswith("/chat/completions"):
            return resp
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream":
            resp.stream = _WatchedStream(resp.stream, watch)  # type: ignore[arg-type]
            return resp
        body = b""
        try:
            async for piece in resp.stream:  # type: ignore[union-attr]
                body += piece
                if len(body) > min(watch.max_bytes, MAX_JSON_ANSWER_BYTES):
                    break
        finally:
            await resp.aclose()
        sse = None
        if ctype.endswith("json") and len(body) <= min(watch.max_bytes, MAX_JSON_ANSWER_BYTES):
            try:
                sse = completion_to_sse(json.loads(body))
            except ValueError:
                sse = None
        if sse is None:
            watch.problem = "not_a_stream"
            sse = b""
        else:
            watch.converted = watch.done = True
        headers = [(k, v) for k, v in resp.headers.items()
                   if k.lower() not in ("content-type", "content-length", "content-encoding", "transfer-encoding")]
        headers.append(("content-type", "text/event-stream"))
        return httpx.Response(200, headers=headers, content=sse, request=request,
                              extensions={k: v for k, v in resp.extensions.items() if k == "http_version"})

    async def aclose(self) -> None:
        inner = self._inner.pop(asyncio.get_running_loop(), None)
        if inner is not None:
            await inner.aclose()
