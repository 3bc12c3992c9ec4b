"""What every door shares at the edge: strict JSON reading, steering fields, validation errors.

``loads_strict(raw)`` is the one JSON reader of client bodies: ``NaN``/``Infinity`` (and floats
that overflow to infinity), integers longer than ``MAX_INT_DIGITS`` digits and nesting deeper
than ``MAX_JSON_DEPTH`` are refused with a 400 before any model sees the body. The door's
models are strict (``"stream": "yes"`` is not a boolean), so a refused request never reaches a
provider.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from trustproxy.errors import InvalidRequest

MAX_JSON_DEPTH = 64       # arrays/objects inside each other; a JSON schema rarely needs 10
MAX_INT_DIGITS = 40       # no field of any door needs more (seeds are 64-bit, 20 digits)

STEERING_FIELDS = frozenset({
    "api_base", "base_url", "api_key", "api_version", "extra_headers", "headers", "custom_llm_provider",
    "litellm_params", "mock_response", "mock_tool_calls", "caching", "cache", "fallbacks", "num_retries",
    "timeout", "organization", "deployment_id", "aws_access_key_id", "aws_secret_access_key",
    "aws_region_name", "vertex_project", "vertex_location", "vertex_credentials", "azure_ad_token",
    "input_cost_per_token", "output_cost_per_token", "metadata", "litellm_logging_obj", "proxy_server_request",
    "no-log", "extra_body", "extra_query", "callbacks", "success_callback", "failure_callback", "logger_fn",
})


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 400:
        raise _Refused("a number longer than 400 characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number too large to represent")
    return value


def _depth_ok(doc: Any) -> bool:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


_ESCAPE = re.compile(rb"\\.", re.S)
_JSON_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def _too_deep(raw: bytes | str) -> bool:
    """Whether ``raw`` nests deeper than ``MAX_JSON_DEPTH``, found without parsing it: a body
    nested 100,000 deep made the parser recurse to the interpreter's limit, where any finalizer
    the collector ran failed too. Strings are cut out, then the running depth of the brackets."""
    import numpy as np

    b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if b.count(b"[") + b.count(b"{") <= MAX_JSON_DEPTH:  # most bodies: no scan
        return False
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", _ESCAPE.sub(b"", b) if b"\\" in b else b))
    a = np.frombuffer(brackets, dtype=np.uint8)
    if not a.size:
        return False
    return int(np.cumsum(np.where((a == 0x5B) | (a == 0x7B), 1, -1)).max()) > MAX_JSON_DEPTH


def loads_strict(raw: bytes | str) -> Any:
    """Parse a client body; raises ``InvalidRequest`` (400, ``invalid_json``) naming the rule."""
    if _too_deep(raw):
        raise InvalidRequest(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json")
    try:
        doc = json.loads(raw, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except _Refused as exc:
        raise InvalidRequest(f"The request body is not accepted: {exc}.", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.",
                             code="invalid_json") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    if not _depth_ok(doc):
        raise InvalidRequest(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json")
    return doc


_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _safe_loc(loc: tuple[Any, ...]) -> str:
    """A location naming declared fields and positions only: a dict key is the caller's text
    (``logit_bias`` keys, schema keys), so the location stops before it."""
    parts = list(loc)
    if "[key]" in parts:
        parts = parts[:max(0, parts.index("[key]") - 1)]
    out: list[str] = []
    for x in parts:
        if isinstance(x, int) or (isinstance(x, str) and _FIELD.match(x)):
            out.append(str(x))
        else:
            break
    return ".".join(out) or "body"


# pydantic messages of these types name no input value; any other type gets a message of ours
_SAFE_MESSAGES = frozenset({"missing", "bool_type", "int_type", "float_type", "string_type", "list_type",
                            "literal_error", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
                            "too_short", "too_long", "string_too_short", "string_too_long", "int_parsing",
                            "finite_number", "model_type", "dict_type", "extra_forbidden", "union_tag_not_found",
                            "int_from_float", "bool_parsing", "float_parsing"})


def _message(err: Any) -> str:
    if err["type"] == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        return f"unknown {ctx.get('discriminator', 'type')}; expected one of {ctx.get('expected_tags', '')}"
    if err["type"] in _SAFE_MESSAGES:
        return str(err["msg"])
    return "not of the accepted form"


def first_error(exc: ValidationError, refused_parts: str = "only text content parts can be screened; image, "
                "audio and file parts are refused") -> InvalidRequest:
    """The first validation problem as a 400 naming the field's location (never a value, never
    a caller's key). ``refused_parts``: the door's own words for a refused content part or block."""
    errors = exc.errors()
    for e in errors:  # a refused content part explains itself better than the union's first branch
        if e["type"] in ("literal_error", "union_tag_invalid") and "content" in e["loc"]:
            loc = _safe_loc(e["loc"][:e["loc"].index("content") + 1])
            return InvalidRequest(f"Invalid request: {loc}: {refused_parts}.", param=loc)
    err = errors[0]
    # an unknown key is the caller's text: name its parent, never the key itself
    parts = err["loc"][:-1] if err["type"] == "extra_forbidden" else err["loc"]
    loc = _safe_loc(tuple(parts))
    msg = _message(err)
    if err["type"] in ("dict_type", "model_type", "model_attributes_type"):
        msg = "expected an object"
    return InvalidRequest(f"Invalid request: {loc}: {msg}.", param=loc)


def refuse_steering(body: dict[str, Any]) -> None:
    bad = sorted(k for k in body if k in STEERING_FIELDS)
    if bad:
        raise InvalidRequest(f"Field '{bad[0]}' is not accepted: the proxy decides where requests go.",
                             param=bad[0], code="forbidden_field")


def validate(body: Any, model: type[BaseModel]) -> Any:
    """``body`` against a door's strict model: steering fields refused, unknown keys dropped."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    refuse_steering(body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc) from None


def dump(model: BaseModel) -> dict[str, Any]:
    """The forwarded body: the model's dump, nothing else (unknown keys were dropped)."""
    return model.model_dump(by_alias=True, exclude_none=True)
