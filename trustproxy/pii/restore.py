"""Streaming restorer: an incremental decoder putting the caller's values back into a reply.

``StreamRestorer`` releases text as soon as it cannot be part of a restorable token. It holds
back only a tail that could still become one of its vault's tokens: a prefix of a tolerated
placeholder spelling (``<``, ``&lt;PER``, ``[person 1``, ``\\u003cPERSON_1\\u00``) whose words
so far fit one of the vault's placeholders, or a prefix of one of its synthetic values (a
whole fake is held until the next character shows it ends on a word boundary), or, when the
vault holds JSON numbers, a prefix of a quoted placeholder (``"<CREDIT_CA``, ``\\"<CRE``: the
quotes go with it, the number comes back bare). For any chunking, the concatenated output
equals ``vault.restore(whole)``.
"""

from __future__ import annotations

import re

from trustproxy.pii.vault import CLOSES, OPENS, Vault

__all__ = ["StreamRestorer"]

_WORD = re.compile(r"\w")
_INNER = re.compile(r"[ \t]{0,4}(?:[A-Za-z0-9]+(?:[ \t_\-]{1,3}[A-Za-z0-9]+)*[ \t_\-]{0,4})?")
_SEPS = re.compile(r"[ \t_\-]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_OPEN_CHARS = frozenset(o[0] for o in OPENS)
_QUOTE_CHARS = frozenset('"\\')


class StreamRestorer:
    """A ``StreamFilter`` restoring ``vault``'s tokens in one stream of text."""

    def __init__(self, vault: Vault, *, json_escape: bool = False) -> None:
        self._vault = vault
        self._json = json_escape
        self._pending = ""  # input not yet released
        self._ctx = ""      # the input character just before ``_pending`` (for word bounds)

    async def feed(self, text: str) -> str:
        return self.feed_sync(text)

    async def finish(self) -> str:
        return self.finish_sync()

    def feed_sync(self, text: str) -> str:
        """Restored text that can no longer change; a possible token prefix is held."""
        if not text:
            return ""
        self._pending += text
        return self._drain(final=False)

    def finish_sync(self) -> str:
        """Everything held, restored where it matches."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> str:
        pattern = self._vault.pattern()
        s = self._ctx + self._pending
        n = len(s)
        pos = len(self._ctx)
        out: list[str] = []
        if pattern is None:
            out.append(s[pos:])
            pos = n
        else:
            # Before ``limit`` the rest of the text is longer than any token: decided.
            limit = n if final else n - self._vault.max_surface_len - 1
            while True:
                m = pattern.search(s, pos)
                if m is None or m.start() >= limit:
                    break
                out.append(s[pos:m.start()])
                out.append(self._vault.replacement(m, self._json))
                pos = m.end()
            if final:
                out.append(s[pos:])
                pos = n
            else:
                start = max(pos, limit)
                out.append(s[pos:start])
                pos = start
                initials = self._vault.fake_initials
                while pos < n and not self._could_start(s, pos):
                    ch = s[pos]
                    m = pattern.match(s, pos) if ch in _OPEN_CHARS or ch in initials or (
                        ch in _QUOTE_CHARS and self._vault.number_keys) else None
                    if m is not None:
                        out.append(self._vault.replacement(m, self._json))
                        pos = m.end()
                    else:
                        out.append(s[pos])
                        pos += 1
        self._ctx = s[pos - 1] if pos else ""
        self._pending = s[pos:]
        return "".join(out)

    def _could_start(self, s: str, pos: int) -> bool:
        """Whether a token of the vault could start at ``pos`` and end beyond the text."""
        tail = s[pos:]
        if tail[0] in _QUOTE_CHARS and self._vault.number_keys and self._quoted_prefix(tail):
            return True
        if tail[0] in _OPEN_CHARS and self._vault.placeholder_keys and self._placeholder_prefix(tail):
            return True
        if tail[0] in self._vault.fake_initials and (pos == 0 or not _WORD.match(s[pos - 1])):
            return any(f.startswith(tail) for f in self._vault.fakes)
        return False

    def _quoted_prefix(self, tail: str) -> bool:
        """``tail`` could still grow into a quoted number placeholder (``\\"<CREDIT_CARD_1>\\"``)."""
        rest = tail.lstrip("\\")
        if len(tail) - len(rest) > 8:
            return False
        if not rest:
            return True
        if rest[0] != '"':
            return False
        rest = rest[1:]
        return not rest or (rest[0] in _OPEN_CHARS and self._placeholder_prefix(rest, closing_ok=True))

    def _placeholder_prefix(self, tail: str, closing_ok: bool = False) -> bool:
        low = tail.translate(_ASCII_LOWER)
        for o in OPENS:
            if len(low) <= len(o):
                if o.startswith(low):
                    return True
            elif low.startswith(o) and self._inner_prefix(tail[len(o):], closing_ok):
                return True
        return False

    def _inner_prefix(self, rest: str, closing_ok: bool = False) -> bool:
        """``rest`` (after an opening bracket) could still grow into one of the vault's
        placeholders. A superset test: it may hold a little more than needed, never less.
        ``closing_ok``: a whole closing bracket (then a quote) may follow (quoted numbers)."""
        cut = min((i for i in (rest.find("&"), rest.find("\\")) if i >= 0), default=-1)
        if closing_ok:
            cut = min((i for i in (cut, rest.find(">"), rest.find("]")) if i >= 0), default=-1)
        closing = cut >= 0
        inner, partial_close = (rest[:cut], rest[cut:]) if closing else (rest, "")
        if closing:
            low = partial_close.translate(_ASCII_LOWER)
            whole = next((c for c in CLOSES if closing_ok and low.startswith(c)), None)
            if whole is not None:
                after = low[len(whole):]  # only the escaping of the closing quote so far
                if len(after) > 8 or after.strip("\\"):
                    return False
            elif not any(len(low) < len(c) and c.startswith(low) for c in CLOSES):
                return False
        if not _INNER.fullmatch(inner):
            return False
        core = inner.strip(" \t")
        norm = _SEPS.sub("_", core).upper()
        keys = self._vault.placeholder_keys
        if closing:
            return norm in keys
        return any(k.startswith(norm) for k in keys)
