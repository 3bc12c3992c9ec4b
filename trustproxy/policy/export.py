"""The policy schema for editors (JSON Schema) and for people (a Markdown reference).

``policies/policy.schema.json`` is generated here and shipped; each shipped policy points its
editor at it with ``# yaml-language-server: $schema=./policy.schema.json``. The reference
tables in ``docs/policies.md`` sit between two markers and are regenerated the same way.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trustproxy.policy.schema import Policy

SCHEMA_ID = "https://trustproxy.dev/policy.schema.json"
DOC_BEGIN = "<!-- BEGIN GENERATED SCHEMA REFERENCE (python -m trustproxy.policy.export --docs docs/policies.md) -->"
DOC_END = "<!-- END GENERATED SCHEMA REFERENCE -->"


ENTITY_TYPE_PATTERN = "^[A-Z][A-Z0-9_]*$"
# (model, field, where the type string sits in that field's schema)
_NAME_FIELDS = (("EntityRule", "type", ()), ("OutputPIIConfig", "entities", ("items",)),
                ("RetentionConfig", "require_zero_data_retention_for", ("items",)),
                ("GoldenExpect", "detected", ("anyOf", 0, "items")),
                ("GoldenExpect", "actions", ("anyOf", 0, "propertyNames")))


def entity_type_schema(language: str = "en") -> dict[str, Any]:
    """``$defs.EntityType``: the detector's names (so editors complete them), or a custom type."""
    from trustproxy.policy.registry import known_entity_names

    return {"title": "Entity type", "description": (
        "A type the detector reports (listed; for language '" + language + "'), or the type of one "
        "of this policy's custom_recognizers (capitals, digits and _)."),
        "anyOf": [{"enum": sorted(known_entity_names(language))},
                  {"type": "string", "pattern": ENTITY_TYPE_PATTERN}]}


def policy_json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["EntityType"] = entity_type_schema()
    ref = {"$ref": "#/$defs/EntityType"}
    for model, name, path in _NAME_FIELDS:
        node: Any = defs[model]["properties"][name]
        for step in path[:-1]:
            node = node[step]
        if path:
            node[path[-1]] = dict(ref)
        else:
            desc = node.get("description")
            defs[model]["properties"][name] = {**ref, **({"description": desc} if desc else {})}
    defs["CustomRecognizer"]["properties"]["type"]["pattern"] = ENTITY_TYPE_PATTERN
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "trustproxy policy", **{k: v for k, v in schema.items() if k != "title"}}


def schema_text() -> str:
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(schema_text(), encoding="utf-8")


# ---- Markdown reference ----------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return {str: "text", float: "number", int: "whole number", bool: "true/false"}.get(tp, str(tp))


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.append(tp)
            for f in tp.model_fields.values():
                visit(f.annotation)
        for a in typing.get_args(tp):
            visit(a)

    visit(root)
    return seen


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see section"
        return f"`{json.dumps(value)}`"
    value = field.default
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{json.dumps(value)}`"


def schema_reference_markdown() -> str:
    parts = []
    for model in _models(Policy):
        doc = (model.__doc__ or "").strip().splitlines()
        title = "Policy (the file)" if model is Policy else model.__name__
        parts.append(f"### {title}\n")
        if doc and model is not Policy:
            parts.append(doc[0] + "\n")
        parts.append("| field | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, f in model.model_fields.items():
            desc = re.sub(r"\s+", " ", f.description or "").replace("|", "\\|")
            parts.append(f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
        parts.append("")
    return "\n".join(parts)


def update_docs(path: str | Path) -> bool:
    """Rewrite the generated section of ``path``; True if it changed."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    new = text[:start] + "\n\n" + schema_reference_markdown() + "\n" + text[end:]
    if new != text:
        p.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m trustproxy.policy.export")
    ap.add_argument("--schema", default=None, help="write the JSON Schema here")
    ap.add_argument("--docs", default=None, help="refresh the reference section of this Markdown file")
    args = ap.parse_args(argv)
    if args.schema:
        write_schema(args.schema)
    if args.docs:
        update_docs(args.docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
