"""The one enumeration of every text-bearing place in a request or a response.

Masking (request) and restoring (response) both walk these slots, so no position can be
forgotten. A slot is a typed handle with a ``path`` for errors and audit (never the text),
a ``kind`` ("text" or "json": tool-call arguments, whose string values are the text), and
``get``/``set`` on the underlying dict.

Slots of one ``group`` share state: request text parts of one message are detected together;
in a response each group (``<choice>:content``, ``<choice>:tool<index>``, ``<choice>:fc``) gets
one filter chain, fed across stream chunks.

Request slots: every message's ``content`` (a string, or each text part of a list), ``name``,
assistant ``tool_calls[].function.arguments`` (and legacy ``function_call.arguments``), tool
results (they are messages with content), tool definitions' descriptions, and embeddings
``input``. Response slots: every choice's ``message.content`` and tool-call arguments (JSON)
or, in stream chunks, ``delta.content`` and ``delta.tool_calls[].function.arguments``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

SlotKind = Literal["text", "json", "name"]


@dataclass
class Slot:
    path: str
    kind: SlotKind
    container: Any
    key: Any
    group: str  # slots of one group (one message's content parts) are detected together

    def get(self) -> str:
        return self.container[self.key]

    def set(self, value: str) -> None:
        self.container[self.key] = value


def _content_slots(obj: dict[str, Any], path: str, group: str) -> Iterator[Slot]:
    content = obj.get("content")
    if isinstance(content, str):
        yield Slot(f"{path}.content", "text", obj, "content", group)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield Slot(f"{path}.content[{j}].text", "text", part, "text", group)


def _tool_call_slots(obj: dict[str, Any], path: str, group_prefix: str) -> Iterator[Slot]:
    """Tool-call arguments (group ``<prefix>tool<index>``) and legacy ``function_call``
    arguments (group ``<prefix>fc``). Stream deltas carry the call's ``index``."""
    for k, call in enumerate(obj.get("tool_calls") or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            yield Slot(f"{path}.tool_calls[{k}].function.arguments", "json", fn, "arguments",
                       f"{group_prefix}tool{call.get('index', k)}")
    fc = obj.get("function_call")
    if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
        yield Slot(f"{path}.function_call.arguments", "json", fc, "arguments", f"{group_prefix}fc")


def iter_request_slots(body: dict[str, Any]) -> Iterator[Slot]:
    """Every text slot of a chat-completions or embeddings request body."""
    for i, msg in enumerate(body.get("messages") or []):
        path = f"messages[{i}]"
        yield from _content_slots(msg, path, path)
        if isinstance(msg.get("name"), str):
            # a participant's name is personal data as a whole; a function message's name is code
            kind: SlotKind = "text" if msg.get("role") in ("tool", "function") else "name"
            yield Slot(f"{path}.name", kind, msg, "name", f"{path}.name")
        yield from _tool_call_slots(msg, path, f"{path}.")
    for k, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("description"), str):
            yield Slot(f"tools[{k}].function.description", "text", fn, "description", f"tools[{k}]")
    if "input" in body:
        inp = body["input"]
        if isinstance(inp, str):
            yield Slot("input", "text", body, "input", "input")
        elif isinstance(inp, list):
            for j, item in enumerate(inp):
                if isinstance(item, str):
                    yield Slot(f"input[{j}]", "text", inp, j, f"input[{j}]")


def iter_response_slots(body: dict[str, Any]) -> Iterator[Slot]:
    """Every text slot of a chat-completions response or stream chunk."""
    for choice in body.get("choices") or []:
        idx = choice.get("index", 0)
        for field in ("message", "delta"):
            obj = choice.get(field)
            if isinstance(obj, dict):
                path = f"choices[{idx}].{field}"
                if isinstance(obj.get("content"), str):
                    yield Slot(f"{path}.content", "text", obj, "content", f"{idx}:content")
                yield from _tool_call_slots(obj, path, f"{idx}:")


def map_json_strings(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to every string value inside a JSON document and re-serialise it.

    Raises ``ValueError`` when ``text`` is not JSON (callers fall back to plain-text handling).
    """
    import json

    doc = json.loads(text)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return fn(node)
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    return json.dumps(walk(doc), ensure_ascii=False)
