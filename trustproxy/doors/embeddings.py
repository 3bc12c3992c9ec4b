"""The embeddings door: ``input`` (a text or a list of texts) is the only text slot.

Token arrays cannot be screened and are refused; unknown keys are dropped; the forwarded body
is the model's dump.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from trustproxy.doors.common import dump, validate
from trustproxy.doors.fields import Kind, Opaque, Text


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    model: Annotated[str, Opaque("the route name: the proxy routes on it"), StringConstraints(min_length=1,
                                                                                             max_length=256)]
    input: Annotated[str | list[str], Text(Kind.PROSE)] = Field(
        description="Text or a list of texts; token arrays cannot be screened.")
    dimensions: int | None = Field(None, ge=1, le=65536)
    encoding_format: Literal["float", "base64"] | None = None
    user: Annotated[str, Text(Kind.IDENTIFIER), StringConstraints(max_length=256)] | None = None


def parse_embeddings(body: Any) -> dict[str, Any]:
    return dump(validate(body, EmbeddingRequest))


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Embedding(_Reply):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | Annotated[str, Opaque("a base64-encoded vector: numbers, not text")]


class EmbeddingUsage(_Reply):
    prompt_tokens: int | None = None
    total_tokens: int | None = None


class EmbeddingResponse(_Reply):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: Annotated[str, Opaque("the model name as the provider reports it")] | None = None
    usage: EmbeddingUsage | None = None
