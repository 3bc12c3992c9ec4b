"""The one dry run: what a policy would do to an input, and to a scripted reply, with no
provider called and nothing stored.

``/v1/trust/inspect``, ``/v1/trust/playground``, ``trustproxy policy explain`` and the golden
tests all come here:

- :func:`parse_input` turns what the caller pasted (plain text, or a whole request body of a
  front door) into a request document whose text slots the request path walks;
- :func:`inspect_input` (sync, CPU-heavy: run it off the event loop) masks every slot with the
  request path's own ``Masker`` and one ``Vault``, and records each detection (type, score,
  action, recognizer, where);
- :func:`screen_reply` (async) passes a scripted reply through the response path's filters in
  the response path's order (toxicity window -> output-PII window -> restore), fed whole then
  finished, as a non-streamed reply is;
- :func:`dry_run` is the two together.

A ``DryRun`` holds the caller's own text (it is the answer to the caller). Callers must not
log it or put it in an audit event: audit a dry run with types and counts only.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from trustproxy.errors import GuardFailed, InvalidRequest, PolicyBlocked, TrustProxyError
from trustproxy.pii.masker import Masker, join_parts
from trustproxy.pipeline import FilterChain, StreamFilter
from trustproxy.policy.schema import EntityAction, Policy
from trustproxy.doors.masking import request_slots

InputKind = Literal["text", "chat", "embeddings"]
NAME_FIELD_RECOGNIZER = "name field"  # a participant's `name` is a PERSON as a whole (see Masker)


# ---- input ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedInput:
    """A request document and how it was given. ``doc`` is what the request path would walk
    (for plain text: one slot ``input``); ``route`` is the body's ``model``, if any."""

    kind: InputKind
    doc: dict[str, Any]
    route: str | None = None


Door = Literal["chat", "embeddings", "responses", "messages"]


def guess_door(body: dict[str, Any]) -> Door:
    """Which front door a pasted body is for, when the caller does not say (``door``)."""
    if "messages" in body:
        blocks: list[Any] = []
        for m in body.get("messages") or []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):
                blocks.extend(content)
        anthropic = "system" in body or "stop_sequences" in body or any(
            isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in blocks)
        return "messages" if anthropic else "chat"
    inp = body.get("input")
    if "instructions" in body or "text" in body or (
            isinstance(inp, list) and any(isinstance(x, dict) for x in inp)):
        return "responses"
    return "embeddings"


def parse_request_body(body: dict[str, Any], door: str | None = None) -> ParsedInput:
    """A whole request body of a front door, parsed as that door parses it (strict types,
    steering fields refused, unknown fields dropped) and translated to the canonical request
    the request path screens: chat completions and embeddings as they are, Responses and
    Anthropic Messages through their codecs' ``to_canonical``."""
    from trustproxy.doors import anthropic_messages, openai_responses
    from trustproxy.server.schemas import parse_chat, parse_embeddings

    which = door or guess_door(body)
    if which == "embeddings":
        emb = parse_embeddings(body)
        return ParsedInput("embeddings", emb, route=emb.get("model"))
    if which == "responses":
        canon = openai_responses.parse(body).to_canonical()
        return ParsedInput("chat", canon, route=canon.get("model"))
    if which == "messages":
        canon = anthropic_messages.parse(body).to_canonical()
        return ParsedInput("chat", canon, route=canon.get("model"))
    if which != "chat":
        raise InvalidRequest("Field 'door' must be one of chat, embeddings, responses, messages.", param="door")
    parsed = parse_chat(body)
    return ParsedInput("chat", parsed, route=parsed.get("model"))


def _is_request_body(doc: Any) -> bool:
    return isinstance(doc, dict) and ("messages" in doc or ("model" in doc and "input" in doc))


def parse_input(value: str | dict[str, Any], door: str | None = None) -> ParsedInput:
    """Plain text, or a request body (a dict, or text holding a JSON object with
    ``messages``). Raises ``InvalidRequest`` for a body the door would refuse."""
    if isinstance(value, dict):
        return parse_request_body(value, door)
    if not isinstance(value, str):
        raise InvalidRequest("The input must be text or a request body (a JSON object).", param="input")
    stripped = value.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            doc = None
        if _is_request_body(doc):
            assert isinstance(doc, dict)
            return parse_request_body(doc, door)
    return ParsedInput("text", {"input": value})


# ---- results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Detection:
    """One detected value. ``start``/``end`` index the slot's original text (for a ``name``
    slot: the whole value); None inside tool-call arguments whose string value is written
    with escapes (detection runs on each decoded JSON string value)."""

    entity_type: str
    action: str
    score: float
    start: int | None
    end: int | None
    recognizer: str
    slot: str = "input"


@dataclass
class SlotView:
    """One text slot: the caller's original, what the provider would receive, what was found."""

    path: str
    kind: str
    original: str
    provider: str
    detections: list[Detection] = field(default_factory=list)


@dataclass
class InputResult:
    """The request side of a dry run. ``detected``, ``blocked``, ``blocked_types`` and
    ``provider_text`` are what golden tests check (``trustproxy.policy.golden``)."""

    kind: InputKind
    slots: list[SlotView]
    blocked_types: list[str]
    provider_doc: dict[str, Any] | None  # None when blocked: nothing would be sent
    entities: dict[str, int]
    actions: dict[str, int]
    route: str | None = None
    vault: Any = None  # the request's Vault (for the reply); dropped by ``close``
    refusal: str | None = None          # a later request check that would refuse it (error code)
    refusal_message: str | None = None  # its message (types and names only)

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_types)

    @property
    def detected(self) -> list[Detection]:
        return [d for s in self.slots for d in s.detections]

    @property
    def provider_text(self) -> str:
        """Plain text: the masked text. A chat body: the last message's content as the
        provider would receive it (what the ``echo`` route answers with); embeddings: the
        inputs, one a line. Blocked: ''."""
        if self.provider_doc is None:
            return ""
        if self.kind == "text":
            return str(self.provider_doc.get("input", ""))
        if self.kind == "embeddings":
            inp = self.provider_doc.get("input", "")
            return inp if isinstance(inp, str) else "\n".join(str(x) for x in inp)
        return last_message_text(self.provider_doc)

    def close(self) -> None:
        if self.vault is not None:
            self.vault.clear()
        self.vault = None


@dataclass
class ReplyResult:
    """The response side: the scripted reply as the provider would send it, and what the
    caller would get back."""

    provider_reply: str
    user_text: str
    blocked: bool
    restored: list[str]                      # placeholder keys put back, e.g. PERSON_1
    output_pii: list[dict[str, Any]]         # {entity_type, action, score}
    toxicity: dict[str, Any] | None          # {scorer, max_scores, decisions, decision}; None: off


@dataclass
class DryRun:
    policy: str
    version: str
    input: InputResult
    reply: ReplyResult | None  # None: not asked for, or the request would be refused
    with_reply: bool = False

    # the inspect/golden contract
    @property
    def detected(self) -> list[Detection]:
        return self.input.detected

    @property
    def blocked(self) -> bool:
        return self.input.blocked

    @property
    def blocked_types(self) -> list[str]:
        return self.input.blocked_types

    @property
    def provider_text(self) -> str:
        return self.input.provider_text

    def to_json(self) -> dict[str, Any]:
        """The JSON answer of ``/v1/trust/inspect`` and the playground (the caller's own text)."""
        inp = self.input
        out: dict[str, Any] = {
            "policy": self.policy, "policy_version": self.version, "input_kind": inp.kind,
            "detected": [asdict(d) for d in inp.detected], "blocked": inp.blocked,
            "blocked_types": inp.blocked_types, "provider_text": inp.provider_text,
            "entities": inp.entities, "actions": inp.actions,
            "refusal": inp.refusal, "refusal_message": inp.refusal_message,
            "slots": [{"path": s.path, "kind": s.kind, "original": s.original, "provider": s.provider,
                       "detections": [asdict(d) for d in s.detections]} for s in inp.slots],
        }
        if inp.kind != "text":
            out["provider_body"] = inp.provider_doc
        if self.with_reply:
            out["reply"] = asdict(self.reply) if self.reply is not None else None
        return out


def last_message_text(doc: dict[str, Any]) -> str:
    msgs = doc.get("messages") or []
    if not msgs:
        return ""
    content = msgs[-1].get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


# ---- the request side ------------------------------------------------------------------------

class _Recorder:
    """Wraps the detector: keeps each text the masker asked about and the spans found."""

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self.calls: list[tuple[str, list[Any]]] = []

    def detect(self, text: str, **kw: Any) -> list[Any]:
        spans = list(self._detector.detect(text, **kw))
        self.calls.append((text, spans))
        return spans

    def spans_for(self, text: str) -> list[Any]:
        for t, spans in self.calls:
            if t == text:
                return spans
        return []


def _json_strings(text: str) -> list[str] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, list):
            for x in node:
                walk(x)
        elif isinstance(node, dict):
            for x in node.values():
                walk(x)

    walk(doc)
    return out


def _json_detections(text: str, values: list[str], recorder: _Recorder,
                     make: Callable[[Any, int | None, int | None], Detection]) -> list[Detection]:
    """Detections inside tool-call arguments, located in the JSON text where a string value
    appears as written (no escapes); elsewhere without offsets."""
    out: list[Detection] = []
    pos = 0
    for v in values:
        spans = recorder.spans_for(v)
        if not spans:
            continue
        encoded = json.dumps(v, ensure_ascii=False)
        at = text.find(encoded, pos) if encoded[1:-1] == v else -1
        if at >= 0:
            pos = at + len(encoded)
        out += [make(sp, at + 1 + sp.start, at + 1 + sp.end) if at >= 0 else make(sp, None, None) for sp in spans]
    return out


def inspect_input(policy: Policy, parsed: ParsedInput, detector: Any, hash_key: bytes = b"",
                  namespace: str = "") -> InputResult:
    """Mask a copy of ``parsed.doc`` as the request path does; record every detection. Sync."""
    from trustproxy.pii.vault import Vault

    doc = copy.deepcopy(parsed.doc)
    if parsed.kind == "text":  # one plain text: a single prose slot
        from trustproxy.doors.walk import Slot

        slots = [Slot("input", "text", doc, "input", "input")]
    else:  # a request body: the request path's view, under the policy's participant-name rule
        slots = request_slots(doc, policy)
    originals = [s.get() for s in slots]
    vault = Vault(originals, hash_key=hash_key)
    recorder = _Recorder(detector)
    masker = Masker(policy, recorder, vault, namespace)
    result = masker.mask_slots(slots)
    action_of = masker.actions

    def det(sp: Any, path: str, start: int | None, end: int | None) -> Detection:
        return Detection(sp.entity_type, action_of.get(sp.entity_type, EntityAction.mask).value,
                         round(float(sp.score), 3), start, end, str(getattr(sp, "recognizer", "") or ""), path)

    # what the provider receives: the value written into the document (a slot's get() may show
    # the masker a view of it, e.g. an identifier read with spaces)
    views = [SlotView(s.path, s.kind, o, s.container[s.key] if isinstance(s.container[s.key], str) else s.get())
             for s, o in zip(slots, originals)]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(slots):
        if s.kind == "text":
            groups.setdefault(s.group, []).append(i)
        elif s.kind == "json":
            values = _json_strings(originals[i])
            whole = recorder.spans_for(originals[i])
            if whole:  # structure-aware detection ran on the whole JSON text (keys as context)
                views[i].detections = [det(sp, s.path, sp.start, sp.end) for sp in whole]
            elif values is None:  # not JSON: masked as plain text
                views[i].detections = [det(sp, s.path, sp.start, sp.end) for sp in recorder.spans_for(originals[i])]
            else:
                views[i].detections = _json_detections(originals[i], values, recorder, lambda sp, a, b: det(sp, s.path, a, b))
        else:  # name
            person = action_of.get("PERSON")
            if originals[i].strip() and person is not None and person != EntityAction.allow:
                views[i].detections = [Detection("PERSON", person.value, 1.0, 0, len(originals[i]),
                                                 NAME_FIELD_RECOGNIZER, s.path)]
            else:
                views[i].detections = [det(sp, s.path, sp.start, sp.end) for sp in recorder.spans_for(originals[i])]
    for members in groups.values():
        pieces = [originals[i] for i in members]
        joined, bounds = join_parts(pieces)
        spans = recorder.spans_for(joined)  # detected as the masker joins them
        for i, (b0, b1) in zip(members, bounds):
            views[i].detections = [det(sp, slots[i].path, max(sp.start, b0) - b0, min(sp.end, b1) - b0)
                                   for sp in spans if max(sp.start, b0) < min(sp.end, b1)]
    blocked = sorted(set(result.blocked_types))
    if blocked:
        for v in views:
            v.provider = ""
    return InputResult(kind=parsed.kind, slots=views, blocked_types=blocked,
                       provider_doc=None if blocked else doc, entities=dict(result.entities),
                       actions=dict(result.actions), route=parsed.route, vault=vault)


# ---- the response side -----------------------------------------------------------------------

class Scoring(Protocol):
    """What the reply side needs from its host: a toxicity batcher for a policy, and a way to
    run sync detection off the event loop (with the host's timeout)."""

    def batcher(self, policy: Policy) -> Any: ...

    def run(self, fn: Callable[[], Any]) -> Awaitable[Any]: ...


def reply_filters(policy: Policy, vault: Any, detector: Any, scoring: Scoring,
                  namespace: str = "") -> list[StreamFilter]:
    """The content chain of one reply, in the response path's order."""
    from trustproxy.pii.output import OutputPIIFilter
    from trustproxy.pii.restore import StreamRestorer
    from trustproxy.toxicity import ToxicityFilter

    out_cfg = policy.output.pii

    async def detect_out(text: str) -> list[Any]:
        return list(await scoring.run(lambda: detector.detect(
            text, entities=list(out_cfg.entities), thresholds={}, default_threshold=out_cfg.threshold,
            allow_list=policy.allow_list, namespace="out:" + namespace)))

    filters: list[StreamFilter] = []
    if policy.output.toxicity.enabled:
        filters.append(ToxicityFilter(scoring.batcher(policy), policy.output.toxicity))
    if out_cfg.enabled and out_cfg.entities and out_cfg.action != "allow":
        filters.append(OutputPIIFilter(detect_out, vault, action=out_cfg.action,
                                       hold_back=policy.streaming.max_hold_back_chars,
                                       entities=list(out_cfg.entities)))
    filters.append(StreamRestorer(vault))
    return filters


async def screen_reply(policy: Policy, inp: InputResult, reply: str | None, detector: Any,
                       scoring: Scoring, namespace: str = "") -> ReplyResult:
    """Screen a scripted reply (``None``: the echo of what the provider received) as a
    non-streamed reply: the whole text fed once, then finished."""
    from trustproxy.pii.output import OutputPIIFilter
    from trustproxy.toxicity import ToxicityFilter

    text = inp.provider_text if reply is None else reply
    if inp.vault is None:
        raise GuardFailed("The dry run's vault is closed.")
    filters = reply_filters(policy, inp.vault, detector, scoring, namespace)
    chain = FilterChain(filters)
    blocked = False
    try:
        user = await chain.feed(text) + await chain.finish()
    except PolicyBlocked:
        blocked = True
        user = policy.output.toxicity.block_message
    keys = set(inp.vault.placeholder_keys)
    restored = sorted({m.group(1) for m in re.finditer(r"<([A-Z0-9_]+)>", text) if m.group(1) in keys})
    out_pii: list[dict[str, Any]] = []
    tox: dict[str, Any] | None = None
    for f in filters:
        if isinstance(f, OutputPIIFilter):
            out_pii = [{"entity_type": d.entity_type, "action": d.action, "score": round(float(d.score or 0), 3)}
                       for d in f.decisions]
        elif isinstance(f, ToxicityFilter):
            decisions = [{"category": d.category, "action": d.action, "score": d.score, "reason": d.reason}
                         for d in f.decisions]
            order = ["pass", "flag", "redact", "block"]
            decision = max((d["action"] for d in decisions if d["action"] in order), key=order.index, default="pass")
            tox = {"scorer": scoring.batcher(policy).name,
                   "max_scores": {k: round(float(v), 4) for k, v in f.max_scores.items()},
                   "decisions": decisions, "decision": "block" if blocked else decision}
    return ReplyResult(provider_reply=text, user_text=user, blocked=blocked, restored=restored,
                       output_pii=out_pii, toxicity=tox)


# ---- the whole dry run -----------------------------------------------------------------------

class Guards(Scoring, Protocol):
    """What a dry run needs from its host (the server's runtime, or a local process)."""

    hash_key: bytes

    def detector(self, policy: Policy) -> Any: ...


def _user_texts(parsed: ParsedInput) -> list[str]:
    if parsed.kind == "text":
        return [str(parsed.doc.get("input", ""))]
    texts = []
    for m in parsed.doc.get("messages", []):
        if m.get("role") == "user":
            c = m.get("content")
            texts.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c or []))
    return [t for t in texts if t]


async def _request_checks(policy: Policy, parsed: ParsedInput, inp: InputResult, guards: Guards,
                          zero_data_retention: bool | None) -> None:
    """The request path's checks after masking: the route's zero-data-retention requirement
    (when the route is known) and the prompt toxicity screen."""
    from trustproxy.toxicity import screen_prompt

    required = sorted(set(policy.retention.require_zero_data_retention_for) & set(inp.entities))
    if zero_data_retention is False and required:
        inp.refusal = "zero_data_retention_required"
        inp.refusal_message = (f"Policy '{policy.name}' requires a zero-data-retention route for requests carrying "
                               f"{', '.join(required)}; route '{parsed.route}' is not marked zero_data_retention.")
        return
    tox = policy.output.toxicity
    if tox.screen_prompts:
        try:
            await screen_prompt(guards.batcher(policy), tox, _user_texts(parsed))
        except PolicyBlocked as exc:
            inp.refusal, inp.refusal_message = "prompt_blocked", exc.message


async def dry_run(policy: Policy, version: str, value: str | dict[str, Any] | ParsedInput,
                  guards: Guards, *, reply: str | None = None, with_reply: bool = True,
                  zero_data_retention: bool | None = None) -> DryRun:
    """THE dry run: the input masked as the request path masks it, the request checks that
    follow (``zero_data_retention``: whether the body's route has it, None if unknown), and,
    if ``with_reply``, a scripted reply (default: the echo of what the provider received)
    screened as the response path screens it. No provider is called; the Vault is cleared
    before returning."""
    parsed = value if isinstance(value, ParsedInput) else parse_input(value)
    detector = guards.detector(policy)
    try:
        inp = await guards.run(lambda: inspect_input(policy, parsed, detector, guards.hash_key, version))
    except TrustProxyError:
        raise
    except Exception:  # noqa: BLE001 - fail closed, name no value
        raise GuardFailed("PII detection failed.") from None
    try:
        rep = None
        if not inp.blocked:
            try:
                await _request_checks(policy, parsed, inp, guards, zero_data_retention)
            except TrustProxyError:
                raise
            except Exception:  # noqa: BLE001
                raise GuardFailed("Screening the prompt failed.") from None
        if with_reply and not inp.blocked and inp.refusal is None and parsed.kind != "embeddings":
            try:
                rep = await screen_reply(policy, inp, reply, detector, guards, version)
            except TrustProxyError:
                raise
            except Exception:  # noqa: BLE001
                raise GuardFailed("Screening the scripted reply failed.") from None
        return DryRun(policy.name, version, inp, rep, with_reply)
    finally:
        inp.close()


class LocalGuards:
    """Guards for a dry run outside the server (the CLI): detection in this thread, the
    scorer loaded on first use."""

    def __init__(self, hash_key: bytes = b"") -> None:
        self.hash_key = hash_key
        self._batchers: dict[str, Any] = {}

    def detector(self, policy: Policy) -> Any:
        from trustproxy.pii.detector import get_detector

        return get_detector(policy.nlp_model, policy.language)

    def batcher(self, policy: Policy) -> Any:
        from trustproxy.toxicity import BatchingScorer, load_scorer

        key = policy.output.toxicity.model_dump_json()
        if key not in self._batchers:
            self._batchers[key] = BatchingScorer(load_scorer(policy.output.toxicity))
        return self._batchers[key]

    async def run(self, fn: Callable[[], Any]) -> Any:
        return fn()


def dry_run_sync(policy: Policy, version: str, value: str | dict[str, Any], *, reply: str | None = None,
                 with_reply: bool = True, guards: LocalGuards | None = None) -> DryRun:
    """:func:`dry_run` for synchronous callers (CLI)."""
    return asyncio.run(dry_run(policy, version, value, guards or LocalGuards(), reply=reply,
                               with_reply=with_reply))


def golden_inspector(detector_of: Callable[[Policy], Any], hash_key: bytes = b"") -> Callable[[Policy, str], InputResult]:
    """The ``inspect`` golden tests call (``trustproxy.policy.golden``): the request side of
    the dry run on the example's text."""

    def inspect(policy: Policy, text: str) -> InputResult:
        res = inspect_input(policy, parse_input(text), detector_of(policy), hash_key)
        res.close()
        return res

    return inspect


__all__ = [
    "Detection", "DryRun", "Guards", "InputResult", "LocalGuards", "ParsedInput", "ReplyResult", "SlotView",
    "dry_run", "dry_run_sync", "golden_inspector", "inspect_input", "parse_input", "parse_request_body",
    "reply_filters", "screen_reply",
]
