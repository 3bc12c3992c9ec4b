"""Restoring into JSON the model wrote in plain content: an incremental decoder.

A reply's ``content`` is prose, but models often write JSON in it (``{"to": "<PERSON_1>"}``).
A restored value holding ``"`` or ``\\`` would break that JSON, so this filter, placed before
the plain restorer, restores the vault's placeholders that stand *inside a double-quoted
string* with JSON escaping; everything else passes on unchanged to the plain restorer.

"Inside a string" is tracked over the text: an unescaped ``"`` opens or closes one, and a line
end closes it (a JSON string holds no raw line break), so a stray quote in prose affects one
line at most; escaping a value without ``"``, ``\\`` or control characters changes nothing.
Only a possible placeholder prefix inside a string is held back (at most the vault's longest
surface), so the output for any chunking equals the output for the whole text.

A value goes back as the caller wrote it: escaped as it was in the caller's own JSON string, or,
if the caller wrote it outside JSON (a quoted CSV cell, a shell argument), unchanged unless it
holds a quote or a backslash. A quoted placeholder of a JSON number (``"<CREDIT_CARD_1>"``, or
``\\"<CREDIT_CARD_1>\\"`` one level down) becomes the bare number again.
"""

from __future__ import annotations

import re

from trustproxy.pii.vault import OPENS, Vault

_OPEN_CHARS = frozenset(o[0] for o in OPENS)
# the characters that can change the state or start a placeholder; a run of any others is copied
_SPECIAL = re.compile("[" + re.escape("".join(sorted(set('"\\\r\n') | _OPEN_CHARS))) + "]")


class JsonStringRestorer:
    """A ``StreamFilter`` for one segment of reply text (one choice's content)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._in = False     # inside a double-quoted string
        self._esc = False    # the previous character was a backslash inside a string
        self._pending = ""

    async def feed(self, text: str) -> str:
        return self.feed_sync(text)

    async def finish(self) -> str:
        return self.finish_sync()

    def feed_sync(self, text: str) -> str:
        return self._run(text, final=False)

    def finish_sync(self) -> str:
        return self._run("", final=True)

    def _run(self, text: str, *, final: bool) -> str:
        s = self._pending + text
        pattern = self._vault.pattern()
        limit = self._vault.max_surface_len
        out: list[str] = []
        i, n = 0, len(s)
        numbers = pattern is not None and bool(self._vault.number_keys)
        while i < n:
            if not self._esc:
                m = _SPECIAL.search(s, i)
                j = n if m is None else m.start()
                if j > i:
                    out.append(s[i:j])
                    i = j
                    continue
            ch = s[i]
            if numbers and not self._esc and ch in '"\\':
                # a JSON number's placeholder, quoted at any level: the bare number, quotes
                # and all (the string state is the same after it as before)
                m = pattern.match(s, i)  # type: ignore[union-attr]
                if m is not None and m.group("num") is not None:
                    out.append(self._vault.replacement(m))
                    i = m.end()
                    continue
                if not final and n - i <= limit:
                    break
            if self._in and not self._esc and pattern is not None and ch in _OPEN_CHARS:
                m = pattern.match(s, i)
                if m is not None:
                    out.append(self._vault.replacement(m, in_string=True))
                    i = m.end()
                    continue
                if not final and n - i <= limit:
                    break  # could still grow into a placeholder: decide with more text
            if self._esc:
                self._esc = False
            elif ch == "\\" and self._in:
                self._esc = True
            elif ch == '"':
                self._in = not self._in
            elif ch in "\r\n":
                self._in = False
            out.append(ch)
            i += 1
        self._pending = s[i:]
        return "".join(out)
