"""Request inspection as bounded guard work: the budget check, and masking as a job.

1. **Budget** (:func:`check_budget`, on the event loop, before any detection): the request's
   slots and characters are counted; over the policy's ``limits`` the request is refused with
   413 ``uninspectable``. It is never passed through unscreened, and never queued.
2. **Masking job** (:func:`mask_job`, in a detection pool thread) works on *its own copies*: it
   deep-copies the body, collects the texts the masker will ask about, detects them in chunks of
   at most ``chunk_chars`` characters (one fair turn at the detector each, a
   :func:`~trustproxy.execution.checkpoint` before each), then masks its copy into *its own*
   Vault. The request adopts copy and Vault on the event loop only if the job finished in time
   (:func:`adopt`). An abandoned job therefore never writes into the request's body or Vault,
   whatever it is doing when its request gives up (no write after close).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trustproxy.errors import Uninspectable
from trustproxy.execution import FairGate, checkpoint
from trustproxy.doors.masking import IdentityMap, mask_canonical, request_slots
from trustproxy.pii.masker import Masker, MaskResult
from trustproxy.pii.vault import Vault
from trustproxy.policy.schema import Policy

__all__ = ["Budget", "check_budget", "check_text_budget", "mask_job", "adopt", "MaskOutcome"]


@dataclass(frozen=True)
class Budget:
    slots: int
    chars: int


def measure(body: dict[str, Any], policy: Policy | None = None) -> Budget:
    n = chars = 0
    for slot in request_slots(body, policy):
        n += 1
        chars += len(slot.get())
    return Budget(n, chars)


def check_budget(body: dict[str, Any], policy: Policy) -> Budget:
    """Raise :class:`Uninspectable` (413) if ``body`` is over ``policy.limits``. Names counts
    and limits only."""
    lim = policy.limits
    used = measure(body, policy)
    if used.slots > lim.max_inspect_slots:
        raise Uninspectable(f"The request has {used.slots} text fields; policy '{policy.name}' inspects at most "
                            f"{lim.max_inspect_slots} per request (limits.max_inspect_slots). It was not sent.")
    if used.chars > lim.max_inspect_chars:
        raise Uninspectable(f"The request has {used.chars} characters of text; policy '{policy.name}' inspects at "
                            f"most {lim.max_inspect_chars} per request (limits.max_inspect_chars). It was not sent.")
    return used


def check_text_budget(text: str, policy: Policy) -> None:
    if len(text) > policy.limits.max_inspect_chars:
        raise Uninspectable(f"The text has {len(text)} characters; policy '{policy.name}' inspects at most "
                            f"{policy.limits.max_inspect_chars} (limits.max_inspect_chars).")


def _kw_key(kw: dict[str, Any]) -> str:
    """A stable key for one set of detect() arguments (they vary per text: e.g. its language)."""
    return json.dumps(kw, sort_keys=True, default=repr)


class _Collect:
    """A detector stand-in that records what the masker asks about (each text with the
    arguments it was asked with) and finds nothing."""

    def __init__(self) -> None:
        self.asks: dict[tuple[str, str], dict[str, Any]] = {}  # ordered: (text, kw key) -> kw

    def detect(self, text: str, **kw: Any) -> list[Any]:
        checkpoint()
        self.asks.setdefault((text, _kw_key(kw)), kw)
        return []


class _Known:
    """A detector stand-in answering from spans detected beforehand."""

    def __init__(self, spans: dict[tuple[str, str], list[Any]]) -> None:
        self._spans = spans

    def detect(self, text: str, **kw: Any) -> list[Any]:
        checkpoint()
        return self._spans[(text, _kw_key(kw))]


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    # the body came from json.loads: a JSON round trip is an exact, fast deep copy
    return json.loads(json.dumps(body, ensure_ascii=False))


def _chunks(texts: Sequence[str], chunk_chars: int) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for t in texts:
        if cur and size + len(t) > chunk_chars:
            out.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += len(t)
    if cur:
        out.append(cur)
    return out


@dataclass
class MaskOutcome:
    body: dict[str, Any]
    vault: Vault
    result: MaskResult
    idmap: IdentityMap


def mask_job(body: dict[str, Any], policy: Policy, detector: Any, gate: FairGate, hash_key: bytes,
             namespace: str, chunk_chars: int) -> MaskOutcome:
    """Mask a copy of ``body`` (see the module docstring). Runs in a pool thread. Raises
    ``PolicyBlocked`` (with ``.result``) like :func:`mask_request`; never touches ``body``."""
    probe = _copy(body)
    collect = _Collect()
    languages: dict[str, str | None] = {}
    Masker(policy, collect, Vault((), hash_key=hash_key), namespace, languages).mask_slots(
        request_slots(probe, policy, IdentityMap()))
    spans: dict[tuple[str, str], list[Any]] = {}
    by_kw: dict[str, list[str]] = {}
    for text, key in collect.asks:
        by_kw.setdefault(key, []).append(text)
    for key, texts in by_kw.items():
        kw = collect.asks[(texts[0], key)]
        for batch in _chunks(texts, chunk_chars):
            checkpoint()
            with gate.turn():
                found = detector.detect_many(batch, **kw)
            spans.update(((t, key), f) for t, f in zip(batch, found))
    checkpoint()
    work = _copy(body)
    idmap = IdentityMap()
    slots = request_slots(work, policy, idmap)  # walked once: the vault's view and the masking
    vault = Vault([s.get() for s in slots], hash_key=hash_key)
    result = mask_canonical(work, policy, _Known(spans), vault, namespace, idmap, slots, languages)
    return MaskOutcome(work, vault, result, idmap)


def adopt(body: dict[str, Any], outcome: MaskOutcome) -> None:
    """Put the masked copy in place of the request's body (event loop, the owning request)."""
    body.clear()
    body.update(outcome.body)
