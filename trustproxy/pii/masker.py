"""Request masking over every slot, and the dry run (``inspect_text``).

Slots of one group (the text parts of one message) are detected together on their
concatenation, so a value split across content parts is still caught; its replacement goes
where the value starts and the rest of it is removed from the later parts. Tool-call arguments
are JSON: each string value is masked on its own and the JSON stays valid.

Synchronous and CPU-heavy: the server runs it off the event loop.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustproxy.errors import PolicyBlocked
from trustproxy.pipeline import Decision
from trustproxy.policy.schema import EntityAction, Policy
from trustproxy.slots import Slot, iter_request_slots, map_json_strings


@dataclass
class MaskResult:
    entities: Counter[str] = field(default_factory=Counter)   # type -> count detected
    actions: Counter[str] = field(default_factory=Counter)    # action -> count applied
    blocked_types: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def sensitive_types(self) -> set[str]:
        return set(self.entities)


@dataclass
class Detected:
    entity_type: str
    action: str
    score: float
    start: int
    end: int


@dataclass
class InspectResult:
    detected: list[Detected]
    blocked: bool
    blocked_types: list[str]
    provider_text: str


def entity_plan(policy: Policy) -> tuple[list[str], dict[str, float], dict[str, EntityAction]]:
    """Entity types to detect, their thresholds, and the action for each."""
    try:
        from trustproxy.pii.detector import DEFAULT_THRESHOLDS
    except ImportError:  # pragma: no cover
        DEFAULT_THRESHOLDS = {}
    actions: dict[str, EntityAction] = {}
    thresholds: dict[str, float] = dict(DEFAULT_THRESHOLDS)
    for rule in policy.entities:
        actions[rule.type] = rule.action
        if rule.threshold is not None:
            thresholds[rule.type] = rule.threshold
    for cr in policy.custom_recognizers:
        actions.setdefault(cr.type, EntityAction.mask)
    entities = [t for t, a in actions.items() if a != EntityAction.allow]
    return entities, thresholds, actions


class Masker:
    """Applies one policy to one request with one Vault."""

    def __init__(self, policy: Policy, detector: Any, vault: Any, namespace: str = "") -> None:
        self.policy = policy
        self.detector = detector
        self.vault = vault
        self.namespace = namespace
        self.entities, self.thresholds, self.actions = entity_plan(policy)
        self.result = MaskResult()

    def detect(self, text: str) -> list[Any]:
        if not text or not self.entities:
            return []
        return self.detector.detect(text, entities=self.entities, thresholds=self.thresholds,
                                    default_threshold=self.policy.threshold,
                                    custom=self.policy.custom_recognizers, allow_list=self.policy.allow_list,
                                    namespace=self.namespace)

    def _replacement(self, entity_type: str, value: str) -> str | None:
        action = self.actions.get(entity_type, EntityAction.mask)
        self.result.entities[entity_type] += 1
        self.result.actions[action.value] += 1
        self.result.decisions.append(Decision(guard="pii", action=action.value, entity_type=entity_type))
        if action == EntityAction.allow:
            return None
        if action == EntityAction.block:
            if entity_type not in self.result.blocked_types:
                self.result.blocked_types.append(entity_type)
            return None
        if action == EntityAction.redact:
            return self.vault.redact(entity_type)
        if action == EntityAction.hash:
            return self.vault.hash(entity_type, value)
        if action == EntityAction.synthetic:
            return self.vault.synthetic(entity_type, value)
        return self.vault.mask(entity_type, value)

    def mask_text(self, text: str) -> str:
        return self._mask_pieces([text])[0]

    def _mask_pieces(self, pieces: Sequence[str]) -> list[str]:
        """Detect on the concatenation of ``pieces``; rewrite each piece."""
        joined = "".join(pieces)
        spans = self.detect(joined)
        if not spans:
            return list(pieces)
        bounds = []
        pos = 0
        for p in pieces:
            bounds.append((pos, pos + len(p)))
            pos += len(p)
        edits: list[list[tuple[int, int, str]]] = [[] for _ in pieces]
        for sp in spans:
            value = joined[sp.start:sp.end]
            rep = self._replacement(sp.entity_type, value)
            if rep is None:
                continue
            first = True
            for i, (b0, b1) in enumerate(bounds):
                s, e = max(sp.start, b0), min(sp.end, b1)
                if s >= e:
                    continue
                edits[i].append((s - b0, e - b0, rep if first else ""))
                first = False
        out = []
        for piece, ed in zip(pieces, edits):
            for s, e, rep in sorted(ed, reverse=True):
                piece = piece[:s] + rep + piece[e:]
            out.append(piece)
        return out

    def _mask_name(self, name: str) -> str:
        """A participant's ``name`` field names a person: the whole value is a PERSON (detectors
        miss single words with no context), under the policy's PERSON action."""
        action = self.actions.get("PERSON")
        if not name.strip() or action is None or action == EntityAction.allow:
            return self.mask_text(name)
        rep = self._replacement("PERSON", name)
        if rep is None:
            return name  # blocked: recorded, the request is refused
        # the OpenAI API restricts `name` to [A-Za-z0-9_-]: keep the placeholder's letters only
        return re.sub(r"[^A-Za-z0-9_-]", "", rep) if action == EntityAction.mask else re.sub(r"[^A-Za-z0-9_-]", "_", rep)

    def _mask_json(self, text: str) -> str:
        try:
            return map_json_strings(text, self.mask_text)
        except ValueError:
            return self.mask_text(text)  # not JSON: screen it as plain text

    def mask_slots(self, slots: Iterable[Slot]) -> MaskResult:
        groups: dict[str, list[Slot]] = {}
        for slot in slots:
            if slot.kind == "name":
                slot.set(self._mask_name(slot.get()))
            elif slot.kind == "json":
                slot.set(self._mask_json(slot.get()))
            else:
                groups.setdefault(slot.group, []).append(slot)
        for group in groups.values():
            new = self._mask_pieces([s.get() for s in group])
            for slot, text in zip(group, new):
                slot.set(text)
        return self.result


def all_texts(body: dict[str, Any]) -> list[str]:
    return [s.get() for s in iter_request_slots(body)]


def mask_request(body: dict[str, Any], policy: Policy, detector: Any, vault: Any, namespace: str = "") -> MaskResult:
    """Mask every slot of ``body`` in place. Raises ``PolicyBlocked`` naming types only."""
    masker = Masker(policy, detector, vault, namespace)
    result = masker.mask_slots(list(iter_request_slots(body)))
    if result.blocked_types:
        types = ", ".join(sorted(result.blocked_types))
        err = PolicyBlocked(f"The request was blocked by policy '{policy.name}': it contains {types}.")
        err.result = result  # type: ignore[attr-defined]  # types and counts only
        raise err
    return result


def inspect_text(policy: Policy, text: str, detector: Any | None = None, hash_key: bytes = b"") -> InspectResult:
    """Dry run: what would be detected and exactly what the provider would see."""
    from trustproxy.pii.detector import get_detector
    from trustproxy.pii.vault import Vault

    detector = detector or get_detector(policy.nlp_model, policy.language)
    vault = Vault([text], hash_key=hash_key)
    masker = Masker(policy, detector, vault)
    detected = [Detected(sp.entity_type, masker.actions.get(sp.entity_type, EntityAction.mask).value,
                         round(float(sp.score), 3), sp.start, sp.end) for sp in masker.detect(text)]
    provider_text = masker.mask_text(text)
    blocked = sorted(set(masker.result.blocked_types))
    return InspectResult(detected=detected, blocked=bool(blocked), blocked_types=blocked,
                         provider_text="" if blocked else provider_text)


def inspect_json(result: InspectResult) -> dict[str, Any]:
    return json.loads(json.dumps({
        "detected": [d.__dict__ for d in result.detected], "blocked": result.blocked,
        "blocked_types": result.blocked_types, "provider_text": result.provider_text}))
