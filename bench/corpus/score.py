"""Judging one round trip: what the provider received and what the client got back.

The fake provider answers every request with ``echo_reply``: the texts it received (names,
contents, content parts, tool results) joined by a blank line, and the assistant tool calls it
received, echoed as its own tool calls. So a value masked on the way out must be restored on the
way back, in text and in tool-call arguments, and the client's reply can be compared exactly
with the echo of what the client sent.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.corpus.evasions import COMBINING, VARIATION, ZERO_WIDTH
from bench.corpus.model import Case, fold, folded_request, message_strings

INSERTED = frozenset(COMBINING + VARIATION + ZERO_WIDTH)

SEP = "\n\n"
#: A whole placeholder, or a fragment of one (an opening without its end, an end without its start).
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_\d+>")
FRAGMENT = re.compile(r"<[A-Z][A-Z0-9_]{2,}(?![A-Za-z0-9_]*>)|(?<![<A-Za-z0-9_])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_\d+>")
#: The bracket-less form a placeholder takes where brackets are not allowed (a message ``name``).
BARE = re.compile(r"(?<![<A-Za-z0-9_])[A-Z]{2,}(?:_[A-Z]+)*_\d+(?![>A-Za-z0-9_])")


def marks(text: str) -> int:
    """Placeholders and placeholder fragments in ``text``."""
    return len(PLACEHOLDER.findall(text)) + len(FRAGMENT.findall(text)) + len(BARE.findall(text))


def echo_reply(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The fake's reply to ``body``: (text, [(tool name, arguments)])."""
    texts: list[str] = []
    calls: list[tuple[str, str]] = []
    for msg in body.get("messages") or []:
        if msg.get("name"):
            texts.append(str(msg["name"]))
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            calls.append((str(fn.get("name", "")), str(fn.get("arguments", ""))))
    return SEP.join(texts), calls


def _decoded(args: str) -> Any:
    try:
        return json.loads(args)
    except ValueError:
        return args


def shape(text: str, limit: int = 48) -> str:
    """The class of a string, not the string: Latin letters -> a/A, digits -> 9, Han/kana -> 字,
    Devanagari -> क, Arabic -> ع, other letters -> ?; the script's own vowel signs dropped;
    punctuation and spaces kept; invisible and inserted characters as escapes."""
    out = []
    for ch in text[:limit]:
        cat = unicodedata.category(ch)
        if ch.isdigit():
            out.append("9")
        elif ch in INSERTED:
            out.append(ascii(ch)[1:-1])
        elif cat.startswith("M"):
            continue
        elif ch.isalpha():
            o = ord(ch)
            if o < 0x250:
                out.append("A" if ch.isupper() else "a")
            elif 0x0900 <= o < 0x0980:
                out.append("क")
            elif 0x0600 <= o < 0x0700:
                out.append("ع")
            elif o >= 0x2E80:
                out.append("字")
            else:
                out.append("?")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out) + ("…" if len(text) > limit else "")


@dataclass
class ValueResult:
    planted_id: str
    category: str
    placement: str
    evasion: str
    format: str
    locale: str
    domain: str
    subtype: str
    leaked: bool
    restored: bool
    shape: str


@dataclass
class CaseResult:
    id: str
    kind: str
    placement: str
    locale: str
    clean_kind: str
    status: int
    error: str = ""
    entities: str = ""
    withheld: bool = False         # the proxy's output screening replaced the reply (content_filter)
    values: list[ValueResult] = field(default_factory=list)
    placeholders_left: int = 0
    altered: bool = False          # the provider did not receive every sent text unchanged
    round_trip_exact: bool = False  # the client got back exactly what the echo of its request is
    altered_examples: list[str] = field(default_factory=list)
    collateral: list[str] = field(default_factory=list)  # planted requests: masks that hit no planted value


def judge(case: Case, status: int, received: dict[str, Any] | None, reply_text: str,
          reply_calls: list[tuple[str, str]], entities: str = "", error: str = "",
          withheld: bool = False) -> CaseResult:
    res = CaseResult(id=case.id, kind=case.kind, placement=case.placement, locale=case.locale,
                     clean_kind=case.clean_kind, status=status, entities=entities, error=error,
                     withheld=withheld)
    upstream = folded_request(received) if received is not None else ""
    want_text, want_calls = echo_reply(case.body)
    got_args = [a for _, a in reply_calls]
    # In text a value may stand as written or JSON-escaped (JSON pasted into a message); in
    # tool-call arguments it must come back as written once the JSON is decoded (a value restored
    # twice escaped, "\\r\\n" for "\r\n", is not restored).
    arg_leaves = [x for args in got_args for x in _strings(_decoded(args))]
    for p in case.planted:
        leaked = received is not None and any(pr in upstream for pr in p.probes)
        escaped = json.dumps(p.surface, ensure_ascii=False)[1:-1]
        restored = status == 200 and (p.surface in reply_text or escaped in reply_text
                                      or any(p.surface in x for x in arg_leaves))
        res.values.append(ValueResult(p.id, p.category, p.placement, p.evasion, p.format, p.locale, p.domain,
                                      p.subtype, leaked, restored, shape(p.surface)))
    if status != 200 or withheld:
        return res
    sent_marks = sum(marks(s) for s in [want_text, *[a for _, a in want_calls]])
    got_marks = sum(marks(s) for s in [reply_text, *got_args])
    res.placeholders_left = max(0, got_marks - sent_marks)
    if received is not None:
        sent, got = message_strings(case.body), message_strings(received)
        res.altered = sent != got
        if res.altered and case.kind == "clean":
            res.altered_examples = _diff_examples(sent, got)
        elif res.altered:
            res.collateral = collateral(case, sent, got)
    calls_ok = [(n, _decoded(a)) for n, a in reply_calls] == [(n, _decoded(a)) for n, a in want_calls]
    res.round_trip_exact = reply_text == want_text and calls_ok
    return res


def _strings(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(str(k))
            out.extend(_strings(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_strings(v))
    elif isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.append(str(obj))
    return out


def masked_spans(a: str, b: str) -> list[tuple[str, str, str, str]]:
    """Where ``b`` (received) replaced parts of ``a`` (sent) by placeholders:
    ``(before, original, after, placeholder)`` with 15 characters of context."""
    out: list[tuple[str, str, str, str]] = []
    if a == b:
        return out
    pieces = re.split(r"(<[A-Z][A-Z0-9_]*_\d+>)", b)
    if len(pieces) == 1:  # changed without a placeholder (redacted, rewritten)
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op != "equal":
                out.append((a[max(0, i1 - 15):i1], a[i1:i2], a[i2:i2 + 15], b[j1:j2]))
                break
        return out
    pos = 0
    for k in range(1, len(pieces), 2):
        lit_before, ph, lit_after = pieces[k - 1], pieces[k], pieces[k + 1]
        at = a.find(lit_before, pos) if lit_before else pos
        start = (at + len(lit_before)) if at >= 0 else pos
        end = a.find(lit_after, start) if lit_after else len(a)
        end = end if end >= start else start
        out.append((a[max(0, start - 15):start], a[start:end], a[end:end + 15], ph))
        pos = end
    return out


def _diff_examples(sent: list[str], got: list[str], limit: int = 3) -> list[str]:
    """What of a clean text was replaced upstream, as ``…before[original]after… -> <PLACEHOLDER>``
    (clean texts hold no personal data, so the originals may be shown)."""
    out = [f"…{pre}[{orig}]{post}… -> {ph}" for a, b in zip(sent, got) for pre, orig, post, ph in masked_spans(a, b)]
    if len(sent) != len(got):
        out.append(f"{len(sent)} texts sent, {len(got)} received")
    return out[:limit]


def collateral(case: Case, sent: list[str], got: list[str]) -> list[str]:
    """Masks in a planted request that cover none of its planted values: words around the values
    that were masked anyway (shown as the masked original, which is not planted data)."""
    planted = [fold(p.surface) for p in case.planted] + [pr for p in case.planted for pr in p.probes]
    out = []
    for a, b in zip(sent, got):
        for pre, orig, post, ph in masked_spans(a, b):
            f = fold(orig)
            if not f or any(f in x or x in f for x in planted if x):
                continue
            out.append(f"…{pre}[{orig}]{post}… -> {ph}")
    return out


# ---- aggregation --------------------------------------------------------------------------------

def rate(num: int, den: int) -> float:
    return num / den if den else 0.0


def group(values: Iterable[ValueResult], key: str, judged: set[str]) -> dict[str, dict[str, float]]:
    """Per value of ``key``: n, leak share, restored share (over the values of ``judged``: those
    whose request was answered and not withheld by output screening)."""
    buckets: dict[str, list[ValueResult]] = defaultdict(list)
    for v in values:
        buckets[str(getattr(v, key))].append(v)
    out = {}
    for k, vs in sorted(buckets.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        answered = [v for v in vs if v.planted_id in judged]
        out[k] = {"n": len(vs), "leak": rate(sum(v.leaked for v in vs), len(vs)),
                  "restored": rate(sum(v.restored for v in answered), len(answered))}
    return out


def _types(results: Iterable[CaseResult]) -> dict[str, int]:
    """How many of ``results`` had each entity type detected (the proxy's x-trustproxy-entities)."""
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        for item in filter(None, r.entities.split(",")):
            counts[item.split("=")[0].strip()] += 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    values = [v for r in results for v in r.values]
    pii = [r for r in results if r.kind == "pii"]
    clean = [r for r in results if r.kind == "clean"]
    served = [r for r in results if r.status == 200 and not r.withheld]
    judged = {v.planted_id for r in served for v in r.values}
    answered = [v for v in values if v.planted_id in judged]
    clean_kinds: dict[str, list[CaseResult]] = defaultdict(list)
    for r in clean:
        clean_kinds[r.clean_kind].append(r)
    return {
        "requests": len(results), "pii_requests": len(pii), "clean_requests": len(clean),
        "planted": len(values),
        "leak": rate(sum(v.leaked for v in values), len(values)),
        "restored": rate(sum(v.restored for v in answered), len(answered)),
        "placeholder_leakage": sum(r.placeholders_left for r in served),
        "requests_with_placeholder_leakage": sum(1 for r in served if r.placeholders_left),
        "collateral_masking": rate(sum(bool(r.collateral) for r in served if r.kind == "pii"),
                                   sum(r.kind == "pii" for r in served)),
        "over_masking": rate(sum(r.altered for r in clean if r.status == 200), sum(r.status == 200 for r in clean)),
        "round_trip_exact_pii": rate(sum(r.round_trip_exact for r in served if r.kind == "pii"),
                                     sum(r.kind == "pii" for r in served)),
        "round_trip_exact_clean": rate(sum(r.round_trip_exact for r in served if r.kind == "clean"),
                                       sum(r.kind == "clean" for r in served)),
        "refused": sum(1 for r in results if r.status != 200),
        "withheld": sum(1 for r in results if r.withheld),
        "by_category": group(values, "category", judged), "by_placement": group(values, "placement", judged),
        "by_evasion": group(values, "evasion", judged), "by_format": group(values, "format", judged),
        "by_locale": group(values, "locale", judged), "by_domain": group(values, "domain", judged),
        "over_masking_by_type": _types(r for r in clean if r.altered),
        "collateral_by_type": _types(r for r in served if r.kind == "pii" and r.collateral),
        "over_masking_by_kind": {k: {"n": len(rs), "altered": rate(sum(r.altered for r in rs), len(rs))}
                                 for k, rs in sorted(clean_kinds.items())},
    }
