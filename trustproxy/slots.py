"""Every text-bearing place of a canonical request or reply, derived from the doors' declarations.

Nothing here is a hand-kept list: ``doors/walk.py`` walks the door's model (every string field
is declared ``Text(kind)`` or opaque, see ``doors/fields.py``) and ``doors/masking.py`` turns
the declared kinds into what the masker screens. These two functions are the entry points for
the server, the other doors and the playground:

- ``iter_request_slots(body)``: a canonical request (chat completions, or embeddings) ->
  masker slots (kinds ``text`` / ``json`` / ``name``, string values; ``get``/``set`` write back
  into ``body``). Slots of one ``group`` (one message's content parts) are detected together.
- ``iter_response_slots(body)``: a chat completion or stream chunk -> door slots (kinds
  ``prose``, ``json-string``, ``identifier``) with a structured ``loc``
  (``("choices", i, "delta", "tool_calls", k, "function", "arguments")``; stream lists are
  keyed by their items' ``index``, so a location is stable across chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from trustproxy.doors.masking import IdentityMap, ParticipantNames, canonical_slots, masker_slots
from trustproxy.doors.walk import Slot, walk

__all__ = ["Slot", "iter_request_slots", "iter_response_slots", "map_json_strings"]


def iter_request_slots(body: dict[str, Any], *, participant_names: ParticipantNames = "person",
                       idmap: IdentityMap | None = None) -> Iterator[Slot]:
    """Every text slot of a canonical chat-completions or embeddings request body."""
    return masker_slots(canonical_slots(body), participant_names=participant_names, idmap=idmap)


def iter_response_slots(body: dict[str, Any]) -> Iterator[Slot]:
    """Every text slot of a chat-completions reply or stream chunk."""
    from trustproxy.doors.openai_chat import ChatCompletion, ChatCompletionChunk

    chunk = body.get("object") == "chat.completion.chunk" or any(
        isinstance(c, dict) and "delta" in c for c in body.get("choices") or [])
    return walk(ChatCompletionChunk if chunk else ChatCompletion, body)


def map_json_strings(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to every string value inside a JSON document and re-serialise it.

    Raises ``ValueError`` when ``text`` is not JSON (callers fall back to plain-text handling).
    """
    import json

    doc = json.loads(text)

    def walk_doc(node: Any) -> Any:
        if isinstance(node, str):
            return fn(node)
        if isinstance(node, list):
            return [walk_doc(x) for x in node]
        if isinstance(node, dict):
            return {k: walk_doc(v) for k, v in node.items()}
        return node

    return json.dumps(walk_doc(doc), ensure_ascii=False)
