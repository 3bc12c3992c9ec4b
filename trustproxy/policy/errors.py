"""Turn YAML and pydantic problems into sentences a compliance officer can act on.

Each problem is one line: ``file:line:col field.path[2].name: what is wrong, what is allowed``.
Values are quoted only when they are short words from the policy file itself (an unknown key,
a mistyped action); never free text, regexes or deny-list entries. Each problem also has a
*safe* form (:meth:`Problem.safe`) for the server's sinks (logs, ``/readyz``, metrics): the file
name, line, column and field, and a message that quotes no value from the file at all.

    PolicyError (trustproxy.errors)      problems: list[str], full lines for the CLI
    └── PolicyFileError                  details: list[Problem]; .safe_problems() for sinks
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.error import Mark

from trustproxy.errors import PolicyError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file."""

    file: str
    line: int | None  # 1-based
    col: int | None  # 1-based
    field: str  # e.g. "entities[3].action"; "" for the whole file
    message: str
    safe_message: str | None = None  # the message without any value from the file; None: same

    def __str__(self) -> str:
        return self._render(self.file, self.message)

    def safe(self) -> str:
        """For logs and ``/readyz``: the file's name (not its path), line, column, field, and a
        message that quotes nothing from the file."""
        return self._render(os.path.basename(self.file) or self.file,
                            self.message if self.safe_message is None else self.safe_message)

    def _render(self, file: str, message: str) -> str:
        where = file if self.line is None else f"{file}:{self.line}:{self.col}"
        return f"{where} {self.field}: {message}" if self.field else f"{where}: {message}"


class PolicyFileError(PolicyError):
    """Problems in policy files, kept structured so each sink can choose its rendering."""

    def __init__(self, details: list[Problem]) -> None:
        lines: list[str] = []
        for p in details:
            if str(p) not in lines:
                lines.append(str(p))
        super().__init__(lines)
        self.details = details

    def safe_problems(self) -> list[str]:
        out: list[str] = []
        for p in self.details:
            if p.safe() not in out:
                out.append(p.safe())
        return out


def safe_problems(exc: PolicyError) -> list[str]:
    """The value-free lines of any ``PolicyError`` (a plain one says only how many problems)."""
    if isinstance(exc, PolicyFileError):
        return exc.safe_problems()
    return [f"{len(exc.problems)} problem(s) in the policies (run `trustproxy policy check`)"]


def format_loc(loc: Loc) -> str:
    """``("entities", 3, "action")`` -> ``entities[3].action``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class MarkIndex:
    """Where each value (and each mapping key) of a YAML document starts."""

    def __init__(self) -> None:
        self.values: dict[Loc, Mark] = {}
        self.keys: dict[Loc, Mark] = {}

    def find(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        """1-based line/col of ``loc`` (its key if ``key``), else of its nearest ancestor."""
        if key and loc in self.keys:
            m = self.keys[loc]
            return m.line + 1, m.column + 1
        for n in range(len(loc), -1, -1):
            m = self.values.get(loc[:n])
            if m is not None:
                return m.line + 1, m.column + 1
        return None, None


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest allowed name to a misspelt one, if any is close."""
    hits = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return hits[0] if hits else None


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping found at ``loc``."""
    tp: Any = root
    for part in loc:
        tp = _strip_optional(tp)
        origin = typing.get_origin(tp)
        if origin in (list, tuple, set, frozenset):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            if field is None:
                return None
            tp = field.annotation
        else:
            return None
    tp = _strip_optional(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (bool, int, float)) or value is None:
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return f"a {_kind(value)}"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def _expected_words(expected: str) -> str:
    words = re.findall(r"'([^']*)'", expected)
    return ", ".join(words) if words else expected


_TYPE_WORDS = {
    "string_type": "text", "float_type": "a number", "float_parsing": "a number",
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a mapping (key: value lines)", "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
}


def describe_error(err: Any, root: type[BaseModel]) -> tuple[str, str, bool]:
    """(message, safe message, points_at_key) for one pydantic error dict. The safe message
    quotes no value from the file (schema field names and allowed words are not values)."""
    typ = err["type"]
    loc: Loc = tuple(err["loc"])
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        key = str(loc[-1])
        model = model_at(root, loc[:-1])
        allowed = list(model.model_fields) if model else []
        hint = suggest(key, allowed)
        if hint:
            return f"unknown field {key!r} (did you mean {hint!r}?)", f"unknown field (did you mean {hint!r}?)", True
        tail = f"(allowed: {', '.join(allowed)})"
        return f"unknown field {key!r} {tail}", f"unknown field {tail}", True
    if typ == "missing":
        return "required field is missing", "required field is missing", False
    if typ in ("enum", "literal_error"):
        allowed_words = _expected_words(str(ctx.get("expected", "")))
        return f"{_quote(value)} is not one of {allowed_words}", f"not one of {allowed_words}", False
    if typ in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[typ]}, got {_quote(value)}", f"must be {_TYPE_WORDS[typ]}", False
    if typ in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "?")
        words = {"greater_than_equal": "at least", "greater_than": "more than",
                 "less_than_equal": "at most", "less_than": "less than"}[typ]
        return f"must be {words} {bound}, got {_quote(value)}", f"must be {words} {bound}", False
    msg = str(err.get("msg", typ))
    return msg[:1].lower() + msg[1:], f"invalid value ({typ})", False


def validation_problems(exc: ValidationError, root: type[BaseModel], file: str,
                        marks: MarkIndex) -> list[Problem]:
    """One ``Problem`` per pydantic error, located in the YAML file."""
    out = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        message, safe, at_key = describe_error(err, root)
        line, col = marks.find(loc, key=at_key)
        out.append(Problem(file, line, col, format_loc(loc), message, None if safe == message else safe))
    return out


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Files in first-seen order, lines in order within a file."""
    order = {f: i for i, f in reversed(list(enumerate(p.file for p in problems)))}
    return sorted(problems, key=lambda p: (order[p.file], p.line or 0, p.col or 0))


