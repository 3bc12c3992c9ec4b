"""Request masking over every slot, and the dry run (``inspect_text``).

Slots of one group (the text parts of one message) are detected as one text (:func:`join_parts`):
parts are joined with a space and a line break (:data:`PART_SEP`), which keeps the words of two
parts apart (no word, name, key or number is glued to the next part's first character: the
normaliser joins wrapped tokens only across a bare line break) and keeps lines lines, so a CSV
header and its rows, or a log line, read the same in parts as in one text;
after a label awaiting its value (a part ending in ``:`` or ``=``) the separator is a space, so
``Label:`` and the value in the next part still pair. The normaliser still closes a digit run
split over a part boundary. Written back part
by part: a value that spans parts is masked piece by piece, each piece with its own
placeholder, so every word of every part is either kept or restorable.

JSON stays valid wherever it is (tool-call arguments, tool results, JSON pasted in a message,
JSON escaped inside a JSON string): a replacement never crosses a JSON literal or splits an
escape sequence, and a masked number becomes a quoted placeholder that restores to the bare number
(:meth:`Vault.mask_number`). Keys are context for their values
and are themselves screened (a key that is an e-mail address is masked).

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
from trustproxy.pii.structure import JsonLiteral, json_literals
from trustproxy.slots import Slot, iter_request_slots

PART_SEP = " \n"
_LABEL_SEP = " "


def join_parts(pieces: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text a group of parts is detected as, and each part's ``[start, end)`` in it."""
    out: list[str] = []
    bounds: list[tuple[int, int]] = []
    pos = 0
    for i, p in enumerate(pieces):
        if i:
            prev = pieces[i - 1]
            sep = _LABEL_SEP if prev.endswith((":", "=", "\uff1a")) else PART_SEP
            out.append(sep)
            pos += len(sep)
        out.append(p)
        bounds.append((pos, pos + len(p)))
        pos += len(p)
    return "".join(out), bounds


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
    from trustproxy.pii.languages import UNCOVERED

    entities = [t for t, a in actions.items() if a != EntityAction.allow and t != UNCOVERED]
    return entities, thresholds, actions


class Masker:
    """Applies one policy to one request with one Vault."""

    def __init__(self, policy: Policy, detector: Any, vault: Any, namespace: str = "",
                 languages: dict[str, str | None] | None = None) -> None:
        """``languages``: text -> its language, shared by the Maskers of one request (the
        masking job's collecting pass and its masking pass identify each text once)."""
        self.policy = policy
        self.detector = detector
        self.vault = vault
        self.namespace = namespace
        self.entities, self.thresholds, self.actions = entity_plan(policy)
        self.result = MaskResult()
        self._request_language: str | None = None  # set per request by mask_slots
        self._langs: dict[str, str | None] = {} if languages is None else languages  # this request only

    def detect(self, text: str, structured: bool = False) -> list[Any]:
        if not text or not self.entities:
            return []
        lang, borrowed = self._language(text, structured)
        return self._detector_for(None if borrowed else lang).detect(
            text, entities=self.entities, thresholds=self.thresholds,
            default_threshold=self.policy.threshold, custom=self.policy.custom_recognizers,
            allow_list=self.policy.allow_list, namespace=self.namespace, text_language=lang,
            regions_only=borrowed)

    def _language(self, text: str, structured: bool = False) -> tuple[str | None, bool]:
        """The text's language, and whether it is borrowed from the request's prose (a JSON
        document, ``structured``, whose keys are English whatever its values are in, or a text
        too short or too technical to tell): a borrowed language gives phone regions and ids,
        not another NER model. Records UNCOVERED_LANGUAGE for a language without an NER model."""
        if not self.policy.detect_language:
            return None, False
        from trustproxy.pii.languages import UNCOVERED

        structured = structured or text.lstrip()[:1] in ("{", "[")  # JSON pasted as text too
        own = None if structured else self._identify(text)
        lang = own or self._request_language
        borrowed = own is None and lang is not None
        if lang is None or lang == self.policy.language or lang in self.policy.languages:
            return lang, borrowed
        action = self.actions.get(UNCOVERED)
        if action is not None and action != EntityAction.allow:
            self.result.entities[UNCOVERED] += 1
            self.result.actions[action.value] += 1
            self.result.decisions.append(Decision(guard="pii", action=action.value,
                                                  entity_type=UNCOVERED))
            if action == EntityAction.block and UNCOVERED not in self.result.blocked_types:
                self.result.blocked_types.append(UNCOVERED)
        return lang, borrowed

    def _identify(self, text: str) -> str | None:
        """``languages.identify``, once per distinct text of this request (the answers live as
        long as this Masker: one request)."""
        from trustproxy.pii.languages import identify

        if text not in self._langs:
            self._langs[text] = identify(text)
        return self._langs[text]

    def _prose_language(self, slots: list[Slot]) -> str | None:
        """The language most of the request's prose is in, by UTF-8 length (None: none can be told)."""
        if not self.policy.detect_language:
            return None
        from collections import Counter

        from trustproxy.pii.languages import identify

        seen: Counter[str] = Counter()
        for s in slots:
            if s.kind in ("name", "json"):
                continue
            text = s.get()
            lang = self._identify(text) if text.lstrip()[:1] not in ("{", "[") else None
            if lang is not None:
                seen[lang] += len(text.encode("utf-8"))  # bytes: a Han character says more than a letter
        return seen.most_common(1)[0][0] if seen else None

    def _detector_for(self, lang: str | None) -> Any:
        model = self.policy.languages.get(lang or "")
        if not model or lang == getattr(self.detector, "language", None):
            return self.detector
        from trustproxy.pii.detector import get_detector

        return get_detector(model, lang or "")

    def _replacement(self, entity_type: str, value: str, count: bool = True, *,
                     written: str | None = None, number: bool = False) -> str | None:
        """The replacement of one value under the policy (None: kept, or blocked).
        ``written``: how ``value`` was written in a JSON string (it is the decoded form);
        ``number``: ``value`` is a JSON number literal (its placeholder restores unquoted)."""
        action = self.actions.get(entity_type, EntityAction.mask)
        if count:
            self.result.entities[entity_type] += 1
            self.result.actions[action.value] += 1
            self.result.decisions.append(Decision(guard="pii", action=action.value,
                                                  entity_type=entity_type))
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
        if number:
            return self.vault.mask_number(entity_type, value)
        if written is not None and written != value:
            return self.vault.mask(entity_type, value, written=written)
        return self.vault.mask(entity_type, value)

    def mask_text(self, text: str) -> str:
        return self._mask_pieces([text])[0]

    def _mask_pieces(self, pieces: Sequence[str]) -> list[str]:
        """Detect on ``pieces`` joined (:func:`join_parts`); rewrite each piece."""
        joined, bounds = join_parts(pieces)
        spans = self.detect(joined)
        if not spans:
            return list(pieces)
        # per piece: (start, end, entity type, span id)
        segs: list[list[tuple[int, int, str, int]]] = [[] for _ in pieces]
        for n, sp in enumerate(spans):
            for i, (b0, b1) in enumerate(bounds):
                s, e = max(sp.start, b0), min(sp.end, b1)
                if s < e:
                    segs[i].append((s - b0, e - b0, sp.entity_type, n))
        counted: set[int] = set()
        return [self._rewrite(piece, seg, counted) if seg else piece
                for piece, seg in zip(pieces, segs)]

    def _rewrite_json(self, text: str) -> str:
        spans = self.detect(text, structured=True)
        if not spans:
            return text
        return self._rewrite(text, [(sp.start, sp.end, sp.entity_type, n)
                                    for n, sp in enumerate(spans)], set())

    def _rewrite(self, text: str, segs: list[tuple[int, int, str, int]], counted: set[int]) -> str:
        """Apply the replacements of ``segs`` to ``text``, JSON-safely. A value inside a
        top-level JSON string goes to the vault decoded one level (what the string says) with
        the form it was written in; a JSON number goes as its literal and is written quoted
        (restored bare)."""
        lits = json_literals(text) if ("{" in text or "[" in text) else []
        edits: list[tuple[int, int, str]] = []
        for s, e, etype, sid in segs:
            for a, b, quote in _json_safe(text, s, e, lits):
                value = text[a:b]
                if not value.strip():
                    continue
                written = None
                if not quote and "\\" in value and _in_top_string(lits, a, b):
                    try:
                        written, value = value, json.loads(f'"{value}"')
                    except ValueError:
                        written = None
                rep = self._replacement(etype, value, count=sid not in counted, written=written,
                                        number=bool(quote))
                counted.add(sid)
                if rep is None:
                    continue
                if quote and not (rep.isdigit() and rep[0] != "0"):
                    rep = f"{quote}{rep}{quote}"  # a number stays one where the fake is one
                edits.append((a, b, rep))
        out = text
        last = len(text) + 1
        for a, b, rep in sorted(set(edits), reverse=True):
            if b > last:  # overlapping pieces after widening: keep the earlier one
                continue
            out = out[:a] + rep + out[b:]
            last = a
        return out

    def _mask_name(self, name: str) -> str:
        """A participant's ``name`` field names a person: the whole value is a PERSON (detectors
        miss single words with no context), under the policy's PERSON action."""
        action = self.actions.get("PERSON")
        if not name.strip() or action is None or action == EntityAction.allow:
            return self.mask_text(name)
        if action == EntityAction.mask:
            self._replacement("PERSON", name)  # counted; the bare form is restorable too
            return str(self.vault.mask_bare("PERSON", name))
        rep = self._replacement("PERSON", name)
        if rep is None:
            return name  # blocked: recorded, the request is refused
        # the OpenAI API restricts `name` to [A-Za-z0-9_-]: keep the placeholder's letters only
        return re.sub(r"[^A-Za-z0-9_-]", "", rep) if action == EntityAction.mask else re.sub(r"[^A-Za-z0-9_-]", "_", rep)

    def mask_slots(self, slots: Iterable[Slot]) -> MaskResult:
        slots = list(slots)
        self._request_language = self._prose_language(slots)
        groups: dict[str, list[Slot]] = {}
        for slot in slots:
            if slot.kind == "name":
                slot.set(self._mask_name(slot.get()))
            elif slot.kind == "json":
                # one JSON document: detected whole, so keys are context for their values; the
                # vault keeps decoded values (replies restore them JSON-escaped)
                slot.set(self._rewrite_json(slot.get()))
            else:
                groups.setdefault(slot.group, []).append(slot)
        for group in groups.values():
            new = self._mask_pieces([s.get() for s in group])
            for slot, text in zip(group, new):
                slot.set(text)
        return self.result


def _json_safe(text: str, s: int, e: int, lits: Sequence[JsonLiteral]
               ) -> list[tuple[int, int, str]]:
    """The pieces of ``[s, e)`` to replace, each with the quote to wrap its replacement in.
    Outside JSON: the span itself. Inside: one piece per literal it touches, clipped to the
    literal's content and widened to whole escape sequences; a number literal is replaced
    whole and quoted."""
    if not lits:
        return [(s, e, "")]
    touched = [lit for lit in lits if lit.start < e and s < lit.end
               or (lit.kind == "number" and lit.start <= s < lit.end)]
    # innermost literals only (a nested document's literals lie inside its parent string)
    inner = [lit for lit in touched
             if not any(o is not lit and lit.start <= o.start and o.end <= lit.end
                        and (o.start, o.end) != (lit.start, lit.end) and o.start < e and s < o.end
                        for o in touched)]
    if not inner:
        covering = [lit for lit in lits if lit.start <= s and e <= lit.end]
        if covering:
            return [(s, e, "")]
        return [] if _inside_json(text, s, e, lits) else [(s, e, "")]
    out: list[tuple[int, int, str]] = []
    for lit in sorted(inner, key=lambda x: x.start):
        if lit.kind == "number":
            out.append((lit.start, lit.end, lit.quote))
            continue
        a, b = max(s, lit.start), min(e, lit.end)
        a, b = _widen_escapes(text, lit, a, b)
        if a < b:
            out.append((a, b, ""))
    return out


def _in_top_string(lits: Sequence[JsonLiteral], a: int, b: int) -> bool:
    return any(lit.kind == "string" and lit.quote == '"' and lit.start <= a and b <= lit.end
               for lit in lits)


def _inside_json(text: str, s: int, e: int, lits: Sequence[JsonLiteral]) -> bool:
    """Whether ``[s, e)`` lies between the literals of one JSON document (syntax only)."""
    before = [lit for lit in lits if lit.end <= s]
    after = [lit for lit in lits if lit.start >= e]
    return bool(before and after) and all(c in " \t\r\n{}[]:,\"\\" for c in text[s:e])


def _widen_escapes(text: str, lit: JsonLiteral, a: int, b: int) -> tuple[int, int]:
    i = lit.start
    while i < lit.end:
        if text[i] == "\\" and i + 1 < lit.end:
            n = 6 if text[i + 1] == "u" else 2
            j = min(i + n, lit.end)
            if i < a < j:
                a = i
            if i < b < j:
                b = j
            i = j
        else:
            i += 1
    return a, b


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
