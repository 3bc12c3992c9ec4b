"""The OpenAI Responses door: ``POST /v1/responses``, bridged through chat completions.

Why a bridge for every route (rather than litellm's own Responses support): one screened
canonical path. The guards, the Vault, the output screen and the audit event all work on the
canonical chat request and reply; a second upstream format would need a second, separately
proven set of slots, and the Responses API's server-side state (stored responses,
conversations, hosted tools) could not be screened anyway.

- ``ResponsesRequest``: the strict request model (every string-bearing field declared);
  ``to_canonical()`` -> chat body. ``input`` is a string or a list of items: messages
  (``input_text`` / ``output_text`` / ``refusal`` parts), ``function_call``,
  ``function_call_output``, ``reasoning`` (dropped: its summary and encrypted content are never
  forwarded); ``instructions`` -> a system message; function ``tools``; ``tool_choice``;
  ``text.format`` (``json_schema`` -> ``response_format``); ``max_output_tokens``;
  ``reasoning.effort``.
- ``encode_response()``: a screened canonical completion -> a ``response`` object (a model's
  ``refusal`` is sent as its text, the same in streamed and whole replies).
- ``StreamEncoder``: canonical chunks -> ``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta``
  / ``.done``, ``response.content_part.done``, ``response.function_call_arguments.delta`` /
  ``.done``, ``response.output_item.done``, ``response.completed`` (or ``response.incomplete``),
  each with a ``sequence_number``; an error ends the stream with ``error`` then
  ``response.failed``.

Refused with 400 ``unsupported_server_state``: ``previous_response_id``, ``conversation``,
``background``, ``prompt`` (stored templates), ``item_reference`` items, and ``store: true``
unless the route sets ``allow_server_state`` (then ``store`` is forwarded: the provider keeps
the *masked* exchange). Hosted tools (web/file search, code interpreter, computer use, MCP,
image generation) and non-text parts are refused: they fetch or run on the provider, where the
proxy cannot screen them.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, ValidationError

from trustproxy.doors.codec import typed_event as sse
from trustproxy.doors.fields import Kind, Opaque, Text
from trustproxy.doors.segments import Finish, Segment, Segmenter, TextDelta, ToolArgs, ToolStart, Usage, \
    message_segments
from trustproxy.doors.common import first_error
from trustproxy.errors import InvalidRequest, TrustProxyError

Prose = Annotated[str, Text(Kind.PROSE)]
JsonString = Annotated[str, Text(Kind.JSON_STRING)]
# call ids and function names are code identifiers the model echoes back exactly: screened as
# identifiers (the canonical chat door's kind), restored by exact match in the reply
Identifier = Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(min_length=1, max_length=256)]
ToolName = Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(min_length=1, max_length=256)]
# ids of input items and of the proxy's own output items: never forwarded / minted here
ItemId = Annotated[str, Opaque("item id: not forwarded (input) or minted by the proxy (output)"),
                   StringConstraints(max_length=256)]
Dropped = Annotated[str, Opaque("dropped: never forwarded")]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class InputText(_Model):
    type: Literal["input_text"]
    text: Prose


class OutputText(_Model):
    type: Literal["output_text"]
    text: Prose
    annotations: Annotated[list[dict[str, Any]], Opaque("dropped: never forwarded")] | None = None


class RefusalPart(_Model):
    type: Literal["refusal"]
    refusal: Prose


Part = Annotated[InputText | OutputText | RefusalPart, Field(discriminator="type")]


class MessageItem(_Model):
    type: Literal["message"] | None = None
    id: ItemId | None = None
    status: ItemStatus | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: Prose | list[Part]


class FunctionCallItem(_Model):
    type: Literal["function_call"]
    id: ItemId | None = None
    status: ItemStatus | None = None
    call_id: Identifier
    name: ToolName
    arguments: JsonString


class FunctionCallOutputItem(_Model):
    type: Literal["function_call_output"]
    id: ItemId | None = None
    status: ItemStatus | None = None
    call_id: Identifier
    output: Prose | list[InputText]


class SummaryText(_Model):
    type: Literal["summary_text"]
    text: Dropped


class ReasoningItem(_Model):
    type: Literal["reasoning"]
    id: ItemId | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    encrypted_content: Dropped | None = None


def _item_type(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("type", "message")
    return getattr(value, "type", None) or "message"


Item = Annotated[Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
                 | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
                 | Annotated[ReasoningItem, Tag("reasoning")], Discriminator(_item_type)]


class FunctionTool(_Model):
    type: Literal["function"]
    name: ToolName
    description: Prose | None = None
    parameters: Annotated[dict[str, Any], Text(Kind.JSON_SCHEMA)] | None = None
    strict: bool | None = None


class FunctionChoice(_Model):
    type: Literal["function"]
    name: ToolName


class FormatText(_Model):
    type: Literal["text"]


class FormatJsonObject(_Model):
    type: Literal["json_object"]


class FormatJsonSchema(_Model):
    type: Literal["json_schema"]
    name: ToolName
    schema_: Annotated[dict[str, Any], Text(Kind.JSON_SCHEMA)] = Field(alias="schema")
    description: Prose | None = None
    strict: bool | None = None


class TextConfig(_Model):
    format: Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")] | None = None
    verbosity: Dropped | None = None


class Reasoning(_Model):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Dropped | None = None  # no reasoning output


class ResponsesRequest(_Model):
    model: Annotated[str, Opaque("route name the proxy routes on"), StringConstraints(min_length=1, max_length=128)]
    input: Prose | list[Item]
    instructions: Prose | None = None
    tools: list[FunctionTool] | None = Field(None, max_length=512)
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool = False
    store: bool | None = None
    include: list[Literal["reasoning.encrypted_content"]] | None = None  # no reasoning output: nothing to add
    truncation: Dropped | None = None
    metadata: Annotated[dict[str, Any], Opaque("dropped: never forwarded")] | None = None
    user: Dropped | None = None
    safety_identifier: Dropped | None = None
    prompt_cache_key: Dropped | None = None
    service_tier: Dropped | None = None

    def to_canonical(self, *, forward_store: bool = False) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            messages.append({"role": "user", "content": self.input})
        else:
            for item in self.input:
                _append_item(messages, item)
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": self.stream}
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if self.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, **({"description": t.description} if t.description is not None else {}),
                "parameters": t.parameters if t.parameters is not None else {"type": "object", "properties": {}},
                **({"strict": t.strict} if t.strict is not None else {})}} for t in self.tools]
        if isinstance(self.tool_choice, FunctionChoice):
            body["tool_choice"] = {"type": "function", "function": {"name": self.tool_choice.name}}
        elif self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        if self.parallel_tool_calls is not None and self.tools:
            body["parallel_tool_calls"] = self.parallel_tool_calls
        fmt = self.text.format if self.text else None
        if isinstance(fmt, FormatJsonObject):
            body["response_format"] = {"type": "json_object"}
        elif isinstance(fmt, FormatJsonSchema):
            schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
            if fmt.description is not None:
                schema["description"] = fmt.description
            if fmt.strict is not None:
                schema["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        if self.reasoning and self.reasoning.effort:
            body["reasoning_effort"] = self.reasoning.effort
        if self.max_output_tokens is not None:
            body["max_tokens"] = self.max_output_tokens
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if forward_store and self.store:
            body["store"] = True
        return body


def _part_text(part: InputText | OutputText | RefusalPart) -> str:
    return part.refusal if isinstance(part, RefusalPart) else part.text


def _append_item(messages: list[dict[str, Any]], item: Any) -> None:
    if isinstance(item, MessageItem):
        if isinstance(item.content, str):
            messages.append({"role": item.role, "content": item.content})
        elif item.role == "assistant":
            # one string (some providers refuse parts in assistant turns); parts on their own lines,
            # so the detector never sees two values run together
            messages.append({"role": "assistant", "content": "\n".join(_part_text(p) for p in item.content)})
        else:
            messages.append({"role": item.role, "content": [{"type": "text", "text": _part_text(p)}
                                                            for p in item.content]})
    elif isinstance(item, FunctionCallItem):
        call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)  # one assistant turn: its text and its calls
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif isinstance(item, FunctionCallOutputItem):
        output = item.output if isinstance(item.output, str) else \
            [{"type": "text", "text": p.text} for p in item.output]
        messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    # ReasoningItem: dropped (never forwarded)


# -- refusals and parsing -------------------------------------------------------------------

SERVER_STATE_FIELDS = ("previous_response_id", "conversation", "background", "prompt")
_STEERING = ("api_base", "base_url", "api_key", "extra_headers", "headers", "custom_llm_provider",
             "litellm_params", "mock_response", "extra_body", "fallbacks", "num_retries", "timeout")
_KNOWN_ITEMS = ("message", "function_call", "function_call_output", "reasoning")


def _state_error(what: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{what} is refused: it lives on the provider, where the proxy cannot screen it. "
                          "Send the whole conversation as input items instead.", param=param,
                          code="unsupported_server_state")


def parse(body: Any, *, allow_server_state: bool = False) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for key in _STEERING:
        if key in body:
            raise InvalidRequest(f"Field '{key}' is not accepted: the proxy decides where requests go.",
                                 param=key, code="forbidden_field")
    for key in SERVER_STATE_FIELDS:
        if body.get(key):
            raise _state_error(f"Field '{key}'", key)
    if body.get("store") is True and not allow_server_state:
        raise _state_error("'store: true' (the provider keeping the response)", "store")
    items = body.get("input")
    for i, item in enumerate(items if isinstance(items, list) else []):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "item_reference":
            raise _state_error(f"input[{i}]: an item_reference", f"input[{i}]")
        if isinstance(kind, str) and kind not in _KNOWN_ITEMS:
            raise InvalidRequest(f"input[{i}]: items of this type (hosted tool calls, files, images) cannot be "
                                 "screened and are refused.", param=f"input[{i}]", code="unsupported_item")
    for i, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type") != "function":
            raise InvalidRequest(f"tools[{i}]: hosted tools (web/file search, code interpreter, computer use, MCP, "
                                 "image generation) fetch or run on the provider, where the proxy cannot screen "
                                 "them; only function tools are accepted.", param=f"tools[{i}]",
                                 code="unsupported_tool")
    try:
        return ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        raise _first_error(exc) from None


def _first_error(exc: ValidationError) -> InvalidRequest:
    # the shared reader's rules (locations without caller keys, value-free messages)
    return first_error(exc, "only text parts (input_text, output_text, refusal) can be screened; image, audio and file parts are refused")


# -- reply models (declared: the conformance test walks them) ---------------------------------

class ReplyOutputText(_Model):
    type: Literal["output_text"]
    text: Prose
    annotations: list[None] = Field(default_factory=list, max_length=0)


ReplyPart = ReplyOutputText  # a refusal is sent as text: the same in streamed and whole replies


class ReplyMessage(_Model):
    type: Literal["message"]
    id: ItemId
    status: ItemStatus
    role: Literal["assistant"]
    content: list[ReplyPart]


class ReplyFunctionCall(_Model):
    type: Literal["function_call"]
    id: ItemId
    call_id: Identifier
    name: ToolName
    arguments: JsonString
    status: ItemStatus


ReplyItem = Annotated[ReplyMessage | ReplyFunctionCall, Field(discriminator="type")]


class UsageDetails(_Model):
    cached_tokens: int = 0


class OutputDetails(_Model):
    reasoning_tokens: int = 0


class ReplyUsage(_Model):
    input_tokens: int
    input_tokens_details: UsageDetails
    output_tokens: int
    output_tokens_details: OutputDetails
    total_tokens: int


class ReplyError(_Model):
    code: Annotated[str, Opaque("the proxy's error code")]
    message: Annotated[str, Opaque("written by the proxy, never user or upstream text")]


class IncompleteDetails(_Model):
    reason: Literal["max_output_tokens", "content_filter"]


class FormatOut(_Model):
    format: FormatText


class ResponseObject(_Model):
    id: ItemId
    object: Literal["response"]
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    model: Annotated[str, Opaque("the route name the client asked for")]
    output: list[ReplyItem]
    usage: ReplyUsage | None
    error: ReplyError | None
    incomplete_details: IncompleteDetails | None
    instructions: None = None         # not echoed
    metadata: dict[str, None] = Field(default_factory=dict, max_length=0)
    tools: list[None] = Field(default_factory=list, max_length=0)  # not echoed
    tool_choice: Literal["auto"]
    parallel_tool_calls: bool
    temperature: None = None
    top_p: None = None
    previous_response_id: None = None
    store: bool
    text: FormatOut
    truncation: Literal["disabled"]


class _Event(_Model):
    sequence_number: int


class ResponseLifecycle(_Event):
    type: Literal["response.created", "response.in_progress", "response.completed", "response.incomplete",
                  "response.failed"]
    response: ResponseObject


class OutputItemEvent(_Event):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: ReplyItem


class ContentPartEvent(_Event):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: ItemId
    output_index: int
    content_index: int
    part: ReplyPart


class TextDeltaEvent(_Event):
    type: Literal["response.output_text.delta"]
    item_id: ItemId
    output_index: int
    content_index: int
    delta: Prose
    logprobs: list[None] = Field(default_factory=list, max_length=0)


class TextDoneEvent(_Event):
    type: Literal["response.output_text.done"]
    item_id: ItemId
    output_index: int
    content_index: int
    text: Prose
    logprobs: list[None] = Field(default_factory=list, max_length=0)


class ArgsDeltaEvent(_Event):
    type: Literal["response.function_call_arguments.delta"]
    item_id: ItemId
    output_index: int
    delta: JsonString


class ArgsDoneEvent(_Event):
    type: Literal["response.function_call_arguments.done"]
    item_id: ItemId
    output_index: int
    name: ToolName
    arguments: JsonString


class ErrorEvent(_Event):
    type: Literal["error"]
    code: Annotated[str, Opaque("the proxy's error code")]
    message: Annotated[str, Opaque("written by the proxy, never user or upstream text")]
    param: Annotated[str, Opaque("a field path the proxy names")] | None


StreamEvent = Annotated[ResponseLifecycle | OutputItemEvent | ContentPartEvent | TextDeltaEvent | TextDoneEvent
                        | ArgsDeltaEvent | ArgsDoneEvent | ErrorEvent, Field(discriminator="type")]


# -- reply codec ------------------------------------------------------------------------------

def _status(finish: str | None) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _usage(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.input_tokens + u.output_tokens}


class _Reply:
    """One response's identity and output items, built from segments (both paths)."""

    def __init__(self, model: str, store: bool) -> None:
        self.id = "resp_" + uuid.uuid4().hex
        self.model = model
        self.store = store
        self.created_at = int(time.time())
        self.output: list[dict[str, Any]] = []

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex}"

    def shell(self, status: str, usage: Usage | None = None, *, finish: str | None = None,
              error: dict[str, str] | None = None) -> dict[str, Any]:
        incomplete = _status(finish)[1] if status == "incomplete" else None
        return {"id": self.id, "object": "response", "created_at": self.created_at, "status": status,
                "model": self.model, "output": [dict(i) for i in self.output],
                "usage": _usage(usage) if usage is not None else None, "error": error,
                "incomplete_details": incomplete, "instructions": None, "metadata": {}, "tools": [],
                "tool_choice": "auto", "parallel_tool_calls": True, "temperature": None, "top_p": None,
                "previous_response_id": None, "store": self.store, "text": {"format": {"type": "text"}},
                "truncation": "disabled"}


def encode_response(resp: dict[str, Any], model: str, *, store: bool = False) -> dict[str, Any]:
    """A screened canonical chat completion -> a Responses ``response`` object."""
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reply = _Reply(model, store)
    text: dict[str, Any] | None = None
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for seg in message_segments(message, choice.get("finish_reason")):
        if isinstance(seg, TextDelta):
            if text is None:
                text = {"type": "output_text", "text": "", "annotations": []}
                reply.output.append({"type": "message", "id": reply.new_id("msg"), "status": "completed",
                                     "role": "assistant", "content": [text]})
            text["text"] += seg.text
        elif isinstance(seg, ToolStart):
            calls[seg.key] = {"type": "function_call", "id": reply.new_id("fc"), "call_id": seg.id,
                              "name": seg.name, "arguments": "", "status": "completed"}
            reply.output.append(calls[seg.key])
        elif isinstance(seg, ToolArgs):
            calls[seg.key]["arguments"] += seg.fragment
        elif isinstance(seg, Finish):
            finish = seg.reason
    status, _ = _status(finish)
    return reply.shell(status, Usage.of(resp.get("usage")), finish=finish)


class StreamEncoder:
    """Canonical chunks -> Responses stream events with sequence numbers. One per stream."""

    def __init__(self, model: str, *, store: bool = False) -> None:
        self.reply = _Reply(model, store)
        self.segments = Segmenter()
        self._seq = 0
        self._started = False
        self._open: dict[str, Any] | None = None    # the output item being streamed
        self._text = ""
        self._items: dict[int, dict[str, Any]] = {}

    def _ev(self, event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = self._seq
        self._seq += 1
        return event

    def _start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        shell = self.reply.shell("in_progress")
        return [self._ev({"type": "response.created", "response": shell}),
                self._ev({"type": "response.in_progress", "response": dict(shell)})]

    def _close(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        index = self.reply.output.index(item)
        out: list[dict[str, Any]] = []
        if item["type"] == "message":
            part = {"type": "output_text", "text": self._text, "annotations": []}
            out.append(self._ev({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                                 "content_index": 0, "text": self._text, "logprobs": []}))
            out.append(self._ev({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                                 "content_index": 0, "part": part}))
            item["content"] = [part]
        else:
            out.append(self._ev({"type": "response.function_call_arguments.done", "item_id": item["id"],
                                 "output_index": index, "name": item["name"], "arguments": item["arguments"]}))
        item["status"] = "completed"
        out.append(self._ev({"type": "response.output_item.done", "output_index": index, "item": dict(item)}))
        return out

    def _events(self, segments: list[Segment]) -> list[dict[str, Any]]:
        out = self._start()
        for seg in segments:
            if isinstance(seg, TextDelta):
                if self._open is None or self._open["type"] != "message":
                    out += self._close()
                    item: dict[str, Any] = {"type": "message", "id": self.reply.new_id("msg"),
                                            "status": "in_progress", "role": "assistant", "content": []}
                    self.reply.output.append(item)
                    self._open, self._text = item, ""
                    index = len(self.reply.output) - 1
                    out.append(self._ev({"type": "response.output_item.added", "output_index": index,
                                         "item": {**item, "content": []}}))
                    out.append(self._ev({"type": "response.content_part.added", "item_id": item["id"],
                                         "output_index": index, "content_index": 0,
                                         "part": {"type": "output_text", "text": "", "annotations": []}}))
                self._text += seg.text
                out.append(self._ev({"type": "response.output_text.delta", "item_id": self._open["id"],
                                     "output_index": len(self.reply.output) - 1, "content_index": 0,
                                     "delta": seg.text, "logprobs": []}))
            elif isinstance(seg, ToolStart):
                out += self._close()
                item = {"type": "function_call", "id": self.reply.new_id("fc"), "call_id": seg.id, "name": seg.name,
                        "arguments": "", "status": "in_progress"}
                self.reply.output.append(item)
                self._items[seg.key] = self._open = item
                out.append(self._ev({"type": "response.output_item.added", "output_index": len(self.reply.output) - 1,
                                     "item": dict(item)}))
            elif isinstance(seg, ToolArgs):
                item = self._items[seg.key]
                item["arguments"] += seg.fragment
                out.append(self._ev({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                                     "output_index": self.reply.output.index(item), "delta": seg.fragment}))
            elif isinstance(seg, Finish):
                out += self._close()
        return out

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return b"".join(sse(e) for e in self._events(self.segments.feed(chunk)))

    def end(self) -> bytes:
        events = self._events(self.segments.end())
        status, _ = _status(self.segments.finished)
        final = self.reply.shell(status, self.segments.usage, finish=self.segments.finished)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._ev({"type": kind, "response": final}))
        return b"".join(sse(e) for e in events)

    def error(self, err: TrustProxyError) -> bytes:
        events = self._start()
        code = err.code or "server_error"
        events.append(self._ev({"type": "error", "code": code, "message": err.message, "param": err.param}))
        failed = self.reply.shell("failed", error={"code": code, "message": err.message})
        events.append(self._ev({"type": "response.failed", "response": failed}))
        return b"".join(sse(e) for e in events)


class ResponsesCodec:
    """The reply codec for one request (``doors.codec.ReplyCodec``)."""

    def __init__(self, model: str, *, store: bool = False) -> None:
        self.model = model
        self.store = store

    def complete(self, resp: dict[str, Any]) -> dict[str, Any]:
        return encode_response(resp, self.model, store=self.store)

    def encoder(self) -> StreamEncoder:
        return StreamEncoder(self.model, store=self.store)
