"""The toxicity stream window: split a reply into sentences as they complete, score each one (with
up to ``window_sentences - 1`` earlier sentences as context), act per category.

Modes:
- ``hold``: a sentence is released only after it is scored. Scoring runs in the background, so
  ``feed`` returns what has been judged so far (released text may wait for the next chunk) and
  ``finish`` waits for the rest. ``redact`` replaces the sentence with ``redact_message``;
  ``block`` raises ``PolicyBlocked`` before any of it leaves.
- ``fast``: text is released at once; scoring runs alongside, and a failed window raises at the next
  ``feed``/``finish`` (the stream is cut). The offending text has already left, so ``redact``
  degrades to ``block`` (recorded with reason ``redact_in_fast_mode``).

Sentence end: ``. ! ?`` (plus closing quotes/brackets) followed by whitespace, or a newline. A
period after a known abbreviation (``e.g.``, ``Dr.``), a single-letter initial or a bare list number
(``1.``) does not end a sentence; ``3.14`` never does (no whitespace after the period). Text with no
sentence end is cut after ``max_hold_chars`` (at the last whitespace if there is one in the second
half). The split depends on the text only, never on how it was chunked.

Units: a window is a sentence plus up to ``window_sentences - 1`` earlier ones; a piece cut by
``max_hold_chars`` (no sentence end) is always scored again together with the next piece, so a
phrase cut in two is seen whole. Streamed and non-streamed replies go through the same
``ToxicityFilter`` (a non-streamed reply is one ``feed`` then ``finish``) and prompts through the
same window rule, so all three score the same units. With ``quoted_speech: ignore`` reported
quotations are replaced by ``"..."`` in what is scored (``trustproxy.toxicity.quotes``); the text
released is never changed by that.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from trustproxy.errors import GuardFailed, PolicyBlocked, TrustProxyError
from trustproxy.pipeline import Decision
from trustproxy.policy.schema import Threshold, ToxicityConfig
from trustproxy.toxicity.batching import BatchingScorer
from trustproxy.toxicity.quotes import QuoteMasker

GUARD = "toxicity"

# Used when a policy lists no categories. Replies from an assistant are rarely toxic, so the bar for
# stopping one is high; the worst kinds stop the reply at lower scores; plain rudeness is redacted.
DEFAULT_CATEGORIES: dict[str, Threshold] = {
    "toxicity": Threshold(threshold=0.8, action="block"),
    "severe_toxicity": Threshold(threshold=0.5, action="block"),
    "threat": Threshold(threshold=0.6, action="block"),
    "identity_attack": Threshold(threshold=0.6, action="block"),
    "insult": Threshold(threshold=0.7, action="redact"),
    "obscene": Threshold(threshold=0.7, action="redact"),
}

_END = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s)|\n""")
_WORD_BEFORE = re.compile(r"(\w+(?:\.\w+)*)$")
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "cf", "vs", "al", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st",
    "no", "nr", "fig", "approx", "dept", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
})
_SENTENCE_END = re.compile(r"""(?:[.!?]+["'\u201d\u2019)\]]*|\n)\s*$""")
_LAST_SPACE = re.compile(r"\s(?=\S*$)")
_EDGES = re.compile(r"^(\s*)(.*?)(\s*)$", re.S)


class SentenceSplitter:
    """Incremental splitter: ``push(text)`` returns the sentences it completes (with their leading
    whitespace); ``flush()`` returns the rest. Concatenated, the pieces are the input."""

    def __init__(self, max_hold_chars: int) -> None:
        self.max_hold = max_hold_chars
        self._buf = ""

    def push(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while (cut := self._find_cut()) is not None:
            out.append(self._buf[:cut])
            self._buf = self._buf[cut:]
        return out

    def flush(self) -> str:
        rest, self._buf = self._buf, ""
        return rest

    @property
    def pending(self) -> str:
        return self._buf

    def _find_cut(self) -> int | None:
        buf = self._buf
        for m in _END.finditer(buf):
            if m.end() > self.max_hold:
                break
            if not buf[:m.end()].strip() or (m.group() != "\n" and self._no_end(buf, m.start())):
                continue
            return m.end()
        if len(buf) > self.max_hold:
            head = buf[:self.max_hold]
            sp = _LAST_SPACE.search(head)
            return sp.end() if sp and sp.end() >= self.max_hold // 2 else self.max_hold
        return None

    @staticmethod
    def _no_end(buf: str, dot: int) -> bool:
        if buf[dot] != "." or buf[dot + 1:dot + 2] == ".":
            return False
        w = _WORD_BEFORE.search(buf, 0, dot)
        if not w:
            return False
        word = w.group(1)
        if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word.isupper()):
            return True
        return word.isdigit() and _starts_segment(buf, w.start())


def _starts_segment(buf: str, pos: int) -> bool:
    """True if only whitespace precedes ``pos`` in the current segment (a list number ``1.``)."""
    return not buf[:pos].strip()


def ends_sentence(segment: str) -> bool:
    """False for a piece the splitter cut at ``max_hold_chars`` (no sentence end)."""
    return bool(_SENTENCE_END.search(segment))


def context_size(k: int, previous: str | None) -> int:
    """How many earlier segments a window includes: ``k`` (``window_sentences - 1``), and at least
    one when the previous segment was cut without a sentence end."""
    if previous is not None and not ends_sentence(previous):
        return max(k, 1)
    return k


class _Masker:
    """``quoted_speech`` as a callable: masks reported quotations in order, or passes through."""

    def __init__(self, cfg: ToxicityConfig) -> None:
        self._q = QuoteMasker() if cfg.quoted_speech == "ignore" else None

    def __call__(self, segment: str) -> str:
        return self._q.mask(segment) if self._q is not None else segment


def effective_categories(cfg: ToxicityConfig, provided: Sequence[str]) -> dict[str, Threshold]:
    """The configured categories (``DEFAULT_CATEGORIES`` if none) that the scorer reports."""
    cats = dict(cfg.categories) or DEFAULT_CATEGORIES
    return {c: t for c, t in cats.items() if c in provided}


def unscreened_categories(cfg: ToxicityConfig, provided: Sequence[str]) -> list[str]:
    """Configured categories the active scorer does not report (not screened)."""
    cats = dict(cfg.categories) or DEFAULT_CATEGORIES
    return sorted(c for c in cats if c not in provided)


def _blocked(categories: Sequence[str], what: str = "reply") -> PolicyBlocked:
    cats = ", ".join(sorted(set(categories)))
    verb = "stopped" if what == "reply" else "refused"
    return PolicyBlocked(f"The {what} was {verb} by the content policy (categories: {cats})",
                         code="content_filter")


async def _score(batcher: BatchingScorer, texts: Sequence[str]) -> list[dict[str, float]]:
    """Scores via the batcher; any scorer error becomes ``GuardFailed`` (fail closed)."""
    try:
        return await batcher.score_many(texts)
    except TrustProxyError:
        raise
    except Exception as e:
        raise GuardFailed("toxicity scorer failed") from e


def _hits(scores: Mapping[str, float], cats: Mapping[str, Threshold]) -> list[tuple[str, float, str]]:
    """(category, score, action) for every category at or over its threshold."""
    out: list[tuple[str, float, str]] = []
    for c, th in cats.items():
        if c not in scores:
            raise GuardFailed(f"toxicity scorer returned no score for {c}")
        if scores[c] >= th.threshold:
            out.append((c, scores[c], th.action))
    return out


def _retrieve(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled():
        task.exception()


def _redact(sentence: str, message: str) -> str:
    m = _EDGES.match(sentence)
    assert m is not None
    return m.group(1) + message + m.group(3)


class ToxicityFilter:
    """A ``StreamFilter`` for one choice's content. ``decisions`` (no text) and ``max_scores``
    (per category, over the whole reply) are for the audit trail and metrics.

    Each completed sentence is scored in the background as soon as it completes (windows of
    concurrent streams share batches); ``feed`` returns, in order, what has been judged so far
    and never waits for a score, so scoring overlaps the upstream stream instead of adding up
    sentence by sentence. ``finish`` waits for the rest. In ``hold`` mode a sentence is released
    only once judged; in ``fast`` mode ``feed`` returns its input at once."""

    def __init__(self, batcher: BatchingScorer, cfg: ToxicityConfig) -> None:
        self._batcher = batcher
        self._cfg = cfg
        self._cats = effective_categories(cfg, batcher.categories)
        self._split = SentenceSplitter(cfg.max_hold_chars)
        self._k = cfg.window_sentences - 1
        self._fast = cfg.mode == "fast"
        self._mask = _Masker(cfg)
        # last segments sent to scoring, as (raw, as scored); and as released (raw or redacted)
        self._sent: deque[tuple[str, str]] = deque(maxlen=max(self._k, 1))
        self._released: deque[tuple[str, str]] = deque(maxlen=max(self._k, 1))
        self._queue: deque[tuple[str, str, int, str, asyncio.Future[dict[str, float]]]] = deque()
        self._error: TrustProxyError | None = None
        self.decisions: list[Decision] = []
        self.max_scores: dict[str, float] = {}
        self.windows = 0

    async def feed(self, text: str) -> str:
        self._check()
        for seg in self._split.push(text):
            self._launch(seg)
        released = await self._drain(wait=False)
        return text if self._fast else released

    async def finish(self) -> str:
        self._check()
        rest = self._split.flush()
        if rest.strip():
            self._launch(rest)
        released = await self._drain(wait=True)
        if self._fast:
            return ""
        return released if rest.strip() else released + rest  # a blank tail needs no score

    async def whole(self, text: str) -> str:
        """A complete reply (not streamed): the same windows as ``feed(text)`` + ``finish()``,
        judged the same way, but scored in one call for all of them (one task and one batch
        instead of one per sentence)."""
        self._check()
        segs = list(self._split.push(text))
        rest = self._split.flush()
        if rest.strip():
            segs.append(rest)
        plans = [self._window(seg) for seg in segs]
        if plans:
            try:
                scores = await _score(self._batcher, [scored for *_, scored in plans])
            except TrustProxyError as e:
                self._error = e
                raise
            loop = asyncio.get_running_loop()
            for (seg, masked, n, win, _), sc in zip(plans, scores):
                done: asyncio.Future[dict[str, float]] = loop.create_future()
                done.set_result(sc)
                self._queue.append((seg, masked, n, win, done))
        released = await self._drain(wait=True)
        if self._fast:
            return text
        return released if rest.strip() else released + rest

    def cancel(self) -> None:
        """The request ended: stop scoring what is still queued (nothing more is released)."""
        for *_, t in self._queue:
            t.cancel()
        self._queue.clear()

    # -- internals -------------------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    @staticmethod
    def _ctx(prior: Sequence[tuple[str, str]], n: int) -> list[tuple[str, str]]:
        return list(prior)[-n:] if n else []

    def _window(self, seg: str) -> tuple[str, str, int, str, str]:
        """``seg``'s window: (segment, its masked form, context size, window as written, window
        as scored); the segment joins the context of the next one."""
        masked = self._mask(seg)
        n = context_size(self._k, self._sent[-1][0] if self._sent else None)
        ctx = self._ctx(self._sent, n)
        win = "".join([r for r, _ in ctx] + [seg])
        scored = "".join([m for _, m in ctx] + [masked])
        self._sent.append((seg, masked))
        return seg, masked, n, win, scored

    def _launch(self, seg: str) -> None:
        seg, masked, n, win, scored = self._window(seg)
        task = asyncio.get_running_loop().create_task(self._score_one(scored))
        task.add_done_callback(_retrieve)  # an abandoned stream must not log "never retrieved"
        self._queue.append((seg, masked, n, win, task))

    async def _score_one(self, win: str) -> dict[str, float]:
        return (await _score(self._batcher, [win]))[0]

    async def _drain(self, *, wait: bool) -> str:
        """Judges scored windows in stream order (all of them if ``wait``); returns the released
        text. A window whose context changed through a redaction is scored again, so results do
        not depend on timing or chunking."""
        out: list[str] = []
        try:
            while self._queue:
                seg, masked, n, win, task = self._queue[0]
                if not (wait or task.done()):
                    break
                scores = await task
                self._queue.popleft()
                if not self._fast:
                    ctx = self._ctx(self._released, n)
                    if "".join([r for r, _ in ctx] + [seg]) != win:
                        scores = await self._score_one("".join([m for _, m in ctx] + [masked]))
                if self._judge(scores) == "redact":
                    r = _redact(seg, self._cfg.redact_message)
                    self._released.append((r, r))
                else:
                    r = seg
                    self._released.append((seg, masked))
                out.append(r)
        except TrustProxyError as e:
            self._error = e
            for *_, t in self._queue:
                t.cancel()
            self._queue.clear()
            raise
        return "".join(out)

    def _judge(self, scores: Mapping[str, float]) -> str | None:
        """Records decisions; raises on block; returns "redact", "flag" or None."""
        for c, v in scores.items():
            self.max_scores[c] = max(self.max_scores.get(c, 0.0), v)
        self.windows += 1
        acts = []
        for c, v, action in _hits(scores, self._cats):
            reason = None
            if self._fast and action == "redact":
                action, reason = "block", "redact_in_fast_mode"
            self.decisions.append(Decision(guard=GUARD, action=action, category=c,
                                           score=round(v, 4), reason=reason))
            acts.append((c, action))
        blocked = [c for c, a in acts if a == "block"]
        if blocked:
            raise _blocked(blocked)
        kinds = {a for _, a in acts}
        return "redact" if "redact" in kinds else ("flag" if "flag" in kinds else None)


async def screen_prompt(batcher: BatchingScorer, cfg: ToxicityConfig, texts: list[str]) -> list[Decision]:
    """Scores user messages (split into windows like replies). A category at or over its threshold
    with action ``block`` or ``redact`` refuses the request (prompts are not rewritten here);
    ``flag`` is recorded. One decision per category, with its highest score."""
    cats = effective_categories(cfg, batcher.categories)
    k = cfg.window_sentences - 1
    windows: list[str] = []
    for text in texts:
        sp = SentenceSplitter(cfg.max_hold_chars)
        segs = [s for s in sp.push(text) + [sp.flush()] if s.strip()]
        mask = _Masker(cfg)
        masked = [mask(s) for s in segs]
        for i in range(len(segs)):
            n = context_size(k, segs[i - 1] if i else None)
            windows.append("".join((masked[:i][-n:] if n else []) + [masked[i]]))
    if not windows:
        return []
    best: dict[str, tuple[float, str]] = {}
    for sc in await _score(batcher, windows):
        for c, v, action in _hits(sc, cats):
            if c not in best or v > best[c][0]:
                best[c] = (v, action)
    decisions = [Decision(guard=GUARD, action="block" if a != "flag" else "flag", category=c,
                          score=round(v, 4), reason="prompt" if a != "redact" else "prompt_redact_refuses")
                 for c, (v, a) in sorted(best.items())]
    refused = [d.category for d in decisions if d.action == "block" and d.category]
    if refused:
        err = _blocked(refused, what="request")
        err.decisions = decisions  # type: ignore[attr-defined]  # for the audit trail
        raise err
    return decisions
