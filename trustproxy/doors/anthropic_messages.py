"""The Anthropic Messages door: ``POST /v1/messages`` (and ``/v1/messages/count_tokens``).

A codec between Anthropic's wire format and the canonical request (a chat-completions body) /
canonical reply (chat completion or chunks, screened and restored by ``server/response.py``):

- ``MessagesRequest``: the strict request model; every string-bearing field is declared a text
  slot (``Text(kind)``) or opaque (``Opaque(reason)``); ``to_canonical()`` gives the chat body
  the guards mask and litellm sends to any route (to Anthropic routes litellm translates it
  back to the Messages API).
- ``encode_message()``: a canonical completion -> an Anthropic ``message``.
- ``StreamEncoder``: canonical chunks -> ``message_start``, ``content_block_start``,
  ``content_block_delta`` (``text_delta``, ``input_json_delta``), ``content_block_stop``,
  ``message_delta``, ``message_stop``; errors as ``event: error``.
- ``error_body()``: ``{"type": "error", "error": {"type": ..., "message": ...}}``.

Refused (400, Anthropic-shaped), because the proxy cannot screen them: ``image``, ``document``,
``search_result`` and other non-text blocks; server tools (``web_search``, ``code_execution``,
``bash``/``text_editor`` typed tools run by the provider, MCP servers, ``container``).
Accepted and dropped, never forwarded: ``thinking`` (the reply carries no thinking blocks:
their text could not be screened and their signatures not be checked), ``thinking`` /
``redacted_thinking`` blocks in the history, ``cache_control``, ``citations``,
``metadata.user_id``, ``service_tier``, ``top_k`` (the canonical chat request has no such field),
unknown fields.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from trustproxy.doors.codec import typed_event as sse
from trustproxy.doors.fields import Kind, Opaque, Text
from trustproxy.doors.segments import Finish, Segment, Segmenter, TextDelta, ToolArgs, ToolStart, Usage, \
    message_segments
from trustproxy.doors.common import first_error
from trustproxy.errors import InvalidRequest, TrustProxyError, UpstreamError

Prose = Annotated[str, Text(Kind.PROSE)]
# tool-use ids and tool names are code identifiers the model echoes back exactly: screened as
# identifiers (the canonical chat door's kind), restored by exact match in the reply
Identifier = Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(min_length=1, max_length=256)]
ToolName = Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(min_length=1, max_length=256)]
Dropped = Annotated[str, Opaque("dropped: never forwarded")]


class _Model(BaseModel):
    # strict types ("stream": "yes" is a 400), no NaN/Infinity; unknown keys are dropped
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class CacheControl(_Model):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(_Model):
    type: Literal["text"]
    text: Prose
    cache_control: CacheControl | None = None  # dropped


class ToolUseBlock(_Model):
    type: Literal["tool_use"]
    id: Identifier
    name: ToolName
    input: Annotated[dict[str, Any], Text(Kind.JSON_OBJECT)]
    cache_control: CacheControl | None = None


class ToolResultBlock(_Model):
    type: Literal["tool_result"]
    tool_use_id: Identifier
    content: Prose | list[TextBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlock(_Model):
    type: Literal["thinking"]
    thinking: Dropped
    signature: Dropped | None = None


class RedactedThinkingBlock(_Model):
    type: Literal["redacted_thinking"]
    data: Dropped


UserBlock = Annotated[TextBlock | ToolResultBlock, Field(discriminator="type")]
AssistantBlock = Annotated[TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock,
                           Field(discriminator="type")]


class UserMessage(_Model):
    role: Literal["user"]
    content: Prose | list[UserBlock]


class AssistantMessage(_Model):
    role: Literal["assistant"]
    content: Prose | list[AssistantBlock]


Message = Annotated[UserMessage | AssistantMessage, Field(discriminator="role")]


class Tool(_Model):
    type: Literal["custom"] | None = None  # typed server tools (web_search_..., bash_...) are refused
    name: ToolName
    description: Prose | None = None
    input_schema: Annotated[dict[str, Any], Text(Kind.JSON_SCHEMA)]
    cache_control: CacheControl | None = None


class ToolChoice(_Model):
    type: Literal["auto", "any", "none", "tool"]
    name: ToolName | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Model):
    """Dropped (see the module docstring): any type is accepted, nothing is forwarded."""

    type: Dropped
    budget_tokens: int | None = Field(None, ge=0)


class Metadata(_Model):
    user_id: Dropped | None = None


class CountTokensRequest(_Model):
    model: Annotated[str, Opaque("route name the proxy routes on"), StringConstraints(min_length=1, max_length=128)]
    messages: list[Message] = Field(min_length=1, max_length=10_000)
    system: Prose | list[TextBlock] | None = None
    tools: list[Tool] | None = Field(None, max_length=512)
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None

    def to_canonical(self) -> dict[str, Any]:
        """The chat-completions body: system first, then the turns; tool results become ``tool``
        messages right after the assistant turn that called them (chat order)."""
        messages: list[dict[str, Any]] = []
        if self.system is not None:
            system: Any = self.system if isinstance(self.system, str) else \
                [{"type": "text", "text": b.text} for b in self.system]
            if system:
                messages.append({"role": "system", "content": system})
        for m in self.messages:
            messages.extend(_canonical_turn(m))
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": False}
        if self.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, **({"description": t.description} if t.description is not None else {}),
                "parameters": t.input_schema}} for t in self.tools]
        if self.tool_choice is not None:
            tc = self.tool_choice
            if tc.type == "tool":
                body["tool_choice"] = {"type": "function", "function": {"name": tc.name}}
            else:
                body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[tc.type]
            if tc.disable_parallel_tool_use and self.tools:
                body["parallel_tool_calls"] = False
        return body


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1, le=1_000_000)
    stream: bool = False
    stop_sequences: list[Prose] | None = Field(None, max_length=16)
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: Metadata | None = None  # user_id dropped: never forwarded
    service_tier: Dropped | None = None

    def to_canonical(self) -> dict[str, Any]:
        body = super().to_canonical()
        body["max_tokens"] = self.max_tokens
        body["stream"] = self.stream
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if self.stop_sequences:
            body["stop"] = list(self.stop_sequences)
        for name in ("temperature", "top_p"):  # top_k: not in the canonical chat model, dropped
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


def _canonical_turn(m: UserMessage | AssistantMessage) -> list[dict[str, Any]]:
    if isinstance(m.content, str):
        return [{"role": m.role, "content": m.content}]
    if isinstance(m, AssistantMessage):
        texts = [{"type": "text", "text": b.text} for b in m.content if isinstance(b, TextBlock)]
        calls = [{"id": b.id, "type": "function",
                  "function": {"name": b.name, "arguments": json.dumps(b.input, ensure_ascii=False)}}
                 for b in m.content if isinstance(b, ToolUseBlock)]
        msg: dict[str, Any] = {"role": "assistant", "content": texts or None}
        if calls:
            msg["tool_calls"] = calls
        return [msg] if texts or calls else []
    out: list[dict[str, Any]] = []
    for b in m.content:
        if isinstance(b, ToolResultBlock):
            content = b.content if isinstance(b.content, str) else \
                [{"type": "text", "text": t.text} for t in b.content or []]
            out.append({"role": "tool", "tool_call_id": b.tool_use_id, "content": content or ""})
    texts = [{"type": "text", "text": b.text} for b in m.content if isinstance(b, TextBlock)]
    if texts:
        out.append({"role": "user", "content": texts})
    return out


# -- refusals and parsing -------------------------------------------------------------------

_NON_TEXT_BLOCKS = ("image", "document", "search_result", "server_tool_use", "web_search_tool_result",
                    "container_upload", "mcp_tool_use", "mcp_tool_result", "code_execution_tool_result")
SERVER_STATE_FIELDS = ("container", "mcp_servers")
_STEERING = ("api_base", "base_url", "api_key", "extra_headers", "headers", "custom_llm_provider",
             "litellm_params", "mock_response", "extra_body", "fallbacks", "num_retries", "timeout")


def parse(body: Any, model: type[CountTokensRequest] = MessagesRequest) -> CountTokensRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for key in _STEERING:
        if key in body:
            raise InvalidRequest(f"Field '{key}' is not accepted: the proxy decides where requests go.",
                                 param=key, code="forbidden_field")
    for key in SERVER_STATE_FIELDS:
        if body.get(key):
            raise InvalidRequest(f"Field '{key}' is refused: it runs on the provider, where the proxy cannot "
                                 "screen it.", param=key, code="unsupported_server_state")
    for i, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type") not in (None, "custom"):
            raise InvalidRequest(f"tools[{i}]: server tools run on the provider, where the proxy cannot screen "
                                 "what they fetch or run; only client tools (name, input_schema) are accepted.",
                                 param=f"tools[{i}]", code="unsupported_tool")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _first_error(exc) from None


def _first_error(exc: ValidationError) -> InvalidRequest:
    # the shared reader's rules (locations without caller keys, value-free messages)
    return first_error(exc, "only text, tool_use and tool_result blocks can be screened; image, document and other blocks are refused")


# -- replies ----------------------------------------------------------------------------------

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
         "content_filter": "refusal"}


def stop_reason(finish: str | None) -> str:
    return _STOP.get(finish or "stop", "end_turn")


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


class MessageUsage(_Model):
    input_tokens: int
    output_tokens: int


class ReplyText(_Model):
    type: Literal["text"]
    text: Prose


class ReplyToolUse(_Model):
    type: Literal["tool_use"]
    id: Identifier
    name: ToolName
    input: Annotated[dict[str, Any], Text(Kind.JSON_OBJECT)]


class MessageResponse(_Model):
    """The non-streamed reply (and ``message_start``'s message, with empty content)."""

    id: Annotated[str, Opaque("id minted by the proxy")]
    type: Literal["message"]
    role: Literal["assistant"]
    model: Annotated[str, Opaque("the route name the client asked for")]
    content: list[Annotated[ReplyText | ReplyToolUse, Field(discriminator="type")]]
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"] | None
    stop_sequence: Prose | None
    usage: MessageUsage


class TextDeltaBody(_Model):
    type: Literal["text_delta"]
    text: Prose


class InputJsonDelta(_Model):
    type: Literal["input_json_delta"]
    partial_json: Annotated[str, Text(Kind.JSON_STRING)]


class MessageStart(_Model):
    type: Literal["message_start"]
    message: MessageResponse


class BlockStart(_Model):
    type: Literal["content_block_start"]
    index: int
    content_block: Annotated[ReplyText | ReplyToolUse, Field(discriminator="type")]


class BlockDelta(_Model):
    type: Literal["content_block_delta"]
    index: int
    delta: Annotated[TextDeltaBody | InputJsonDelta, Field(discriminator="type")]


class BlockStop(_Model):
    type: Literal["content_block_stop"]
    index: int


class MessageDeltaBody(_Model):
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"] | None
    stop_sequence: Prose | None


class MessageDelta(_Model):
    type: Literal["message_delta"]
    delta: MessageDeltaBody
    usage: MessageUsage


class MessageStop(_Model):
    type: Literal["message_stop"]


class Ping(_Model):
    type: Literal["ping"]


class ErrorDetail(_Model):
    type: Literal["invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                  "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error"]
    message: Annotated[str, Opaque("written by the proxy, never user or upstream text")]


class ErrorEvent(_Model):
    type: Literal["error"]
    error: ErrorDetail


StreamEvent = Annotated[MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | Ping
                        | ErrorEvent, Field(discriminator="type")]


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamError("The provider returned tool-call arguments that are not a JSON object.", status=502,
                            code="upstream_bad_tool_call")
    return value


def _blocks(segments: list[Segment]) -> tuple[list[dict[str, Any]], str | None]:
    """Fold segments into content blocks (the non-streamed reply; also what a stream adds up to)."""
    blocks: list[dict[str, Any]] = []
    args: dict[int, list[str]] = {}
    tool_block: dict[int, dict[str, Any]] = {}
    finish = None
    for seg in segments:
        if isinstance(seg, TextDelta):
            if not blocks or blocks[-1]["type"] != "text":
                blocks.append({"type": "text", "text": ""})
            blocks[-1]["text"] += seg.text
        elif isinstance(seg, ToolStart):
            tool_block[seg.key] = {"type": "tool_use", "id": seg.id, "name": seg.name, "input": {}}
            blocks.append(tool_block[seg.key])
            args[seg.key] = []
        elif isinstance(seg, ToolArgs):
            args.setdefault(seg.key, []).append(seg.fragment)
        elif isinstance(seg, Finish):
            finish = seg.reason
    for key, block in tool_block.items():
        block["input"] = _tool_input("".join(args.get(key, [])))
    return blocks, finish


def encode_message(resp: dict[str, Any], model: str) -> dict[str, Any]:
    """A screened canonical chat completion -> an Anthropic ``message``."""
    choice = (resp.get("choices") or [{}])[0]
    blocks, finish = _blocks(message_segments(choice.get("message") or {}, choice.get("finish_reason")))
    usage = Usage.of(resp.get("usage"))
    return {"id": new_message_id(), "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop_reason(finish), "stop_sequence": None,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}


class StreamEncoder:
    """Canonical chunks -> Anthropic stream events. One per stream; not shared."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.segments = Segmenter()
        self._started = False
        self._index = -1       # the open block's index (-1: none)
        self._open: str | None = None
        self._tool_index: dict[int, int] = {}

    def _start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        return [{"type": "message_start", "message": {
            "id": new_message_id(), "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}},
            {"type": "ping"}]

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._index}]

    def _events(self, segments: list[Segment]) -> list[dict[str, Any]]:
        out = self._start()
        for seg in segments:
            if isinstance(seg, TextDelta):
                if self._open != "text":
                    out += self._close()
                    self._index += 1
                    self._open = "text"
                    out.append({"type": "content_block_start", "index": self._index,
                                "content_block": {"type": "text", "text": ""}})
                out.append({"type": "content_block_delta", "index": self._index,
                            "delta": {"type": "text_delta", "text": seg.text}})
            elif isinstance(seg, ToolStart):
                out += self._close()
                self._index += 1
                self._open = "tool"
                self._tool_index[seg.key] = self._index
                out.append({"type": "content_block_start", "index": self._index,
                            "content_block": {"type": "tool_use", "id": seg.id, "name": seg.name, "input": {}}})
            elif isinstance(seg, ToolArgs):
                out.append({"type": "content_block_delta", "index": self._tool_index.get(seg.key, self._index),
                            "delta": {"type": "input_json_delta", "partial_json": seg.fragment}})
            elif isinstance(seg, Finish):
                out += self._close()
        return out

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return b"".join(sse(e) for e in self._events(self.segments.feed(chunk)))

    def end(self) -> bytes:
        events = self._events(self.segments.end())
        u = self.segments.usage
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": stop_reason(self.segments.finished), "stop_sequence": None},
                       "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}})
        events.append({"type": "message_stop"})
        return b"".join(sse(e) for e in events)

    def error(self, err: TrustProxyError) -> bytes:
        return b"".join(sse(e) for e in self._start()) + sse(error_body(err))


# -- errors -----------------------------------------------------------------------------------

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
                429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error"}


def error_body(err: TrustProxyError) -> dict[str, Any]:
    """Anthropic's error shape; the message is the proxy's own (never user or upstream text)."""
    etype = _ERROR_TYPES.get(err.status, "api_error" if err.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": etype, "message": err.message}}


class MessagesCodec:
    """The reply codec for one request (``doors.codec.ReplyCodec``)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, resp: dict[str, Any]) -> dict[str, Any]:
        return encode_message(resp, self.model)

    def encoder(self) -> StreamEncoder:
        return StreamEncoder(self.model)
