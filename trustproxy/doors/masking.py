"""From declared slots to what the masker screens: the adapter between doors and ``pii.masker``.

The walker yields slots of every kind; ``Masker.mask_slots`` knows ``text``, ``json`` and
``name``. This module maps one onto the other, per request:

- ``prose`` -> ``text`` (same group), ``json-string`` -> ``json``.
- ``json-object`` (e.g. a tool's ``input`` object): every string value, at any depth, is a
  ``text`` slot of its own; keys and numbers are structure and stay.
- ``json-schema`` (tool parameters, ``response_format`` schemas): every string of the schema
  is a ``text`` slot (``description``, ``title``, ``enum``, ``const``, ``default``,
  ``examples``, ``pattern`` ...) except the values of structural keywords (``type``,
  ``format``, ``$ref``, ``$schema`` ...); property names and ``required`` entries are the
  parameter names the model writes back, and stay.
- ``name`` (a participant's name), by the policy's ``pii.participant_names``: ``person`` (the
  whole value is a PERSON), ``screen`` (detected like prose), ``opaque`` (not screened: agent
  names such as ``docs_helper``). A placeholder is written ``[PERSON_1]``: OpenAI forbids
  ``<``/``>``/spaces in names, and the restorer puts ``[PERSON_1]`` back like ``<PERSON_1>``.
- ``identifier`` (function names, tool-call ids, ``user``): detected on the identifier with
  ``_`` read as a space (a word separator); if anything is replaced, the result is made identifier-safe
  (``lookup_PERSON_1``) and kept in the request's ``IdentityMap``, which restores the exact
  value wherever the reply names it (a tool call's ``function.name``). The same value always
  gets the same replacement, so an assistant call and the tool message that answers it still
  match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from trustproxy.doors.fields import Kind
from trustproxy.doors.walk import Slot, walk
from trustproxy.errors import PolicyBlocked

ParticipantNames = Literal["person", "screen", "opaque"]

SCHEMA_STRUCTURAL = frozenset({
    "type", "format", "$ref", "$schema", "$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
    "contentEncoding", "contentMediaType", "required",
})
SCHEMA_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
                              "dependentRequired"})
_IDENT_SEPS = re.compile(r"_")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_BARE_KEY = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_[1-9][0-9]*$")


@dataclass
class IdentityMap:
    """Per request: identifier-safe replacement -> the caller's original identifier."""

    originals: dict[str, str] = field(default_factory=dict)

    def record(self, replaced: str, original: str) -> None:
        self.originals.setdefault(replaced, original)

    def restore(self, value: str) -> str:
        return self.originals.get(value, value)

    def clear(self) -> None:
        self.originals.clear()


class _KeyedSlot(Slot):
    """A slot whose ``set`` post-processes what the masker wrote."""

    def __init__(self, base: Slot, kind: str, shown: str, after: Any) -> None:
        super().__init__(base.path, kind, base.container, base.key, base.group, base.loc)
        self._shown = shown
        self._after = after

    def get(self) -> str:
        return self._shown

    def set(self, value: Any) -> None:
        if value != self._shown:
            self.container[self.key] = self._after(value)


def _identifier_slot(slot: Slot, idmap: IdentityMap) -> Slot:
    original = slot.get()

    def after(masked: str) -> str:
        safe = _UNSAFE.sub("_", masked).strip("_")[:64] or "value"
        idmap.record(safe, original)
        return safe

    return _KeyedSlot(slot, "text", _IDENT_SEPS.sub(" ", original), after)


def _name_slot(slot: Slot, mode: ParticipantNames) -> Slot | None:
    if mode == "opaque":
        return None
    original = slot.get()

    def after(masked: str) -> str:
        if _BARE_KEY.match(masked):  # the masker's identifier-safe PERSON_1
            return f"[{masked}]"
        return re.sub(r"\s+", "_", masked.replace("<", "[").replace(">", "]"))

    return _KeyedSlot(slot, "name" if mode == "person" else "text", original, after)


def _json_value_slots(container: Any, key: Any, path: str) -> Iterator[Slot]:
    value = container[key]
    if isinstance(value, str):
        yield Slot(path, "text", container, key, path)
    elif isinstance(value, list):
        for i in range(len(value)):
            yield from _json_value_slots(value, i, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k in list(value):
            yield from _json_value_slots(value, k, f"{path}.{k}")


def _schema_slots(node: Any, path: str) -> Iterator[Slot]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, str):
                yield Slot(f"{path}[{i}]", "text", node, i, f"{path}[{i}]")
            else:
                yield from _schema_slots(item, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for k, v in node.items():
        p = f"{path}.{k}"
        if k in SCHEMA_STRUCTURAL:
            continue
        if k in SCHEMA_NAME_MAPS and isinstance(v, dict):
            for name, sub in v.items():
                yield from _schema_slots(sub, f"{p}.{name}")
        elif k in ("enum", "const", "default", "examples", "example"):
            yield from _json_value_slots(node, k, p)
        elif isinstance(v, str):
            yield Slot(p, "text", node, k, p)
        else:
            yield from _schema_slots(v, p)


def masker_slots(slots: Iterable[Slot], *, participant_names: ParticipantNames = "person",
                 idmap: IdentityMap | None = None) -> Iterator[Slot]:
    """The masker's view (kinds ``text`` / ``json`` / ``name``, string values) of door slots."""
    ids = idmap if idmap is not None else IdentityMap()
    for s in slots:
        if s.kind == Kind.PROSE.value:
            yield Slot(s.path, "text", s.container, s.key, s.group, s.loc)
        elif s.kind == Kind.JSON_STRING.value:
            yield Slot(s.path, "json", s.container, s.key, s.group, s.loc)
        elif s.kind == Kind.IDENTIFIER.value:
            yield _identifier_slot(s, ids)
        elif s.kind == Kind.NAME.value:
            slot = _name_slot(s, participant_names)
            if slot is not None:
                yield slot
        elif s.kind == Kind.JSON_OBJECT.value:
            yield from _json_value_slots(s.container, s.key, s.path)
        elif s.kind == Kind.JSON_SCHEMA.value:
            yield from _schema_slots(s.get(), s.path)
        else:  # pragma: no cover - a new Kind must be handled here first
            raise ValueError(f"{s.path}: slot kind {s.kind!r} has no masking rule")


def canonical_slots(body: dict[str, Any]) -> Iterator[Slot]:
    """Door slots of a canonical request: chat completions, or embeddings (``input``)."""
    from trustproxy.doors.embeddings import EmbeddingRequest
    from trustproxy.doors.openai_chat import ChatRequest

    if "messages" in body:
        return walk(ChatRequest, body)
    return walk(EmbeddingRequest, body)


def request_slots(body: dict[str, Any], policy: Any = None, idmap: IdentityMap | None = None) -> list[Slot]:
    """The masker slots of a canonical request under ``policy``'s participant-name rule."""
    mode: ParticipantNames = getattr(getattr(policy, "pii", None), "participant_names", "person")
    return list(masker_slots(canonical_slots(body), participant_names=mode, idmap=idmap))


def mask_canonical(body: dict[str, Any], policy: Any, detector: Any, vault: Any, namespace: str = "",
                   idmap: IdentityMap | None = None, slots: list[Slot] | None = None,
                   languages: dict[str, str | None] | None = None) -> Any:
    """Mask every slot of a canonical request in place (``slots``: from ``request_slots`` of
    the same body, to walk it once); raises ``PolicyBlocked`` naming types only."""
    from trustproxy.pii.masker import Masker

    if slots is None:
        slots = request_slots(body, policy, idmap)
    result = Masker(policy, detector, vault, namespace, languages).mask_slots(slots)
    if result.blocked_types:
        types = ", ".join(sorted(result.blocked_types))
        err = PolicyBlocked(f"The request was blocked by policy '{policy.name}': it contains {types}.")
        err.result = result  # type: ignore[attr-defined]  # types and counts only
        raise err
    return result
