"""The chat-completions door: the CANONICAL request and reply of the proxy.

``ChatRequest`` declares every field the proxy forwards, each string either a text slot
(``Text(kind)``) or opaque (``Opaque(reason)``, or a ``Literal`` the proxy validates). Unknown
keys, at any depth (an extra key inside ``tool_calls[]`` or ``function``), are dropped; the
steering fields of ``common.STEERING_FIELDS`` are refused. What goes upstream is the model's
dump (``parse_chat``): there is no second, hand-kept allow-list.

The other doors translate to this dict and from ``ChatCompletion`` / ``ChatCompletionChunk``
(what ``providers.py`` produces). ``tests/test_doors_conformance.py`` walks every schema here
and fails on any string leaf with no declared role.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from trustproxy.doors.common import dump, validate
from trustproxy.doors.fields import Group, Keyed, Kind, Opaque, Text

Prose = Annotated[str, Text(Kind.PROSE)]
JsonString = Annotated[str, Text(Kind.JSON_STRING)]
Ident = Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(max_length=256)]
Name = Annotated[str, Text(Kind.NAME), StringConstraints(max_length=256)]
Schema = Annotated[dict[str, Any] | None, Text(Kind.JSON_SCHEMA)]
ProviderId = Annotated[str, Opaque("an id the provider made up for this reply")]


class _Strict(BaseModel):
    """Request side: strict types (``"stream": "yes"`` is refused), unknown keys dropped."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class _Reply(BaseModel):
    """Reply side: what providers.py normalised; unknown keys dropped."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# ---- request ---------------------------------------------------------------------------------

class TextPart(_Strict):
    type: Literal["text", "input_text"]
    text: Prose


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: Prose


Content = Annotated[Prose | list[TextPart], Group()]
AssistantContent = Annotated[Prose | list[Annotated[TextPart | RefusalPart, Field(discriminator="type")]] | None,
                             Group()]


class FunctionCall(_Strict):
    name: Ident
    arguments: JsonString


class ToolCall(_Strict):
    id: Ident
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Strict):
    role: Literal["system"]
    content: Content
    name: Name | None = None


class DeveloperMessage(_Strict):
    role: Literal["developer"]
    content: Content
    name: Name | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: Content
    name: Name | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: AssistantContent = None
    refusal: Prose | None = None
    name: Name | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: Content
    tool_call_id: Ident | None = None


class FunctionMessage(_Strict):
    role: Literal["function"]
    content: Prose | None = None
    name: Ident


Message = Annotated[SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
                    | FunctionMessage, Field(discriminator="role")]


class FunctionDef(_Strict):
    name: Ident
    description: Prose | None = None
    parameters: Schema = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: Ident


class ToolChoiceFunction(_Strict):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Strict):
    name: Ident
    description: Prose | None = None
    schema_: Schema = Field(None, alias="schema")
    strict: bool | None = None


class FormatText(_Strict):
    type: Literal["text"]


class FormatJsonObject(_Strict):
    type: Literal["json_object"]


class FormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")]


class StreamOptions(_Strict):
    include_usage: bool | None = None


class Prediction(_Strict):
    type: Literal["content"]
    content: Content


TokenId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]


class ChatRequest(_Strict):
    model: Annotated[str, Opaque("the route name: the proxy routes on it"), StringConstraints(min_length=1,
                                                                                             max_length=256)]
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=8)
    max_tokens: int | None = Field(None, ge=1, le=10_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=10_000_000)
    stop: Annotated[str | list[str] | None, Text(Kind.PROSE)] = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[TokenId, Annotated[int, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDef] | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = Field(None, ge=-(2 ** 63), le=2 ** 64)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    modalities: list[Literal["text"]] | None = None
    prediction: Prediction | None = None
    user: Ident | None = None
    # provider-side storage: set only by the Responses door on routes with allow_server_state;
    # a chat client cannot set it (parse_chat drops it)
    store: bool | None = None
    safety_identifier: Ident | None = None
    prompt_cache_key: Ident | None = None


def parse_chat(body: Any) -> dict[str, Any]:
    """A client body -> the canonical request (the strict model's dump)."""
    req = validate(body, ChatRequest)
    out = dump(req)
    out.pop("store", None)
    out["stream"] = req.stream
    if not req.stream:
        out.pop("stream_options", None)
    return out


# ---- reply -----------------------------------------------------------------------------------

Token = Annotated[str, Opaque("a model token: logprobs are refused while the policy screens output")]


class FunctionOut(_Reply):
    name: Ident | None = None
    arguments: JsonString | None = None


class ToolCallOut(_Reply):
    index: int | None = None  # stream deltas only
    id: ProviderId | None = None
    type: Literal["function"] | None = None
    function: FunctionOut | None = None


class MessageOut(_Reply):
    role: Annotated[str, Opaque("the speaker's role, as the provider reports it")] | None = None
    content: Prose | None = None
    refusal: Prose | None = None
    tool_calls: Annotated[list[ToolCallOut] | None, Keyed("index")] = None
    function_call: FunctionOut | None = None


class TopLogprob(_Reply):
    token: Token
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Reply):
    token: Token
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class Logprobs(_Reply):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


FinishReason = Annotated[str, Opaque("why the reply ended: an enum of the provider's, no text")]


class Choice(_Reply):
    index: int
    message: MessageOut
    finish_reason: FinishReason | None = None
    logprobs: Logprobs | None = None


class Usage(_Reply):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


_Shell = Annotated[str, Opaque("reply metadata from the provider: ids, model names, tiers")]


class ChatCompletion(_Reply):
    id: _Shell | None = None
    object: Literal["chat.completion"] = "chat.completion"
    created: int | None = None
    model: _Shell | None = None
    system_fingerprint: _Shell | None = None
    service_tier: _Shell | None = None
    choices: Annotated[list[Choice], Keyed("index")]
    usage: Usage | None = None


class ChunkChoice(_Reply):
    index: int
    delta: MessageOut
    finish_reason: FinishReason | None = None
    logprobs: Logprobs | None = None


class ChatCompletionChunk(_Reply):
    id: _Shell | None = None
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int | None = None
    model: _Shell | None = None
    system_fingerprint: _Shell | None = None
    service_tier: _Shell | None = None
    choices: Annotated[list[ChunkChoice], Keyed("index")] = Field(default_factory=list)
    usage: Usage | None = None


def reply_dump(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """A normalised reply or chunk re-built from its declared model: nothing undeclared passes."""
    return model.model_validate(raw).model_dump(by_alias=True, exclude_unset=True)
