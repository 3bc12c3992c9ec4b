"""What a draft changes, compared with the live policy on the same input."""

from __future__ import annotations

from typing import Any

from trustproxy.dryrun import Detection, DryRun

Key = tuple[str, int, int, str, int]


def _keyed(detections: list[Detection]) -> dict[Key, Detection]:
    out: dict[Key, Detection] = {}
    seen: dict[tuple[str, int, int, str], int] = {}
    for d in detections:
        base = (d.slot, -1 if d.start is None else d.start, -1 if d.end is None else d.end, d.entity_type)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out[(*base, n)] = d
    return out


def _row(change: str, d: Detection, **extra: Any) -> dict[str, Any]:
    return {"change": change, "entity_type": d.entity_type, "slot": d.slot, "start": d.start, "end": d.end,
            "action": d.action, "score": d.score, "recognizer": d.recognizer, **extra}


def compare(live: DryRun, draft: DryRun) -> dict[str, Any]:
    """Detections only one side makes, actions that differ, and both provider/user views."""
    a, b = _keyed(live.detected), _keyed(draft.detected)
    changes: list[dict[str, Any]] = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if x is not None and y is None:
            changes.append(_row("no longer detected", x))
        elif y is not None and x is None:
            changes.append(_row("newly detected", y))
        elif x is not None and y is not None and x.action != y.action:
            changes.append(_row("action changed", y, live_action=x.action))
    live_user = live.reply.user_text if live.reply else None
    draft_user = draft.reply.user_text if draft.reply else None
    return {
        "changes": changes,
        "blocked": {"live": live.blocked, "draft": draft.blocked},
        "refusal": {"live": live.input.refusal, "draft": draft.input.refusal},
        "provider_text": {"live": live.provider_text, "draft": draft.provider_text,
                          "changed": live.provider_text != draft.provider_text or live.blocked != draft.blocked},
        "user_text": {"live": live_user, "draft": draft_user, "changed": live_user != draft_user},
        "same": not changes and live.blocked == draft.blocked and live.provider_text == draft.provider_text
        and live_user == draft_user and live.input.refusal == draft.input.refusal,
    }
