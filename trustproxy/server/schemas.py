"""Strict parsing of client bodies at the edge: typed checks, an allow-list of forwarded fields.

Fields that would let a client steer the upstream (``api_base``, ``api_key``, extra headers,
provider overrides, litellm's mock/caching switches) are refused with a 400 naming the field;
any other unknown field is dropped, never forwarded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustproxy.errors import InvalidRequest

STEERING_FIELDS = frozenset({
    "api_base", "base_url", "api_key", "api_version", "extra_headers", "headers", "custom_llm_provider",
    "litellm_params", "mock_response", "mock_tool_calls", "caching", "cache", "fallbacks", "num_retries",
    "timeout", "organization", "deployment_id", "aws_access_key_id", "aws_secret_access_key",
    "aws_region_name", "vertex_project", "vertex_location", "vertex_credentials", "azure_ad_token",
    "input_cost_per_token", "output_cost_per_token", "metadata", "litellm_logging_obj", "proxy_server_request",
    "no-log", "extra_body", "extra_query", "callbacks", "success_callback", "failure_callback", "logger_fn",
})

CHAT_FORWARD = frozenset({
    "messages", "stream", "stream_options", "temperature", "top_p", "n", "max_tokens", "max_completion_tokens",
    "stop", "presence_penalty", "frequency_penalty", "logit_bias", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "seed", "logprobs", "top_logprobs", "reasoning_effort", "functions", "function_call",
})
EMBED_FORWARD = frozenset({"input", "dimensions", "encoding_format"})


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "input_text"]
    text: str


class FunctionCall(_Loose):
    name: str | None = None
    arguments: str | None = None


class ToolCall(_Loose):
    id: str | None = None
    type: str | None = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    n: int | None = Field(None, ge=1, le=8)
    tools: list[dict[str, Any]] | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[str] = Field(description="Text or a list of texts; token arrays cannot be screened.")


def _first_error(exc: ValidationError) -> InvalidRequest:
    err = exc.errors()[0]
    # an unknown key is the caller's text: name its parent, never the key itself
    parts = err["loc"][:-1] if err["type"] == "extra_forbidden" else err["loc"]
    loc = ".".join(str(x) for x in parts) or "body"
    msg = err["msg"]
    if err["type"] in ("literal_error", "union_tag_invalid") and "content" in loc:
        msg = "only text content parts can be screened; image, audio and file parts are refused"
    return InvalidRequest(f"Invalid request: {loc}: {msg}.", param=loc)


def _refuse_steering(body: dict[str, Any]) -> None:
    bad = sorted(k for k in body if k in STEERING_FIELDS)
    if bad:
        raise InvalidRequest(f"Field '{bad[0]}' is not accepted: the proxy decides where requests go.",
                             param=bad[0], code="forbidden_field")


def _validate(body: Any, model: type[BaseModel]) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _refuse_steering(body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _first_error(exc) from None


def parse_chat(body: Any) -> dict[str, Any]:
    req = _validate(body, ChatRequest)
    out = {k: v for k, v in body.items() if k in CHAT_FORWARD}
    out["messages"] = [m.model_dump(exclude_none=True) for m in req.messages]
    out["model"] = req.model
    out["stream"] = req.stream
    if "stream_options" in out and not req.stream:
        out.pop("stream_options")
    return out


def parse_embeddings(body: Any) -> dict[str, Any]:
    req = _validate(body, EmbeddingRequest)
    out = {k: v for k, v in body.items() if k in EMBED_FORWARD}
    out["model"] = req.model
    out["input"] = req.input if isinstance(req.input, str) else list(req.input)
    return out
