"""The agent doors as codecs (no server): declared schemas, the canary through the real masking,
the stream encoders at every split point, strict parsing and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from trustproxy.doors import anthropic_messages as am
from trustproxy.doors import openai_responses as orr
from trustproxy.doors.fields import MARK, undeclared_string_leaves
from trustproxy.errors import InvalidRequest, UpstreamError

# -- conformance: every string leaf of every schema is declared ----------------------------------

SCHEMAS = {
    "anthropic.request": am.MessagesRequest.model_json_schema(),
    "anthropic.count_tokens": am.CountTokensRequest.model_json_schema(),
    "anthropic.reply": am.MessageResponse.model_json_schema(),
    "anthropic.events": TypeAdapter(am.StreamEvent).json_schema(),
    "responses.request": orr.ResponsesRequest.model_json_schema(),
    "responses.reply": orr.ResponseObject.model_json_schema(),
    "responses.events": TypeAdapter(orr.StreamEvent).json_schema(),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_string_field_is_declared(name):
    assert undeclared_string_leaves(SCHEMAS[name]) == []


def test_the_walker_catches_an_undeclared_field():
    from pydantic import BaseModel

    class Extended(am.MessagesRequest):
        extra_prompt: str | None = None

    class Loose(BaseModel):
        anything: dict[str, Any]

    assert undeclared_string_leaves(Extended.model_json_schema()) == ["$.extra_prompt"]
    assert undeclared_string_leaves(Loose.model_json_schema()) == ["$.anything.* (free-form keys)"]


def marked_paths(schema: dict[str, Any], prefix: str) -> set[str]:
    """Schema paths of the nodes declared as text slots (``slot:<kind>``)."""
    defs = schema.get("$defs", {})
    out: set[str] = set()

    def walk(node: Any, path: str, depth: int) -> None:
        if not isinstance(node, dict) or depth > 40:
            return
        mark = node.get(MARK)
        if isinstance(mark, str):
            if mark.startswith(prefix):
                out.add(f"{path} {mark}")
            return
        if isinstance(node.get("$ref"), str):
            walk(defs.get(node["$ref"].rsplit("/", 1)[-1], {}), path, depth + 1)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for b in node.get(key, []):
                walk(b, path, depth + 1)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{key}", depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", depth + 1)

    walk(schema, "$", 0)
    return out


ANTHROPIC_SLOTS = {
    "$.system slot:prose", "$.system[].text slot:prose",
    "$.messages[].content slot:prose", "$.messages[].content[].text slot:prose",
    "$.messages[].content[].id slot:identifier", "$.messages[].content[].tool_use_id slot:identifier",
    "$.messages[].content[].name slot:identifier", "$.messages[].content[].input slot:json-object",
    "$.messages[].content[].content slot:prose", "$.messages[].content[].content[].text slot:prose",
    "$.tools[].name slot:identifier", "$.tools[].description slot:prose", "$.tools[].input_schema slot:json-schema",
    "$.tool_choice.name slot:identifier", "$.stop_sequences[] slot:prose",
}
RESPONSES_SLOTS = {
    "$.input slot:prose", "$.input[].content slot:prose", "$.input[].content[].text slot:prose",
    "$.input[].content[].refusal slot:prose", "$.input[].name slot:identifier", "$.input[].call_id slot:identifier",
    "$.input[].arguments slot:json-string", "$.input[].output slot:prose", "$.input[].output[].text slot:prose",
    "$.instructions slot:prose", "$.tools[].name slot:identifier", "$.tools[].description slot:prose",
    "$.tools[].parameters slot:json-schema", "$.tool_choice.name slot:identifier",
    "$.text.format.schema slot:json-schema", "$.text.format.description slot:prose",
    "$.text.format.name slot:identifier",
}


def test_the_canary_requests_cover_every_declared_slot():
    """A new text field fails here until the canary requests below plant a value in it."""
    assert marked_paths(SCHEMAS["anthropic.request"], "slot:") == ANTHROPIC_SLOTS
    assert marked_paths(SCHEMAS["responses.request"], "slot:") == RESPONSES_SLOTS


# -- the canary: a planted value in every text slot, through to_canonical and the real masking --

class Canaries:
    def __init__(self) -> None:
        self.planted: dict[str, str] = {}

    def __call__(self, where: str) -> str:
        value = f"canary.{len(self.planted):03d}@example.com"
        self.planted[where] = value
        return value


def anthropic_full(c: Canaries) -> dict[str, Any]:
    return {
        "model": "echo", "max_tokens": 64, "stream": False,
        "system": [{"type": "text", "text": f"Write to {c('system block')}", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": f"Hello, I am {c('user string')}"},
            {"role": "assistant", "content": [
                {"type": "text", "text": f"Noted {c('assistant text')}"},
                {"type": "tool_use", "id": c("tool_use id"), "name": c("tool_use name"),
                 "input": {"to": c("tool_use input"), "n": 3, "deep": {"list": [c("tool_use input nested")]}}},
                {"type": "thinking", "thinking": c("thinking (dropped)"), "signature": "sig"}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": c("tool_use_id"), "content": f"sent {c('tool_result string')}"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True,
                 "content": [{"type": "text", "text": c("tool_result block")}]},
                {"type": "text", "text": f"and {c('user block')}"}]},
        ],
        "tools": [{"name": c("tool name"), "description": f"mails {c('tool description')}",
                   "input_schema": {"type": "object", "properties": {"to": {
                       "type": "string", "description": f"like {c('schema description')}",
                       "enum": [c("schema enum")], "default": c("schema default")}}}}],
        "tool_choice": {"type": "tool", "name": c("tool_choice name")},
        "stop_sequences": [c("stop sequence")],
        "metadata": {"user_id": c("metadata.user_id (dropped)")},
    }


def responses_full(c: Canaries) -> dict[str, Any]:
    return {
        "model": "echo", "instructions": f"Write to {c('instructions')}",
        "input": [
            {"role": "user", "content": f"I am {c('message string')}"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": c("input_text")}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": c("output_text"), "annotations": []},
                                              {"type": "refusal", "refusal": c("refusal part")}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": c("reasoning (dropped)")}]},
            {"type": "function_call", "call_id": c("call_id"), "name": c("function_call name"),
             "arguments": json.dumps({"to": c("function_call arguments")})},
            {"type": "function_call_output", "call_id": "call_1", "output": f"ok {c('function_call_output')}"},
            {"type": "function_call_output", "call_id": "call_2",
             "output": [{"type": "input_text", "text": c("function_call_output part")}]},
        ],
        "tools": [{"type": "function", "name": c("tool name"), "description": c("tool description"),
                   "parameters": {"type": "object", "properties": {"to": {
                       "type": "string", "description": c("parameters description"), "enum": [c("parameters enum")]}}}}],
        "tool_choice": {"type": "function", "name": c("tool_choice name")},
        "text": {"format": {"type": "json_schema", "name": c("format name"), "description": c("format description"),
                            "schema": {"type": "object", "properties": {"x": {"description": c("format schema")}}}}},
        "metadata": {"k": c("metadata (dropped)")}, "user": c("user (dropped)"),
    }


@pytest.fixture(scope="module")
def masking():
    from trustproxy.pii.detector import get_detector
    from trustproxy.policy.loader import load_policy_dir

    policy = load_policy_dir("policies")["default"].policy
    return policy, get_detector(policy.nlp_model, policy.language)


def _mask(masking, body: dict[str, Any]) -> tuple[str, Any]:
    """The masking ``RequestContext.screen_request`` runs; returns what would be sent and a
    ``restore(text)`` giving back the caller's values (identifiers: by exact match)."""
    from trustproxy.pii.masker import all_texts
    from trustproxy.pii.vault import Vault

    policy, detector = masking
    vault = Vault(all_texts(body), hash_key=b"k")
    from trustproxy.doors.masking import IdentityMap, mask_canonical

    idmap = IdentityMap()
    mask_canonical(body, policy, detector, vault, "", idmap)
    return json.dumps(body, ensure_ascii=False), \
        lambda text: vault.restore(text) + "\n" + "\n".join(idmap.originals.values())


@pytest.mark.parametrize("door", ["anthropic", "responses"])
def test_canary_masked_in_every_slot_and_restored(masking, door):
    c = Canaries()
    if door == "anthropic":
        body = am.parse(anthropic_full(c)).to_canonical()
    else:
        body = orr.parse(responses_full(c)).to_canonical()
    sent, restore = _mask(masking, body)
    leaked = {where for where, value in c.planted.items() if value in sent}
    dropped = {where for where in c.planted if "dropped" in where}
    assert not (leaked & dropped), "a dropped field was forwarded"
    assert not leaked, f"planted values reached the provider from: {sorted(leaked)}"
    back = restore(sent)
    for where, value in c.planted.items():
        if where not in dropped:
            assert value in back, where


@pytest.mark.parametrize("door", ["anthropic", "responses"])
def test_canary_no_gap_left(masking, door):
    c = Canaries()
    body = am.parse(anthropic_full(c)).to_canonical() if door == "anthropic" else \
        orr.parse(responses_full(c)).to_canonical()
    sent, _ = _mask(masking, body)
    assert not [w for w, v in c.planted.items() if v in sent]


# -- to_canonical shapes ------------------------------------------------------------------------

def test_anthropic_to_canonical_order_and_mapping():
    body = am.parse({
        "model": "m", "max_tokens": 10, "system": "sys", "stop_sequences": ["END"], "top_k": 5,
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "text", "text": "a"},
                                              {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]},
            {"role": "user", "content": [{"type": "text", "text": "more"},
                                         {"type": "tool_result", "tool_use_id": "t1", "content": "r"}]}]}).to_canonical()
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x": 1}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "r"}
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"] and body["max_tokens"] == 10 and "top_k" not in body
    assert body["tools"][0]["function"]["parameters"] == {"type": "object"}


def test_responses_to_canonical_merges_calls_into_one_assistant_turn():
    body = orr.parse({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
        {"type": "function_call_output", "call_id": "c2", "output": "2"}],
        "max_output_tokens": 20, "text": {"format": {"type": "json_object"}},
        "reasoning": {"effort": "low"}}).to_canonical()
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "tool", "tool"]
    assert body["messages"][1]["content"] == "let me"
    assert [c["id"] for c in body["messages"][1]["tool_calls"]] == ["c1", "c2"]
    assert body["max_tokens"] == 20 and body["response_format"] == {"type": "json_object"}
    assert body["reasoning_effort"] == "low"


# -- refusals and strict parsing -----------------------------------------------------------------

A_OK: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
R_OK: dict[str, Any] = {"model": "m", "input": "hi"}


@pytest.mark.parametrize("patch, code", [
    ({"stream": "yes"}, None),
    ({"max_tokens": "5"}, None),
    ({"temperature": float("nan")}, None),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}]}, None),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, None),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "unsupported_tool"),
    ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "unsupported_server_state"),
    ({"container": "cont_1"}, "unsupported_server_state"),
    ({"api_base": "http://evil"}, "forbidden_field"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]}, None),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": []}]}]},
     None),
])
def test_anthropic_refusals(patch, code):
    with pytest.raises(InvalidRequest) as ei:
        am.parse({**A_OK, **patch})
    assert ei.value.status == 400
    if code:
        assert ei.value.code == code
    assert "evil" not in ei.value.message


def test_anthropic_image_refusal_is_explained():
    with pytest.raises(InvalidRequest) as ei:
        am.parse({**A_OK, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})
    assert "image" in ei.value.message and "refused" in ei.value.message


@pytest.mark.parametrize("patch, code", [
    ({"previous_response_id": "resp_1"}, "unsupported_server_state"),
    ({"conversation": "conv_1"}, "unsupported_server_state"),
    ({"background": True}, "unsupported_server_state"),
    ({"prompt": {"id": "pmpt_1"}}, "unsupported_server_state"),
    ({"store": True}, "unsupported_server_state"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "unsupported_server_state"),
    ({"tools": [{"type": "web_search_preview"}]}, "unsupported_tool"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "unsupported_tool"),
    ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "unsupported_tool"),
    ({"tools": [{"type": "computer_use_preview"}]}, "unsupported_tool"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "unsupported_item"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, None),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, None),
    ({"include": ["message.output_text.logprobs"]}, None),
    ({"stream": "yes"}, None),
    ({"temperature": float("inf")}, None),
    ({"input": 5}, None),
    ({"base_url": "http://evil"}, "forbidden_field"),
])
def test_responses_refusals(patch, code):
    with pytest.raises(InvalidRequest) as ei:
        orr.parse({**R_OK, **patch})
    assert ei.value.status == 400
    if code:
        assert ei.value.code == code


def test_responses_store_allowed_only_on_marked_routes():
    assert orr.parse({**R_OK, "store": False}).store is False
    req = orr.parse({**R_OK, "store": True}, allow_server_state=True)
    assert req.to_canonical(forward_store=True)["store"] is True
    with pytest.raises(InvalidRequest):  # even then: stored responses cannot be screened
        orr.parse({**R_OK, "previous_response_id": "resp_1"}, allow_server_state=True)


def test_dropped_fields_never_forwarded():
    body = am.parse({**A_OK, "thinking": {"type": "enabled", "budget_tokens": 1024},
                     "metadata": {"user_id": "u-1"}, "service_tier": "auto", "unknown": "x"}).to_canonical()
    assert set(body) == {"model", "messages", "stream", "max_tokens"}
    body = orr.parse({**R_OK, "metadata": {"a": "b"}, "user": "u", "include": ["reasoning.encrypted_content"],
                      "unknown": "x", "truncation": "auto"}).to_canonical()
    assert set(body) == {"model", "messages", "stream"}


def test_error_shapes():
    body = am.error_body(InvalidRequest("bad"))
    assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    TypeAdapter(am.StreamEvent).validate_python(body)
    assert am.error_body(UpstreamError("x", status=503))["error"]["type"] == "overloaded_error"
    assert am.error_body(UpstreamError("x", status=429))["error"]["type"] == "rate_limit_error"
    assert am.error_body(UpstreamError("x", status=502))["error"]["type"] == "api_error"


# -- replies: non-streamed and every split point of a stream ----------------------------------

TEXT = "Hi Jöhn, ✓ done: {\"ok\": true}"
ARGS = ['{"to": "a@b.c", "n": [1, 2]}', '{"q": "ü\\"x"}']


def completion(text: str = TEXT, args: list[str] = ARGS, finish: str = "tool_calls") -> dict[str, Any]:
    calls = [{"id": f"call_{k}", "type": "function", "function": {"name": f"tool{k}", "arguments": a}}
             for k, a in enumerate(args)]
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = calls
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}


def chunks_split(text: str, args: list[str], cut: int, finish: str = "tool_calls",
                 tail: bool = False) -> list[dict[str, Any]]:
    """Canonical chunks with the text split at ``cut`` and each argument string split at ``cut``.
    ``tail``: the last text piece and argument tails come after the tool calls (as the
    response screen releases what it held back when the choice finishes)."""
    def ch(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                "finish_reason": finish_reason}]}
    t1, t2 = text[:cut], text[cut:]
    out = [ch({"role": "assistant"})]
    if t1:
        out.append(ch({"content": t1}))
    if t2 and not tail:
        out.append(ch({"content": t2}))
    tails = []
    for k, a in enumerate(args):
        a1, a2 = a[:cut], a[cut:]
        out.append(ch({"tool_calls": [{"index": k, "id": f"call_{k}", "type": "function",
                                       "function": {"name": f"tool{k}", "arguments": a1}}]}))
        if a2 and not tail:
            out.append(ch({"tool_calls": [{"index": k, "function": {"arguments": a2}}]}))
        elif a2:
            tails.append({"index": k, "function": {"arguments": a2}})
    if tail:
        delta: dict[str, Any] = {"content": t2} if t2 else {}
        if tails:
            delta["tool_calls"] = tails
        out.append(ch(delta))
    out.append(ch({}, finish))
    out.append({"object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})
    return out


def parse_sse(data: bytes) -> list[dict[str, Any]]:
    events = []
    for block in data.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        ev = json.loads(lines["data"])
        assert lines["event"] == ev["type"]
        events.append(ev)
    return events


def accumulate_anthropic(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client rebuilds from the events, checking the protocol's order on the way."""
    adapter = TypeAdapter(am.StreamEvent)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    msg = dict(events[0]["message"], content=[])
    bufs: dict[int, str] = {}
    open_index = None
    for ev in events:
        adapter.validate_python(ev)
        if ev["type"] == "content_block_start":
            assert open_index is None and ev["index"] == len(msg["content"])
            open_index = ev["index"]
            msg["content"].append(dict(ev["content_block"]))
        elif ev["type"] == "content_block_delta":
            assert ev["index"] == open_index
            block = msg["content"][ev["index"]]
            if ev["delta"]["type"] == "text_delta":
                block["text"] += ev["delta"]["text"]
            else:
                bufs[ev["index"]] = bufs.get(ev["index"], "") + ev["delta"]["partial_json"]
        elif ev["type"] == "content_block_stop":
            assert ev["index"] == open_index
            open_index = None
        elif ev["type"] == "message_delta":
            msg["stop_reason"] = ev["delta"]["stop_reason"]
            msg["usage"] = ev["usage"]
    for i, buf in bufs.items():
        msg["content"][i]["input"] = json.loads(buf)
    return msg


def accumulate_responses(events: list[dict[str, Any]]) -> dict[str, Any]:
    adapter = TypeAdapter(orr.StreamEvent)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    items: list[dict[str, Any]] = []
    done: set[int] = set()
    for ev in events:
        adapter.validate_python(ev)
        t = ev["type"]
        if t == "response.output_item.added":
            assert ev["output_index"] == len(items) and all(i in done for i in range(len(items)))
            items.append(dict(ev["item"], **({"content": []} if ev["item"]["type"] == "message" else {})))
        elif t == "response.content_part.added":
            items[ev["output_index"]]["content"].append(dict(ev["part"]))
        elif t == "response.output_text.delta":
            assert ev["output_index"] not in done
            items[ev["output_index"]]["content"][ev["content_index"]]["text"] += ev["delta"]
        elif t == "response.output_text.done":
            assert items[ev["output_index"]]["content"][ev["content_index"]]["text"] == ev["text"]
        elif t == "response.function_call_arguments.delta":
            assert ev["output_index"] not in done
            items[ev["output_index"]]["arguments"] += ev["delta"]
        elif t == "response.function_call_arguments.done":
            assert items[ev["output_index"]]["arguments"] == ev["arguments"]
        elif t == "response.output_item.done":
            done.add(ev["output_index"])
    final = events[-1]
    assert final["type"] in ("response.completed", "response.incomplete")
    assert len(done) == len(items)
    return {"streamed": items, "final": final["response"]}


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "".join(b.get("text", "") for b in blocks if b["type"] == "text")


@pytest.mark.parametrize("tail", [False, True])
@pytest.mark.parametrize("cut", range(0, max(len(TEXT), *map(len, ARGS)) + 1))
def test_anthropic_stream_equals_message_at_every_split(cut, tail):
    whole = am.encode_message(completion(), "m")
    TypeAdapter(am.MessageResponse).validate_python(whole)
    enc = am.StreamEncoder("m")
    data = b"".join(enc.chunk(c) for c in chunks_split(TEXT, ARGS, cut, tail=tail)) + enc.end()
    got = accumulate_anthropic(parse_sse(data))
    assert [b["type"] for b in got["content"]] == [b["type"] for b in whole["content"]] == \
        ["text", "tool_use", "tool_use"]
    assert _texts(got["content"]) == _texts(whole["content"]) == TEXT
    assert [b["input"] for b in got["content"][1:]] == [b["input"] for b in whole["content"][1:]] == \
        [json.loads(a) for a in ARGS]
    assert [b["name"] for b in got["content"][1:]] == ["tool0", "tool1"]
    assert got["stop_reason"] == whole["stop_reason"] == "tool_use"
    assert got["usage"] == whole["usage"] == {"input_tokens": 7, "output_tokens": 5}


@pytest.mark.parametrize("tail", [False, True])
@pytest.mark.parametrize("cut", range(0, max(len(TEXT), *map(len, ARGS)) + 1))
def test_responses_stream_equals_response_at_every_split(cut, tail):
    whole = orr.encode_response(completion(), "m")
    TypeAdapter(orr.ResponseObject).validate_python(whole)
    enc = orr.StreamEncoder("m")
    data = b"".join(enc.chunk(c) for c in chunks_split(TEXT, ARGS, cut, tail=tail)) + enc.end()
    got = accumulate_responses(parse_sse(data))
    for items in (got["streamed"], got["final"]["output"]):
        assert [i["type"] for i in items] == [i["type"] for i in whole["output"]] == \
            ["message", "function_call", "function_call"]
        assert items[0]["content"][0]["text"] == whole["output"][0]["content"][0]["text"] == TEXT
        assert [i["arguments"] for i in items[1:]] == [i["arguments"] for i in whole["output"][1:]] == ARGS
        assert [i["call_id"] for i in items[1:]] == ["call_0", "call_1"]
    assert got["final"]["status"] == whole["status"] == "completed"
    assert got["final"]["usage"] == whole["usage"]


@pytest.mark.parametrize("finish, status, stop", [("stop", "completed", "end_turn"),
                                                  ("length", "incomplete", "max_tokens"),
                                                  ("content_filter", "incomplete", "refusal")])
def test_finish_reasons(finish, status, stop):
    r = orr.encode_response(completion(args=[], finish=finish), "m")
    assert r["status"] == status
    assert am.encode_message(completion(args=[], finish=finish), "m")["stop_reason"] == stop
    enc = orr.StreamEncoder("m")
    data = b"".join(enc.chunk(c) for c in chunks_split(TEXT, [], 3, finish=finish)) + enc.end()
    assert parse_sse(data)[-1]["response"]["status"] == status


def test_stream_errors_end_in_the_door_shape():
    from trustproxy.errors import UpstreamError

    err = UpstreamError("The provider's stream broke off.", status=502, code="upstream_stream_broken")
    enc = am.StreamEncoder("m")
    events = parse_sse(enc.chunk(chunks_split("abc", [], 1)[1]) + enc.error(err))
    assert events[0]["type"] == "message_start" and events[-1] == am.error_body(err)
    enc2 = orr.StreamEncoder("m")
    events = parse_sse(enc2.chunk(chunks_split("abc", [], 1)[1]) + enc2.error(err))
    for ev in events:
        TypeAdapter(orr.StreamEvent).validate_python(ev)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "upstream_stream_broken", "message": err.message}


def test_tool_arguments_that_are_not_an_object_fail_visibly():
    with pytest.raises(UpstreamError):
        am.encode_message(completion(args=["[1, 2]"]), "m")
