"""The corpus' records and the one normalisation used to decide whether a value got through.

``fold`` is deliberately blunt: JSON escapes decoded, NFKD, combining marks, control and format
characters, punctuation and spaces dropped, case folded. A value counts as leaked when the fold
of one of its probes occurs in the fold of what the provider received: a card whose digits reached
the provider leaked, however they were spaced, split or decorated.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

_ESCAPES = re.compile(r"\\u([0-9a-fA-F]{4})|\\([nrtbf\"\\/])")
_SIMPLE = {"n": " ", "r": " ", "t": " ", "b": " ", "f": " "}


def _unescape(m: re.Match[str]) -> str:
    if m.group(1):
        return chr(int(m.group(1), 16))
    ch = m.group(2)
    return _SIMPLE.get(ch, ch)


def fold(text: str) -> str:
    """Letters and digits only, compatibility-decomposed and case-folded."""
    text = _ESCAPES.sub(_unescape, text)
    text = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


@dataclass(frozen=True)
class Planted:
    """One value planted in a request, with everything the report groups by."""

    id: str
    category: str        # PERSON, EMAIL, ..., AWS_ACCESS_KEY, ...
    subtype: str         # scheme / brand / locale detail (us.ssn, mastercard2, ghp, ...)
    locale: str
    domain: str
    placement: str       # system, user, history, tool_call_args, tool_result, content_parts, name
    evasion: str         # none, line_break, crlf, tab, control_char, ...
    format: str          # prose, line, csv, json_in_text, json_escaped, json_key_label, ...
    surface: str         # the value exactly as the user wrote it (decoded; a JSON number as digits)
    value: str           # the canonical value, before any evasion
    probes: tuple[str, ...]  # folded forms whose presence upstream means the value leaked


@dataclass
class Case:
    """One chat request: the OpenAI body the client sends and what was planted in it."""

    id: str
    kind: str            # "pii" or "clean"
    domain: str
    locale: str
    placement: str
    body: dict[str, Any]
    planted: list[Planted] = field(default_factory=list)
    clean_kind: str = ""  # for clean cases: code, hashes, uuids, versions, products, prose, ...

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _leaves(obj: Any, out: list[str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(str(k))
            _leaves(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _leaves(v, out)
    elif isinstance(obj, bool) or obj is None:
        return
    elif isinstance(obj, (int, float)):
        out.append(str(obj))
    elif isinstance(obj, str):
        out.append(obj)


def message_strings(body: dict[str, Any]) -> list[str]:
    """Every text a provider reads in a chat body, tool-call arguments decoded (keys, strings and
    numbers), in message order."""
    out: list[str] = []
    for msg in body.get("messages") or []:
        if msg.get("name"):
            out.append(str(msg["name"]))
        content = msg.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            args = fn.get("arguments") or ""
            try:
                decoded = json.loads(args)
            except (TypeError, ValueError):
                out.append(str(args))
            else:
                _leaves(decoded, out)
    for tool in body.get("tools") or []:
        _leaves((tool.get("function") or {}).get("description"), out)
    return out


def folded_request(body: dict[str, Any]) -> str:
    return "\x00".join(fold(s) for s in message_strings(body))
