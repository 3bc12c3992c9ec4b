"""Fake OpenAI, Anthropic and Ollama servers speaking each provider's real wire format.

How litellm reaches each (``api_key`` can be any dummy string):

- ``FakeOpenAI``:    model ``openai/<name>``,      ``api_base=f"{fake.base_url}/v1"``
- ``FakeAnthropic``: model ``anthropic/<name>``,   ``api_base=fake.base_url`` (litellm appends
  ``/v1/messages``)
- ``FakeOllama``:    model ``ollama_chat/<name>``, ``api_base=fake.base_url`` (litellm appends
  ``/api/chat``)

Each class has ``litellm_params(name)`` giving exactly those kwargs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.base import (
    BODY,
    JSON,
    FakeProvider,
    Reply,
    ToolCall,
    chunks,
    content_text,
    count_tokens,
    now,
    sse,
)


def _prompt_tokens(body: Any) -> int:
    msgs = (body or {}).get("messages") or []
    system = (body or {}).get("system")
    total = count_tokens(content_text(system)) if system else 0
    return total + sum(count_tokens(content_text(m.get("content"))) for m in msgs)


def _call_id(call: ToolCall, prefix: str, i: int) -> str:
    return call.id or f"{prefix}{i:04d}"


def embedding_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-free vector for ``text``: bytes of SHA-256 scaled into [-1, 1)."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 128) / 128 for b in digest)
        counter += 1
    return out[:dims]


# ---------------------------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"), 429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None), 503: ("server_error", None),
}


class FakeOpenAI(FakeProvider):
    """``/v1/chat/completions`` (JSON and SSE), ``/v1/embeddings``, ``/v1/models``."""

    name = "openai"
    aux_paths = frozenset({"/v1/models"})
    embedding_dims = 8
    #: None (a well-behaved OpenAI) or one of the misbehaviours listed in ``base``'s docstring
    wire: str | None = None

    def litellm_params(self, model: str | None = None) -> JSON:
        return {"model": f"openai/{model or self.model}", "api_base": f"{self.base_url}/v1",
                "api_key": "sk-fake"}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self.chat), web.post("/v1/embeddings", self.embeddings),
                web.get("/v1/models", self.models)]

    def error_body(self, status: int, message: str) -> JSON:
        etype, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
        return {"error": {"message": message, "type": etype, "param": None, "code": code}}

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 1700000000, "owned_by": "fake"}]})

    async def embeddings(self, request: web.Request) -> web.Response:
        body = request[BODY] or {}
        if self.malformed_json:
            return self.malformed_body()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or self.embedding_dims)
        data = []
        for i, text in enumerate(texts):
            vec = embedding_vector(json.dumps(text) if not isinstance(text, str) else text, dims)
            emb: Any = vec
            if body.get("encoding_format") == "base64":  # the openai SDK asks for this by default
                emb = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(count_tokens(t) if isinstance(t, str) else len(t) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model", self.model),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY] or {}
        reply = self.reply_for(body)
        n = reply.n or int(body.get("n") or 1)
        if body.get("stream"):
            if self.wire == "html":
                return web.Response(status=200, text="<html><body>Welcome to nginx</body></html>",
                                    content_type="text/html")
            if self.wire in ("minimal", "minimal_no_done"):
                return await self.stream(request, list(self._minimal_events(reply)), "text/event-stream")
            if self.wire == "endless":
                return await self._endless(request)
            if self.wire != "json":
                return await self.stream(request, list(self._events(body, reply, n)), "text/event-stream")
        if self.malformed_json:
            return self.malformed_body()
        texts = reply.texts(n)
        choices = []
        for i, text in enumerate(texts):
            message: JSON = {"role": "assistant", "content": text or None, "refusal": reply.refusal}
            if reply.tool_calls:
                message["tool_calls"] = [
                    {"id": _call_id(c, "call_", j), "type": "function",
                     "function": {"name": c.name, "arguments": c.arguments}}
                    for j, c in enumerate(reply.tool_calls)]
            choices.append({"index": i, "message": message, "logprobs": self._logprobs(reply),
                            "finish_reason": reply.finish()})
        return web.json_response({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": now(),
            "model": body.get("model", self.model), "system_fingerprint": "fp_fake",
            "choices": choices, "usage": self._usage(body, texts)})

    @staticmethod
    def _logprobs(reply: Reply) -> JSON | None:
        if not reply.logprobs:
            return None
        return {"content": [{"token": t, "logprob": -0.1, "bytes": list(t.encode()), "top_logprobs": [
            {"token": t, "logprob": -0.1, "bytes": list(t.encode())}]} for t in reply.logprobs], "refusal": None}

    def _minimal_events(self, reply: Reply) -> Iterator[bytes]:
        """What a minimal OpenAI-compatible server sends: only ``choices[].delta``."""
        text = reply.texts(1)[0]
        for piece in chunks(text, self.chunk_size):
            yield sse({"choices": [{"delta": {"content": piece}}]})
        if self.wire == "minimal":
            yield b"data: [DONE]\n\n"

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await resp.write(sse({"id": "chatcmpl-endless", "object": "chat.completion.chunk", "created": now(),
                                  "model": self.model, "choices": [{"index": 0, "delta": {"content": "la "},
                                                                    "finish_reason": None}]}))
            await asyncio.sleep(self.chunk_delay or 0.01)
        await resp.write_eof()
        return resp

    def _usage(self, body: Any, texts: list[str]) -> JSON:
        prompt = _prompt_tokens(body)
        completion = sum(count_tokens(t) for t in texts)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _events(self, body: Any, reply: Reply, n: int) -> Iterator[bytes]:
        """SSE chunks; with n > 1 the choices' deltas are interleaved, as OpenAI does."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        texts = reply.texts(n)
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": now(),
                "model": body.get("model", self.model), "system_fingerprint": "fp_fake"}
        extra = {"usage": None} if include_usage else {}

        def chunk(index: int, delta: JSON, finish: str | None = None) -> bytes:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**base, "choices": [choice], **extra})

        per_choice: list[list[bytes]] = []
        for i, text in enumerate(texts):
            events = [chunk(i, {"role": "assistant", "content": "", "refusal": None})]
            if self.malformed_json:
                events.append(b"data: {\"choices\": [{\"delta\": \n\n")
            if text:
                events += [chunk(i, {"content": piece}) for piece in chunks(text, self.chunk_size)]
            if reply.refusal:
                events += [chunk(i, {"refusal": piece}) for piece in chunks(reply.refusal, self.chunk_size)]
            for j, call in enumerate(reply.tool_calls):
                events.append(chunk(i, {"tool_calls": [{"index": j, "id": _call_id(call, "call_", j),
                                                        "type": "function",
                                                        "function": {"name": call.name, "arguments": ""}}]}))
                events += [chunk(i, {"tool_calls": [{"index": j, "function": {"arguments": frag}}]})
                           for frag in chunks(call.arguments, self.chunk_size)]
            per_choice.append(events)
        longest = max(len(e) for e in per_choice)
        for step in range(longest):
            for events in per_choice:
                if step < len(events):
                    yield events[step]
        for i in range(n):
            yield chunk(i, {}, reply.finish())
        if include_usage:
            yield sse({**base, "choices": [], "usage": self._usage(body, texts)})
        yield b"data: [DONE]\n\n"


# ---------------------------------------------------------------------------------------------
# Anthropic
# ---------------------------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error", 503: "overloaded_error",
}
_ANTHROPIC_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


class FakeAnthropic(FakeProvider):
    """``/v1/messages`` (Messages API, JSON and SSE events)."""

    name = "anthropic"

    def __init__(self, *, model: str = "claude-fake") -> None:
        super().__init__(model=model)

    def litellm_params(self, model: str | None = None) -> JSON:
        return {"model": f"anthropic/{model or self.model}", "api_base": self.base_url,
                "api_key": "sk-ant-fake"}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self.messages)]

    def error_body(self, status: int, message: str) -> JSON:
        return {"type": "error",
                "error": {"type": _ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message}}

    def _fail_response(self, status: int) -> web.Response:
        resp = super()._fail_response(status)
        resp.headers["request-id"] = "req_fake"
        return resp

    def _content(self, text: str, reply: Reply) -> list[JSON]:
        blocks: list[JSON] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": _call_id(c, "toolu_fake", j), "name": c.name,
                    "input": json.loads(c.arguments or "{}")} for j, c in enumerate(reply.tool_calls)]
        return blocks

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY] or {}
        reply = self.reply_for(body)
        text = reply.texts(1)[0]
        stop = _ANTHROPIC_STOP.get(reply.finish(), reply.finish())
        usage = {"input_tokens": _prompt_tokens(body), "output_tokens": count_tokens(text)}
        message: JSON = {"id": "msg_fake", "type": "message", "role": "assistant",
                         "model": body.get("model", self.model)}
        if body.get("stream"):
            return await self.stream(request, list(self._events(message, text, reply, stop, usage)),
                                     "text/event-stream")
        if self.malformed_json:
            return self.malformed_body()
        return web.json_response({**message, "content": self._content(text, reply), "stop_reason": stop,
                                  "stop_sequence": None, "usage": usage})

    def _events(self, message: JSON, text: str, reply: Reply, stop: str, usage: JSON) -> Iterator[bytes]:
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
        yield sse({"type": "message_start", "message": start}, "message_start")
        yield sse({"type": "ping"}, "ping")
        if self.malformed_json:
            yield b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \n\n"
        index = 0
        if text:
            yield sse({"type": "content_block_start", "index": index,
                       "content_block": {"type": "text", "text": ""}}, "content_block_start")
            for piece in chunks(text, self.chunk_size):
                yield sse({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        for j, call in enumerate(reply.tool_calls):
            yield sse({"type": "content_block_start", "index": index,
                       "content_block": {"type": "tool_use", "id": _call_id(call, "toolu_fake", j),
                                         "name": call.name, "input": {}}}, "content_block_start")
            for frag in chunks(call.arguments, self.chunk_size):
                yield sse({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": frag}},
                          "content_block_delta")
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        yield sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
        yield sse({"type": "message_stop"}, "message_stop")


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------


class FakeOllama(FakeProvider):
    """``/api/chat`` (JSON and NDJSON streaming), plus ``/api/show`` and ``/api/tags``."""

    name = "ollama"
    aux_paths = frozenset({"/api/show", "/api/tags"})

    # A name in litellm's bundled cost map: for an unknown one litellm looks the model up with a
    # *sync* POST /api/show to OLLAMA_API_BASE or localhost:11434, ignoring ``api_base``.
    def __init__(self, *, model: str = "llama3.1") -> None:
        super().__init__(model=model)

    def litellm_params(self, model: str | None = None) -> JSON:
        return {"model": f"ollama_chat/{model or self.model}", "api_base": self.base_url,
                "api_key": "ollama-fake"}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/chat", self.chat), web.post("/api/show", self.show),
                web.get("/api/tags", self.tags)]

    def error_body(self, status: int, message: str) -> JSON:
        return {"error": message}

    async def show(self, request: web.Request) -> web.Response:
        return web.json_response({"template": "{{ if .Tools }}tools{{ end }}",
                                  "model_info": {"llama.context_length": 8192},
                                  "capabilities": ["completion", "tools"]})

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": self.model, "model": self.model}]})

    def _base(self, body: Any) -> JSON:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"model": body.get("model", self.model), "created_at": stamp}

    def _tool_calls(self, reply: Reply) -> list[JSON]:
        # Ollama sends arguments as a JSON object, whole, never in fragments.
        return [{"function": {"name": c.name, "arguments": json.loads(c.arguments or "{}")}}
                for c in reply.tool_calls]

    def _done(self, body: Any, text: str, reply: Reply) -> JSON:
        reason = "length" if reply.finish() == "length" else "stop"
        return {"done": True, "done_reason": reason, "total_duration": 1000, "load_duration": 10,
                "prompt_eval_count": _prompt_tokens(body), "eval_count": count_tokens(text)}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY] or {}
        reply = self.reply_for(body)
        text = reply.texts(1)[0]
        if body.get("stream", True):  # Ollama streams unless told not to
            return await self.stream(request, list(self._lines(body, text, reply)), "application/x-ndjson")
        if self.malformed_json:
            return self.malformed_body()
        message: JSON = {"role": "assistant", "content": text}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return web.json_response({**self._base(body), "message": message, **self._done(body, text, reply)})

    def _lines(self, body: Any, text: str, reply: Reply) -> Iterator[bytes]:
        def line(obj: JSON) -> bytes:
            return (json.dumps(obj, separators=(",", ":")) + "\n").encode()

        if self.malformed_json:
            yield b'{"model": "x", "message": {"role": \n'
        if text:
            for piece in chunks(text, self.chunk_size):
                yield line({**self._base(body), "message": {"role": "assistant", "content": piece},
                            "done": False})
        if reply.tool_calls:
            yield line({**self._base(body), "message": {"role": "assistant", "content": "",
                                                        "tool_calls": self._tool_calls(reply)},
                        "done": False})
        yield line({**self._base(body), "message": {"role": "assistant", "content": ""},
                    **self._done(body, text, reply)})


__all__ = ["FakeAnthropic", "FakeOllama", "FakeOpenAI", "embedding_vector"]
