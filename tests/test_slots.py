"""The one slot enumeration covers every text-bearing place, in both directions."""

from __future__ import annotations

import json

from trustproxy.slots import iter_request_slots, iter_response_slots, map_json_strings


def _request() -> dict:
    return {
        "model": "m",
        "messages": [
            {"role": "system", "content": "T1"},
            {"role": "developer", "content": "T2"},
            {"role": "user", "name": "T3", "content": [{"type": "text", "text": "T4"}, {"type": "text", "text": "T5"}]},
            {"role": "assistant", "content": "T6", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": "T7"}'}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"b": ["T8"]}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "T9"},
            {"role": "assistant", "content": None, "function_call": {"name": "h", "arguments": '{"c": "T10"}'}},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "description": "T11", "parameters": {}}}],
    }


def test_request_slots_cover_every_text_position():
    body = _request()
    slots = list(iter_request_slots(body))
    seen = " ".join(s.get() for s in slots)
    for i in range(1, 12):
        assert f"T{i}" in seen, f"T{i}"
    for s in slots:  # set() writes back to the very place
        s.set(s.get().replace("T", "X"))
    assert '"T' not in json.dumps(body).replace('"type"', "").replace('"tool', "").replace('"tools', "")
    kinds = {s.path: s.kind for s in slots}
    assert kinds["messages[2].name"] == "name"
    assert kinds["messages[3].tool_calls[1].function.arguments"] == "json"
    # function names and tool-call ids are identifiers: screened as text, written back id-safe
    assert kinds["messages[3].tool_calls[0].function.name"] == "text"
    assert kinds["messages[4].tool_call_id"] == "text"
    # one group per message's text parts: a value split across parts is detected together
    groups = {s.group for s in slots if s.path.startswith("messages[2].content")}
    assert len(groups) == 1


def test_embedding_inputs():
    assert [s.get() for s in iter_request_slots({"model": "m", "input": "a"})] == ["a"]
    assert [s.path for s in iter_request_slots({"model": "m", "input": ["a", "b"]})] == ["input[0]", "input[1]"]


def test_response_slots_messages_and_stream_deltas():
    resp = {"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "R1", "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "f", "arguments": '{"q": "R2"}'}}]}},
        {"index": 1, "message": {"role": "assistant", "content": "R3", "function_call": {"name": "g", "arguments": "R4"}}},
    ]}
    slots = list(iter_response_slots(resp))
    assert [s.get() for s in slots] == ["R1", "f", '{"q": "R2"}', "R3", "g", "R4"]
    assert [s.kind for s in slots] == ["prose", "identifier", "json-string", "prose", "identifier", "json-string"]
    assert slots[2].loc == ("choices", 0, "message", "tool_calls", 0, "function", "arguments")
    # stream lists are keyed by their items' own index: a location is stable across chunks
    chunk = {"choices": [{"index": 2, "delta": {"content": "D1", "tool_calls": [
        {"index": 3, "function": {"arguments": "{\"p\":"}}]}}]}
    assert [(s.loc, s.kind) for s in iter_response_slots(chunk)] == [
        (("choices", 2, "delta", "content"), "prose"),
        (("choices", 2, "delta", "tool_calls", 3, "function", "arguments"), "json-string")]


def test_map_json_strings_keeps_json_valid():
    out = map_json_strings('{"a": "x\\"y", "b": [1, "z"], "c": {"d": null}}', lambda s: s.upper() + '"')
    assert json.loads(out) == {"a": 'X"Y"', "b": [1, 'Z"'], "c": {"d": None}}
