"""Output-side PII window: hide personal data in a reply that the caller never supplied.

``OutputPIIFilter`` runs *before* the restorer, on text still holding the vault's
placeholders. It keeps a buffer and scans it in fixed windows of ``hold_back + step``
characters (``step = min(hold_back, max(32, hold_back // 4))``) taken from the start of the buffer, so the
windows (and so the output) do not depend on how the reply was chunked, and ``detect`` runs
once per window (about ``step`` released characters), never on the whole growing reply. Text
leaves as soon as it is ``hold_back`` characters behind the head of the stream.

Release rule, per window ``w`` (at finish the rest is scanned and released whole):

1. the cut starts at ``len(w) - hold_back``: the last ``hold_back`` characters are held;
2. a cut inside a detected span (or one of the vault's tokens) moves to the span's start;
3. a cut inside a whitespace-free run moves to the run's start (a value the detector has not
   recognised yet, ``sk-ab``, ``123-45-``, is not released in part);
4. repeat 2-3 until stable. If the cut reaches 0 (a whitespace-free run longer than
   ``hold_back``), the window is cut at ``len(w) - hold_back`` anyway, extended to the end of
   a detected span it falls into. Values longer than ``hold_back`` may thus be split.

Detected values in the released part are replaced: ``redact`` -> ``<TYPE>``; ``mask`` ->
``<TYPE_OUT_N>`` (numbered per type and value in this filter, never restored: the restorer
only knows the vault's ``<TYPE_N>``); ``allow`` passes text through without detection.
Values the vault owns (the caller's own, or text overlapping a vault token) are left alone so
the restorer and the caller get them. Buffer: under ``hold_back + step`` between feeds, plus
the chunk being fed.

A non-streamed reply goes through ``whole``: one detection over the complete text (a ~1 KB
reply: one call instead of about a dozen overlapping windows).

Cost: with ``detect_sync`` and ``offload`` (the server's guard pool), all windows of one
``feed`` are scanned in one job (one thread hop, not one per window: a 1 KB non-streamed reply
has about a dozen windows), with a checkpoint before each window so an abandoned job stops.
The windows and the output are the same either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Literal, Protocol

from trustproxy.errors import GuardFailed, TrustProxyError
from trustproxy.pii.vault import Vault
from trustproxy.pipeline import Decision

__all__ = ["OutputPIIFilter", "SpanLike"]

GUARD = "output_pii"


class SpanLike(Protocol):
    """What ``detect`` returns (``trustproxy.pii.detector.Span`` fits)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def entity_type(self) -> str: ...
    @property
    def score(self) -> float: ...


Detect = Callable[[str], Awaitable[Sequence[SpanLike]]]
DetectSync = Callable[[str], Sequence[SpanLike]]
Offload = Callable[[Callable[[], str]], Awaitable[str]]


class OutputPIIFilter:
    """A ``StreamFilter`` hiding personal data in a reply; see the module docstring."""

    def __init__(self, detect: Detect, vault: Vault, *,
                 action: Literal["mask", "redact", "allow"] = "redact", hold_back: int = 256,
                 entities: Collection[str] | None = None, detect_sync: DetectSync | None = None,
                 offload: Offload | None = None) -> None:
        if action not in ("mask", "redact", "allow"):
            raise ValueError("action must be mask, redact or allow")
        if hold_back < 1:
            raise ValueError("hold_back must be positive")
        self._detect = detect
        self._detect_sync = detect_sync if offload is not None else None
        self._offload = offload
        self._vault = vault
        self._action = action
        self._hold = hold_back
        # scan every ``step`` new characters (not every ``hold_back``): text is released as soon
        # as it is ``hold_back`` characters behind the head of the stream
        self._step = min(hold_back, max(32, hold_back // 4))
        self._entities = frozenset(entities) if entities is not None else None
        self._buf = ""
        self._out_keys: dict[tuple[str, str], str] = {}
        self._out_next: dict[str, int] = {}
        self.decisions: list[Decision] = []

    async def feed(self, text: str) -> str:
        if self._action == "allow":
            return text
        self._buf += text
        window = self._hold + self._step
        if len(self._buf) < window:
            return ""
        if self._detect_sync is not None and self._offload is not None:
            return await self._offload(self._feed_sync)
        out: list[str] = []
        while len(self._buf) >= window:
            w = self._buf[:window]
            kept, barriers = self._spans(w, await self._call(self._detect, w))
            out.append(self._release(w, kept, barriers))
        return "".join(out)

    def _feed_sync(self) -> str:
        """All full windows of the buffer, in the calling (pool) thread."""
        from trustproxy.execution import checkpoint

        assert self._detect_sync is not None
        window = self._hold + self._step
        out: list[str] = []
        while len(self._buf) >= window:
            checkpoint()
            w = self._buf[:window]
            kept, barriers = self._spans(w, self._call_sync(self._detect_sync, w))
            out.append(self._release(w, kept, barriers))
        return "".join(out)

    def _release(self, w: str, kept: list[tuple[int, int, str, float]], barriers: list[tuple[int, int]]) -> str:
        cut = self._safe_cut(w, barriers)
        self._buf = self._buf[cut:]
        return self._render(w[:cut], [s for s in kept if s[1] <= cut])

    async def finish(self) -> str:
        if self._action == "allow" or not self._buf:
            return ""
        w, self._buf = self._buf, ""
        if self._detect_sync is not None and self._offload is not None:
            detect_sync = self._detect_sync
            return await self._offload(lambda: self._render(w, self._spans(w, self._call_sync(detect_sync, w))[0]))
        kept, _ = self._spans(w, await self._call(self._detect, w))
        return self._render(w, kept)

    async def whole(self, text: str) -> str:
        """A complete reply (not streamed): appended and finished, so one detection over all of
        it (``finish`` scans the rest whole). No window boundary can cut a value here; for values
        shorter than ``hold_back`` the result is the windows' result."""
        if self._action == "allow":
            return text
        self._buf += text
        return await self.finish()

    @staticmethod
    async def _call(detect: Detect, w: str) -> Sequence[SpanLike]:
        try:
            return await detect(w)
        except TrustProxyError:
            raise
        except Exception as exc:
            raise GuardFailed(f"Output PII detection failed ({type(exc).__name__}).") from None

    @staticmethod
    def _call_sync(detect: DetectSync, w: str) -> Sequence[SpanLike]:
        from trustproxy.execution import Abandoned

        try:
            return detect(w)
        except (TrustProxyError, Abandoned):
            raise
        except Exception as exc:
            raise GuardFailed(f"Output PII detection failed ({type(exc).__name__}).") from None

    def _spans(self, w: str, found: Sequence[SpanLike]) -> tuple[list[tuple[int, int, str, float]],
                                                                 list[tuple[int, int]]]:
        """Spans to replace in ``w``, and every span a cut must not fall into."""
        tokens = self._vault.token_spans(w)
        barriers = list(tokens)
        kept: list[tuple[int, int, str, float]] = []
        last_end = 0
        for sp in sorted(found, key=lambda s: (s.start, -s.end)):
            start, end = sp.start, sp.end
            if not 0 <= start < end <= len(w):
                raise GuardFailed("Output PII detector returned a span outside the text.")
            if self._entities is not None and sp.entity_type not in self._entities:
                continue
            barriers.append((start, end))
            if start < last_end:
                continue  # overlaps a span already kept
            value = w[start:end]
            if self._vault.owns(value) or any(a < end and start < b
                                               for a, b in tokens):
                continue
            kept.append((start, end, sp.entity_type, float(sp.score)))
            last_end = end
        return kept, barriers

    def _safe_cut(self, w: str, barriers: list[tuple[int, int]]) -> int:
        first = cut = len(w) - self._hold
        moved = True
        while moved and cut > 0:
            moved = False
            for a, b in barriers:
                if a < cut < b:
                    cut, moved = a, True
            if 0 < cut < len(w) and not w[cut - 1].isspace() and not w[cut].isspace():
                while cut > 0 and not w[cut - 1].isspace():
                    cut -= 1
                moved = True
        if cut > 0:
            return cut
        cut, moved = first, True
        while moved:
            moved = False
            for a, b in barriers:
                if a < cut < b:
                    cut, moved = b, True
        return cut

    def _render(self, text: str, spans: list[tuple[int, int, str, float]]) -> str:
        parts: list[str] = []
        pos = 0
        for start, end, etype, score in spans:
            parts.append(text[pos:start])
            parts.append(self._replacement(etype, text[start:end]))
            self.decisions.append(Decision(guard=GUARD, action=self._action,
                                           entity_type=etype, score=score))
            pos = end
        parts.append(text[pos:])
        return "".join(parts)

    def _replacement(self, etype: str, value: str) -> str:
        if self._action == "redact":
            return f"<{etype}>"
        key = self._out_keys.get((etype, value))
        if key is None:
            n = self._out_next.get(etype, 0) + 1
            self._out_next[etype] = n
            key = self._out_keys[(etype, value)] = f"{etype}_OUT_{n}"
        return f"<{key}>"
