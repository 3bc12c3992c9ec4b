"""Field roles, declared once on each front door's pydantic models.

Every string-bearing field of a door's request or response model says what it is:

- ``Text(kind)``: a text slot the guards screen (request) or screen and restore (response).
  Kinds: ``prose`` (free text), ``json-string`` (a string holding JSON, e.g. tool-call
  arguments), ``json-object`` (a JSON value whose every string and number is screened, e.g. an
  Anthropic ``tool_use.input``), ``name`` (a participant's name: a policy decides whether it is
  personal data), ``json-schema`` (a tool's parameter schema: descriptions, enums, defaults and
  examples are screened, keys that are JSON-Schema keywords are not).
- ``Opaque(reason)``: not screened, with the reason: an id the proxy does not forward as text,
  an enum or a format the proxy validates itself, a model name it routes on.

Literal/enum fields are opaque by construction (the proxy validates their value). The markers
put an ``x-trustproxy`` key into the JSON Schema, so the conformance test
(``undeclared_string_leaves``) works on ``model_json_schema()`` alone: any string leaf (or
untyped value) that is neither inside a declared slot nor opaque is a failing test, so a new
field cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

MARK = "x-trustproxy"


class Kind(str, Enum):
    PROSE = "prose"
    JSON_STRING = "json-string"
    JSON_OBJECT = "json-object"
    NAME = "name"
    JSON_SCHEMA = "json-schema"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class Text:
    """A text slot: ``Annotated[str, Text(Kind.PROSE)]``."""

    kind: Kind = Kind.PROSE

    def __get_pydantic_json_schema__(self, schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out = handler.resolve_ref_schema(out) if "$ref" in out else out
        out[MARK] = f"slot:{self.kind.value}"
        return out


@dataclass(frozen=True)
class Opaque:
    """Not screened: ``Annotated[str, Opaque("id")]``; the reason is for reviewers."""

    reason: str

    def __get_pydantic_json_schema__(self, schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out = handler.resolve_ref_schema(out) if "$ref" in out else out
        out[MARK] = f"opaque:{self.reason}"
        return out


def role_of(metadata: list[Any]) -> Text | Opaque | None:
    """The role declared in a field's ``Annotated`` metadata, if any."""
    for m in metadata:
        if isinstance(m, (Text, Opaque)):
            return m
    return None


def undeclared_string_leaves(schema: dict[str, Any]) -> list[str]:
    """JSON-Schema paths of string (or untyped) leaves with no declared role.

    A node marked ``x-trustproxy`` covers its whole subtree (a JSON-object slot is screened as a
    whole). ``enum``/``const`` strings are validated by the proxy and need no mark.
    """
    defs = schema.get("$defs", {})
    found: list[str] = []
    seen: set[tuple[str, str]] = set()

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if MARK in node:
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if (name, path.split(".")[-1]) in seen:
                return
            seen.add((name, path.split(".")[-1]))
            walk(defs.get(name, {}), path)
            return
        if "enum" in node or "const" in node:
            return
        branches = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, [])]
        for i, b in enumerate(branches):
            walk(b, path)
        typ = node.get("type")
        types = set(typ) if isinstance(typ, list) else {typ} if typ else set()
        if "string" in types:
            found.append(path)
        if "object" in types or "properties" in node:
            for key, sub in (node.get("properties") or {}).items():
                walk(sub, f"{path}.{key}")
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                walk(extra, f"{path}.*")
            elif extra is True:
                found.append(f"{path}.* (free-form keys)")
        if "array" in types:
            walk(node.get("items"), f"{path}[]")
            for i, p in enumerate(node.get("prefixItems") or []):
                walk(p, f"{path}[{i}]")
        if not types and not branches and "properties" not in node:
            found.append(f"{path} (untyped)")

    walk(schema, "$")
    return sorted(set(found))
