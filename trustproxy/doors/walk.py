"""Slots derived from the declaration: one generic walker over a validated door model.

``walk(model_cls, data)`` validates ``data`` (a door's canonical dict: a request body as the
door's model dumps it, or a reply / stream chunk) against ``model_cls`` and yields a ``Slot``
for every string (or JSON value) whose field is declared ``Text(kind)``, in document order.
Nothing is listed by hand: a field's role comes from its ``Annotated`` metadata (or from an
``Annotated[str, Text(...)]`` inside its type, e.g. ``list[Annotated[str, Text()]]``).

- ``Slot.loc`` is the structured location (keys and list positions; for ``Keyed`` lists the
  item's own ``index``), ``Slot.path`` the same as a string for errors and audit (never text).
- ``Slot.group``: the path of the nearest ``Group()`` field above the slot (one message's
  content parts are detected together), else the slot's own path.
- A key in ``data`` that the model does not declare is refused (``UndeclaredField``): a
  canonical dict built by another door cannot smuggle an unscreened field past the guards.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from trustproxy.doors.fields import Group, Keyed, Kind, Opaque, Text

Loc = tuple[str | int, ...]


@dataclass
class Slot:
    """A typed handle on one text-bearing place: ``get``/``set`` on the underlying dict."""

    path: str
    kind: str  # a ``fields.Kind`` value (walker), or the masker's "text" / "json" / "name"
    container: Any
    key: Any
    group: str  # slots of one group (one message's content parts) are detected together
    loc: Loc = ()

    def get(self) -> Any:
        return self.container[self.key]

    def set(self, value: Any) -> None:
        self.container[self.key] = value


class UndeclaredField(ValueError):
    """A canonical dict holds a key its door model does not declare (names the path only)."""


@dataclass(frozen=True)
class _FieldPlan:
    name: str
    key: str
    text: Text | None
    group: bool
    keyed: str | None


def _string_role(annotation: Any, metadata: list[Any]) -> Text | Opaque | None:
    for m in metadata:
        if isinstance(m, (Text, Opaque)):
            return m
    if typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        found = _string_role(args[0], list(args[1:]))
        if found is not None:
            return found
        return None
    for arg in typing.get_args(annotation):
        found = _string_role(arg, [])
        if found is not None:
            return found
    return None


@functools.cache
def _plan(cls: type[BaseModel]) -> tuple[_FieldPlan, ...]:
    out = []
    for name, f in cls.model_fields.items():
        role = _string_role(f.annotation, list(f.metadata))
        keyed = next((m.field for m in f.metadata if isinstance(m, Keyed)), None)
        out.append(_FieldPlan(name=name, key=f.alias or name, text=role if isinstance(role, Text) else None,
                              group=any(isinstance(m, Group) for m in f.metadata), keyed=keyed))
    return tuple(out)


_WHOLE = (Kind.JSON_OBJECT, Kind.JSON_SCHEMA)


def _walk_model(inst: BaseModel, data: Any, path: str, loc: Loc, group: str | None) -> Iterator[Slot]:
    if not isinstance(data, dict):
        raise UndeclaredField(f"{path or 'body'}: not an object")
    plan = _plan(type(inst))
    extra = set(data) - {fp.key for fp in plan}
    if extra:
        raise UndeclaredField(f"{path or 'body'}: a key the door's model does not declare")
    for fp in plan:
        if fp.key not in data:
            continue
        p = f"{path}.{fp.key}" if path else fp.key
        yield from _value(getattr(inst, fp.name), data, fp.key, fp, p, loc + (fp.key,), p if fp.group else group)


def _value(val: Any, container: Any, key: Any, fp: _FieldPlan, path: str, loc: Loc,
           group: str | None) -> Iterator[Slot]:
    data = container[key]
    if data is None:
        return
    if fp.text is not None and fp.text.kind in _WHOLE:
        yield Slot(path, fp.text.kind.value, container, key, group or path, loc)
    elif isinstance(val, BaseModel):
        yield from _walk_model(val, data, path, loc, group)
    elif isinstance(val, str):
        if fp.text is not None:
            yield Slot(path, fp.text.kind.value, container, key, group or path, loc)
    elif isinstance(val, (list, tuple)):
        for i, item in enumerate(val):
            sub = data[i]
            k: str | int = i
            if fp.keyed and isinstance(sub, dict) and isinstance(sub.get(fp.keyed), int):
                k = sub[fp.keyed]
            yield from _value(item, data, i, fp, f"{path}[{k}]", loc + (k,), group)
    elif isinstance(val, dict):
        for k2, item in val.items():
            yield from _value(item, data, k2, fp, f"{path}.{k2}", loc + (k2,), group)


def walk(model_cls: type[BaseModel], data: dict[str, Any]) -> Iterator[Slot]:
    """Every declared text slot of ``data`` (validated against ``model_cls``), in order."""
    inst = model_cls.model_validate(data, strict=False)
    return _walk_model(inst, data, "", (), None)


def walk_instance(inst: BaseModel, data: dict[str, Any]) -> Iterator[Slot]:
    """The same, for ``data`` = ``inst``'s own dump (no second validation)."""
    return _walk_model(inst, data, "", (), None)
