"""The common part of the fake LLM providers: a real aiohttp server on 127.0.0.1, run in its
own thread with its own event loop, that records what it saw and replies from a script.

Why a thread: litellm sometimes makes *synchronous* HTTP calls (model-info lookups, e.g.
Ollama's ``/api/show``) from inside an async call. A fake living on the test's own loop would
deadlock there; in its own thread it answers whatever the caller does.

Knobs (set them on the instance before the request; they are read per request):

- ``reply_text``: fixed reply; ``None`` (default) echoes the last user message's text.
- ``script``: ``callable(request_json) -> str | Reply``; wins over ``reply_text``.
- ``chunk_size`` (chars per stream delta), ``chunk_delay`` (seconds between events).
- ``fail_status`` (+ ``fail_times``: fail only the first N requests; ``retry_after``: the
  ``Retry-After`` header sent with 429/503), ``hang_seconds``, ``break_stream_after`` (N events
  then the connection is closed without the final event), ``malformed_json``.
- OpenAI wire misbehaviours (``FakeOpenAI.wire``): ``"minimal"`` (chunks carry only
  ``choices[].delta``: no id, index or finish_reason; then ``[DONE]``), ``"minimal_no_done"``
  (the same, ended cleanly without ``[DONE]``), ``"json"`` / ``"html"`` (a streamed request
  answered 200 with a JSON completion / an HTML page), ``"endless"`` (chunks every
  ``chunk_delay`` s until the client goes away, at most 60 s).

Counters: ``requests`` (every request: method, path, query, lower-cased headers, JSON body),
``active``/``max_active`` (concurrency), ``completed``, ``cancelled`` (the client went away
before the reply was complete), ``broken`` (streams cut by ``break_stream_after``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

JSON = dict[str, Any]
BODY: web.RequestKey[Any] = web.RequestKey("fake_json_body", object)
BROKEN = web.RequestKey("fake_stream_broken", bool)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake model makes; ``arguments`` is the JSON text, as OpenAI sends it."""

    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the fake model answers. ``text`` may be a list: one text per choice."""

    text: str | Sequence[str] = ""
    tool_calls: Sequence[ToolCall] = ()
    n: int | None = None  # None: the request's ``n`` (OpenAI), else 1
    finish_reason: str | None = None  # None: "tool_calls" when there are tool calls, else "stop"
    refusal: str | None = None  # OpenAI: the model's refusal text (message.refusal / delta.refusal)
    logprobs: Sequence[str] = ()  # OpenAI: tokens reported in choices[].logprobs.content

    def texts(self, n: int) -> list[str]:
        if isinstance(self.text, str):
            return [self.text] * n
        texts = list(self.text)
        if len(texts) != n:
            raise ValueError("Reply.text list length must equal the number of choices")
        return texts

    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass
class Recorded:
    """One request as the fake provider received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    raw: bytes = field(repr=False, default=b"")

    def __getitem__(self, key: str) -> Any:  # lets tests write req["json"], req["headers"]
        return getattr(self, key)


def chunks(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of ``size`` characters (at least one piece, maybe empty)."""
    size = max(1, size)
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


class FakeProvider:
    """Base class: a real HTTP server speaking one provider's wire format."""

    #: The provider's name for its error-type strings etc.; subclasses override.
    name = "fake"
    #: Metadata endpoints (model lists, model info): recorded, but exempt from faults and counters.
    aux_paths: frozenset[str] = frozenset()

    def __init__(self, *, model: str = "fake-model") -> None:
        self.model = model
        self.reply_text: str | None = None
        self.script: Callable[[Any], str | Reply] | None = None
        self.chunk_size = 4
        self.chunk_delay = 0.0
        self.fail_status: int | None = None
        self.fail_times: int | None = None
        self.fail_message = "fake provider failure"
        self.retry_after: str | None = "7"
        self.hang_seconds = 0.0
        self.break_stream_after: int | None = None
        self.malformed_json = False
        self.requests: list[Recorded] = []
        self.active = 0
        self.max_active = 0
        self.completed = 0
        self.cancelled = 0
        self.broken = 0
        self._failed = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self.port = 0

    # ---- life cycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("fake provider not started")
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        """The provider's endpoints; subclasses override."""
        raise NotImplementedError

    def start_sync(self) -> Self:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # pragma: no cover - surfaced to start_sync
                errors.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake provider did not start")
        if errors:
            raise RuntimeError("fake provider failed to start") from errors[0]
        return self

    def stop_sync(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
        self._thread = None

    async def start(self) -> Self:
        return await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> Self:
        return self.start_sync()

    def __exit__(self, *exc: object) -> None:
        self.stop_sync()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        # real providers take request bodies of many MB (aiohttp's default cap is 1 MiB)
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        # handler_cancellation: a client that goes away cancels the handler (counted below).
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()

    # ---- helpers for tests --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests and counters (knobs stay)."""
        self.requests.clear()
        self.active = self.max_active = self.completed = self.cancelled = self.broken = 0
        self._failed = 0

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (bounded) until ``predicate()`` holds: counters move in the server thread."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition on fake provider not met")
            await asyncio.sleep(0.01)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # ---- request plumbing ---------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request[BODY] = body
        self.requests.append(Recorded(
            method=request.method, path=request.path, query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()}, json=body, raw=raw,
        ))
        if request.path in self.aux_paths:  # metadata lookups: no faults, not counted
            return await handler(request)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.hang_seconds:
                await asyncio.sleep(self.hang_seconds)
            if self.fail_status is not None and (self.fail_times is None or self._failed < self.fail_times):
                self._failed += 1
                return self._fail_response(self.fail_status)
            resp = await handler(request)
            if not request.get(BROKEN, False):
                self.completed += 1
            return resp
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    def _fail_response(self, status: int) -> web.Response:
        headers = {}
        if status in (429, 503, 529) and self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return web.json_response(self.error_body(status, self.fail_message), status=status,
                                 headers=headers)

    def error_body(self, status: int, message: str) -> JSON:
        """The provider's own error JSON; subclasses override."""
        return {"error": {"message": message}}

    def reply_for(self, body: Any) -> Reply:
        """The scripted reply for a request body."""
        if self.script is not None:
            out = self.script(body)
            return Reply(text=out) if isinstance(out, str) else out
        if self.reply_text is not None:
            return Reply(text=self.reply_text)
        return Reply(text=self.last_user_text(body))

    def last_user_text(self, body: Any) -> str:
        """The text of the last user message, as received; subclasses adapt to their shape."""
        for msg in reversed((body or {}).get("messages") or []):
            if msg.get("role") == "user":
                return content_text(msg.get("content"))
        return ""

    # ---- streaming ----------------------------------------------------------------------------

    async def stream(self, request: web.Request, events: AsyncIterator[bytes] | list[bytes],
                     content_type: str) -> web.StreamResponse:
        """Write ``events`` one by one, honouring chunk_delay / break_stream_after."""
        resp = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sent = 0
        items = events if isinstance(events, list) else [e async for e in events]
        for event in items:
            if self.break_stream_after is not None and sent >= self.break_stream_after:
                await self._break(request)
                return resp
            await resp.write(event)
            sent += 1
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await resp.write_eof()
        return resp

    async def _break(self, request: web.Request) -> None:
        """Close the connection without the rest of the stream (no final chunk, no [DONE])."""
        self.broken += 1
        request[BROKEN] = True
        transport = request.transport
        if transport is not None:
            await asyncio.sleep(0.05)  # let what was written reach the client first
            transport.close()

    def malformed_body(self) -> web.Response:
        return web.Response(status=200, text='{"id": "broken", "choices": [{"mess',
                            content_type="application/json")


def content_text(content: Any) -> str:
    """Text of an OpenAI / Anthropic ``content`` (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or []:
        if isinstance(part, dict):
            if part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif part.get("type") == "tool_result":
                parts.append(content_text(part.get("content")))
    return "".join(parts)


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event (``data`` JSON-encoded unless it is already a string)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def now() -> int:
    return int(time.time())

