"""Conformance: every string leaf of every door schema (request and reply) is declared a text slot
or opaque, and the walker screens exactly what is declared. A new field is a failing test."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from trustproxy.doors.embeddings import EmbeddingRequest, EmbeddingResponse
from trustproxy.doors.fields import Kind, Text, undeclared_string_leaves
from trustproxy.doors.masking import masker_slots
from trustproxy.doors.openai_chat import (ChatCompletion, ChatCompletionChunk, ChatRequest, Tool, UserMessage,
                                          parse_chat)
from trustproxy.doors.walk import UndeclaredField, walk
from trustproxy.slots import iter_request_slots

DOOR_MODELS = [ChatRequest, ChatCompletion, ChatCompletionChunk, EmbeddingRequest, EmbeddingResponse]


@pytest.mark.parametrize("model", DOOR_MODELS, ids=lambda m: m.__name__)
def test_every_string_leaf_is_declared(model: type[BaseModel]) -> None:
    assert undeclared_string_leaves(model.model_json_schema()) == []


def test_a_new_top_level_field_is_caught() -> None:
    class Extended(ChatRequest):
        new_field: str | None = None

    assert undeclared_string_leaves(Extended.model_json_schema()) == ["$.new_field"]


def test_a_new_nested_field_is_caught() -> None:
    class NotedUser(UserMessage):
        note: str | None = None

    class Extended(ChatRequest):
        extra_messages: list[NotedUser] | None = None
        blob: dict[str, Any] | None = None

    found = undeclared_string_leaves(Extended.model_json_schema())
    assert "$.extra_messages[].note" in found
    assert any(p.startswith("$.blob") for p in found)  # free-form keys/values are not declared either


def test_declaring_it_fixes_it() -> None:
    class Extended(ChatRequest):
        new_field: Annotated[str, Text(Kind.PROSE)] | None = None

    assert undeclared_string_leaves(Extended.model_json_schema()) == []


# ---- the walker screens what is declared: plant a marker in every text field --------------------

def _maximal_request() -> dict[str, Any]:
    """Every text-bearing field of the chat door, each holding a unique marker T<n>."""
    n = iter(range(1, 1000))

    def t() -> str:
        return f"T{next(n)}"

    schema = {"type": "object", "title": t(), "description": t(), "properties": {
        "a": {"type": "string", "description": t(), "enum": [t(), t()], "default": t(), "examples": [t(), {"k": t()}],
              "const": t(), "pattern": t()}}, "required": ["a"], "$defs": {"X": {"description": t()}}}
    return {
        "model": "route", "stream": False, "stop": [t(), t()], "user": t(), "safety_identifier": t(),
        "prompt_cache_key": t(),
        "messages": [
            {"role": "system", "content": t(), "name": t()},
            {"role": "developer", "content": [{"type": "text", "text": t()}], "name": t()},
            {"role": "user", "content": [{"type": "text", "text": t()}, {"type": "text", "text": t()}], "name": t()},
            {"role": "assistant", "content": [{"type": "text", "text": t()}, {"type": "refusal", "refusal": t()}],
             "refusal": t(), "name": t(),
             "tool_calls": [{"id": t(), "type": "function", "function": {"name": t(), "arguments": json.dumps({"q": t()})}}],
             "function_call": {"name": t(), "arguments": json.dumps([t()])}},
            {"role": "tool", "tool_call_id": t(), "content": t()},
            {"role": "function", "name": t(), "content": t()},
        ],
        "tools": [{"type": "function", "function": {"name": t(), "description": t(), "parameters": schema}}],
        "tool_choice": {"type": "function", "function": {"name": t()}},
        "functions": [{"name": t(), "description": t(), "parameters": {"type": "object", "description": t()}}],
        "function_call": {"name": t()},
        "response_format": {"type": "json_schema", "json_schema": {"name": t(), "description": t(),
                                                                   "schema": {"description": t()}}},
        "prediction": {"type": "content", "content": t()},
        "logit_bias": {"42": 1},
    }


def test_the_walker_reaches_every_planted_marker() -> None:
    body = parse_chat(_maximal_request())
    planted = set(re.findall(r"T\d+", json.dumps(body)))
    assert len(planted) >= 45
    covered: set[str] = set()
    for slot in iter_request_slots(body):
        covered |= set(re.findall(r"T\d+", slot.get()))
    assert planted - covered == set()


def test_every_marker_is_replaced_when_every_slot_is_rewritten() -> None:
    body = parse_chat(_maximal_request())
    for slot in iter_request_slots(body, participant_names="screen"):
        slot.set(re.sub(r"T\d+", "X", slot.get()))
    assert not re.search(r"T\d+", json.dumps(body))
    # structure stays: keywords, property names, required, literals
    params = body["tools"][0]["function"]["parameters"]
    assert params["type"] == "object" and params["required"] == ["a"] and "a" in params["properties"]
    assert json.loads(body["messages"][3]["tool_calls"][0]["function"]["arguments"]) == {"q": "X"}


def test_groups_join_one_messages_content_parts() -> None:
    body = parse_chat(_maximal_request())
    groups = {s.path: s.group for s in walk(ChatRequest, body)}
    assert groups["messages[2].content[0].text"] == groups["messages[2].content[1].text"] == "messages[2].content"
    assert groups["messages[2].name"] == "messages[2].name"


def test_a_canonical_dict_with_an_undeclared_key_is_refused() -> None:
    body = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    body["messages"][0]["smuggled"] = "T1"
    with pytest.raises(UndeclaredField) as exc:
        list(walk(ChatRequest, body))
    assert "T1" not in str(exc.value) and "smuggled" not in str(exc.value)
    body = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    body["surprise"] = 1
    with pytest.raises(UndeclaredField):
        list(walk(ChatRequest, body))


def test_reply_slots_cover_every_output_field() -> None:
    reply = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "R1", "refusal": "R2",
        "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "R3", "arguments": "R4"}}],
        "function_call": {"name": "R5", "arguments": "R6"}}}]}
    kinds = {s.get(): s.kind for s in walk(ChatCompletion, reply)}
    assert kinds == {"R1": "prose", "R2": "prose", "R3": "identifier", "R4": "json-string",
                     "R5": "identifier", "R6": "json-string"}


def test_embeddings_input_is_the_only_slot() -> None:
    body = {"model": "m", "input": ["a", "b"], "user": "u"}
    assert [(s.path, s.kind) for s in walk(EmbeddingRequest, body)] == [
        ("input[0]", "prose"), ("input[1]", "prose"), ("user", "identifier")]
    assert [s.kind for s in masker_slots(walk(EmbeddingRequest, body))] == ["text", "text", "text"]


def test_tool_model_is_reused_not_copied() -> None:
    # tools[] is validated by the same declared model everywhere (no second allow-list)
    assert ChatRequest.model_fields["tools"].annotation == (list[Tool] | None)


def test_json_object_slots_screen_every_string_value_and_keep_structure() -> None:
    class ToolUse(BaseModel):
        name: Annotated[str, Text(Kind.IDENTIFIER)]
        input: Annotated[dict[str, Any], Text(Kind.JSON_OBJECT)]

    assert undeclared_string_leaves(ToolUse.model_json_schema()) == []
    data = {"name": "f", "input": {"to": "T1", "cc": ["T2", {"k": "T3"}], "n": 4, "ok": True, "T9": None}}
    slots = list(masker_slots(walk(ToolUse, data)))
    assert sorted(s.get() for s in slots) == ["T1", "T2", "T3", "f"]
    for s in slots:
        s.set(s.get().replace("T", "X"))
    assert data["input"] == {"to": "X1", "cc": ["X2", {"k": "X3"}], "n": 4, "ok": True, "T9": None}
