"""Structure in a text: JSON documents (also JSON escaped inside a JSON string), CSV tables and
``key=value`` / ``Label: value`` lines, found with the positions of their values.

Two uses:

- :func:`fields` gives every *labelled value* ``(key, start, end)``: the key (a JSON member
  name, a CSV header cell, the left side of ``=``/``:``) is the strongest context a value has,
  so the detector types values by their key (:mod:`trustproxy.pii.keyed`).
- :func:`json_literals` gives the raw extent of every JSON string content and number literal, so
  masking can keep a JSON document valid: a replacement never crosses a literal, never splits an
  escape sequence, and a masked number becomes a quoted string.

A JSON string's decoded content maps back to raw offsets character by character (an escape such
as ``\\u00e9`` maps to all of its raw characters), so a value found in decoded, nested JSON is
reported at its raw place. Everything here is bounded by the input (no recursion deeper than
:data:`MAX_DEPTH`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import regex

__all__ = ["Field", "JsonLiteral", "fields", "json_literals", "decode_json_string", "MAX_DEPTH"]

MAX_DEPTH = 32
_WS = " \t\r\n"
_NUMBER = regex.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+\-]?\d+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}


@dataclass(frozen=True)
class Field:
    """A value at ``[start, end)`` of the text, labelled by ``key`` (as written)."""

    key: str
    start: int
    end: int
    kind: str  # "string" | "number" | "bare" | "line" | "column" (a line under a lone header)
    #            | "member" (a member name; ``key`` is the key of its object)


@dataclass(frozen=True)
class JsonLiteral:
    """The raw extent of one JSON literal's content. For a string: inside the quotes. ``quote``
    is how a double quote is written at this place (``"`` at top level, ``\\"`` one level of
    escaped JSON down ...)."""

    start: int
    end: int
    kind: str  # "string" | "number"
    quote: str


class _Fail(Exception):
    pass


class _Parser:
    """A small position-keeping JSON parser over ``s`` (already decoded text of one level);
    ``pos_map[i]`` is the raw start of ``s[i]``, ``pos_end[i]`` the raw end."""

    def __init__(self, s: str, pos_map: list[int], pos_end: list[int], depth: int,
                 quote: str) -> None:
        self.s, self.map, self.end, self.depth, self.quote = s, pos_map, pos_end, depth, quote
        self.fields: list[Field] = []
        self.literals: list[JsonLiteral] = []

    def raw(self, a: int, b: int) -> tuple[int, int]:
        if b <= a:
            at = self.map[a] if a < len(self.map) else (self.end[-1] if self.end else 0)
            return at, at
        return self.map[a], self.end[b - 1]

    def ws(self, i: int) -> int:
        s = self.s
        while i < len(s) and s[i] in _WS:
            i += 1
        return i

    def value(self, i: int, key: str | None, nest: int) -> int:
        if nest > MAX_DEPTH:
            raise _Fail
        s = self.s
        i = self.ws(i)
        if i >= len(s):
            raise _Fail
        c = s[i]
        if c == "{":
            i = self.ws(i + 1)
            if i < len(s) and s[i] == "}":
                return i + 1
            while True:
                i = self.ws(i)
                if i >= len(s) or s[i] != '"':
                    raise _Fail
                k, kb, ke, i = self.string(i)
                self._string_literal(kb, ke, k, key=None)
                if key is not None:
                    # a member name, labelled by the key of its object (``"contacts": {"<who>":``)
                    ka, kz = self.raw(kb, ke)
                    self.fields.append(Field(key, ka, kz, "member"))
                i = self.ws(i)
                if i >= len(s) or s[i] != ":":
                    raise _Fail
                i = self.value(i + 1, k, nest + 1)
                i = self.ws(i)
                if i < len(s) and s[i] == ",":
                    i += 1
                    continue
                if i < len(s) and s[i] == "}":
                    return i + 1
                raise _Fail
        if c == "[":
            i = self.ws(i + 1)
            if i < len(s) and s[i] == "]":
                return i + 1
            while True:
                i = self.value(i, key, nest + 1)
                i = self.ws(i)
                if i < len(s) and s[i] == ",":
                    i += 1
                    continue
                if i < len(s) and s[i] == "]":
                    return i + 1
                raise _Fail
        if c == '"':
            v, vb, ve, i = self.string(i)
            self._string_literal(vb, ve, v, key=key)
            return i
        m = _NUMBER.match(s, i)
        if m:
            a, b = self.raw(m.start(), m.end())
            self.literals.append(JsonLiteral(a, b, "number", self.quote))
            if key is not None:
                self.fields.append(Field(key, a, b, "number"))
            return m.end()
        for word in ("true", "false", "null"):
            if s.startswith(word, i):
                return i + len(word)
        raise _Fail

    def string(self, i: int) -> tuple[str, int, int, int]:
        """Parse the string at ``s[i] == '"'``: (decoded, content start, content end, next)."""
        s = self.s
        j = i + 1
        while True:
            k = s.find('"', j)
            if k < 0:
                raise _Fail
            b = k - 1
            n = 0
            while b > i and s[b] == "\\":
                n += 1
                b -= 1
            if n % 2 == 0:
                break
            j = k + 1
        return s[i + 1:k], i + 1, k, k + 1

    def _string_literal(self, a: int, b: int, raw_content: str, key: str | None) -> None:
        ra, rb = self.raw(a, b)
        self.literals.append(JsonLiteral(ra, rb, "string", self.quote))
        dec, dmap, dend = _decode(raw_content, a)
        if dec is None:
            return
        rmap = [self.map[x] for x in dmap]
        rend = [self.end[x - 1] for x in dend]
        if key is not None:
            # the decoded string: fields keep raw positions of the decoded text's ends
            self.fields.append(Field(key, ra, rb, "string"))
        st = dec.lstrip()
        if (st[:1] in "{[" and self.depth < 4 and len(dec) >= 2):
            sub = _Parser(dec, rmap, rend, self.depth + 1, _escape_quote(self.quote))
            try:
                sub.value(0, None, 0)
            except _Fail:
                return
            self.fields.extend(sub.fields)
            self.literals.extend(sub.literals)


def _escape_quote(q: str) -> str:
    """How ``q`` (a written double quote) is written one JSON string level down."""
    return q.replace("\\", "\\\\").replace('"', '\\"')


def decode_json_string(raw: str) -> str | None:
    """The content of a JSON string as it reads (None: not valid JSON string content)."""
    return _decode(raw, 0)[0]


def _decode(raw: str, base: int) -> tuple[str | None, list[int], list[int]]:
    """Decode JSON string content; per decoded char its raw index range ``[map, end)``,
    relative to the parser's string plus ``base``."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "\\":
            out.append(c)
            starts.append(base + i)
            ends.append(base + i + 1)
            i += 1
            continue
        if i + 1 >= n:
            return None, [], []
        e = raw[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            starts.append(base + i)
            ends.append(base + i + 2)
            i += 2
        elif e == "u" and i + 6 <= n:
            try:
                out.append(chr(int(raw[i + 2:i + 6], 16)))
            except ValueError:
                return None, [], []
            starts.append(base + i)
            ends.append(base + i + 6)
            i += 6
        else:
            return None, [], []
    return "".join(out), starts, ends


def _json_regions(text: str) -> Iterator[_Parser]:
    """Parsers of every JSON object/array in ``text`` (top-level ones, left to right)."""
    i = 0
    n = len(text)
    ident = list(range(n))
    ends = list(range(1, n + 1))
    while i < n:
        j = min((x for x in (text.find("{", i), text.find("[", i)) if x >= 0), default=-1)
        if j < 0:
            return
        p = _Parser(text, ident, ends, 0, '"')
        try:
            k = p.value(j, None, 0)
        except (_Fail, IndexError):
            i = j + 1
            continue
        if k - j >= 2 and (p.fields or p.literals):
            yield p
        i = k


def json_literals(text: str) -> list[JsonLiteral]:
    """Raw extents of the JSON literals in ``text`` (sorted, disjoint)."""
    if "{" not in text and "[" not in text:
        return []
    out: list[JsonLiteral] = []
    for p in _json_regions(text):
        out.extend(p.literals)
    # nested levels are inside their parent string literal: keep the innermost
    out.sort(key=lambda x: (x.start, -(x.end - x.start)))
    return out


# --- key=value, "Label: value", CSV ---------------------------------------------------------

_KV = regex.compile(
    r"""(?<![\w.\-])(?:export\s+)?([A-Za-z_\u00c0-\u024f][\w.\-]{0,48}\#?|"[^"\n]{1,48}"|'[^'\n]{1,48}')"""
    r"""[ \t]*(=|:)[ \t]*(?:"([^"\n]{0,256})"|'([^'\n]{0,256})'|"""
    # a bare value; ``&``, ``;`` and ``,`` inside it (``p=_8&Rcd``) unless they separate the
    # next ``key=`` (a query string, cookies) or end it
    r"""((?:[^\s"'&;,|()\[\]{}<>]|[&;,](?![\s&;,]|[\w.\-]+=|$)){1,256}))""")
_YAML_LINE = regex.compile(r"(?m)^[ \t\-]*([A-Za-z_][\w.\-]{0,48})[ \t]*:[ \t]+(?![\"'{\[|>&*])([^\n#]*?[^\s#])[ \t]*\r?$")
_LABEL_LINE = regex.compile(
    r"(?m)^[ \t\-*#>]*([^\W\d][\w .'/#\-]{0,40}?)[ \t]*(?:[:=]|：)[ \t]*([^\n]{1,256}?)[ \t]*$")
_NEXT_LABEL = regex.compile(r"[,;|]\s*[^\W\d][\w .'/#\-]{0,30}?\s*[:=]")


_ENV_LINE = regex.compile(
    r"""(?m)^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.\-]{0,63})[ \t]*=[ \t]*"""
    r"""(?:"([^"\n]*)"|'([^'\n]*)'|([^\n]*?))[ \t]*\r?$""")


# ``KEY=value`` inside a line (a log: "loaded DB_PASSWORD=(w#7...)#f"): for secret keys the value
# is the whole token, brackets and all (a written JSON escape ends it)
_KV_TOKEN = regex.compile(r"""(?:(?<=\\[nrt])|(?<![\w.\-\\]))([A-Za-z_][\w.\-]{0,48})="""
                          r"""((?:[^\s"'`\\&;]|\\(?![nrt"\\])|[&;](?![\w.\-]+=)){4,256})""")
_TOKEN_TYPES = frozenset({"PASSWORD", "GENERIC_SECRET", "AWS_SECRET_KEY"})


def _secret_key(key: str) -> bool:
    from trustproxy.pii.keyed import key_type

    return key_type(key) in _TOKEN_TYPES


def _token_fields(text: str) -> Iterator[Field]:
    """``SECRET_KEY=token`` anywhere, also inside a JSON string (a .env written into a tool
    call's arguments)."""
    if "=" in text:
        for m in _KV_TOKEN.finditer(text):
            a, b = m.span(2)
            # trailing punctuation and closing brackets without their opening one are code
            # around the value (``password=None):``), not part of it
            while b > a and (text[b - 1] in ".,;:" or (text[b - 1] in ")]}" and text.count(
                    "([{"[")]}".index(text[b - 1])], a, b) < text.count(text[b - 1], a, b))):
                b -= 1
            if b > a and _secret_key(m.group(1)):
                yield Field(m.group(1), a, b, "bare")


def _kv_fields(text: str) -> Iterator[Field]:
    env_spans: list[tuple[int, int]] = []
    if "=" in text:
        for m in _ENV_LINE.finditer(text):
            for g in (2, 3, 4):
                if m.start(g) >= 0 and m.end(g) > m.start(g):
                    env_spans.append(m.span())
                    yield Field(m.group(1), m.start(g), m.end(g), "bare")
                    break
    if ":" in text:
        for m in _YAML_LINE.finditer(text):
            if " " in m.group(2).strip():
                env_spans.append(m.span())
                yield Field(m.group(1), m.start(2), m.end(2), "line")
    for m in _KV.finditer(text):
        if any(a <= m.start() < b for a, b in env_spans):
            continue
        key = m.group(1).strip("\"'")
        for g in (3, 4, 5):
            if m.start(g) >= 0:
                a, b = m.start(g), m.end(g)
                while g == 5 and b > a and text[b - 1] in ".,;:":
                    b -= 1
                if b > a:
                    yield Field(key, a, b, "bare")
                break
    if ":" in text or "\uff1a" in text:
        for m in _LABEL_LINE.finditer(text):
            key = m.group(1).strip()
            a, b = m.start(2), m.end(2)
            nxt = _NEXT_LABEL.search(text, a, b + 1)
            if nxt:
                b = nxt.start()
            while b > a and text[b - 1] in " \t.,;":
                b -= 1
            if b > a and " " in key:  # one-word labels are covered by _KV above
                yield Field(key, a, b, "bare")


_DELIMS = (",", ";", "\t", "|")
# a header cell: a label, also with a number sign written as a symbol (``N° de dossier``)
_HEADER_CELL = regex.compile(r"^[ \t]*\"?[^\W\d][\w .\-/#()°º№]{0,40}\"?[ \t]*$")
# a column of one: its header alone on a line, one value per line below it (a blank line, a
# line of prose or a ``Label:`` ends it)
_COLUMN_HEAD = regex.compile(r"^[ \t]*[^\W\d][\w .\-/#()°º№]{0,40}?[ \t]*\r?$")
_COLUMN_CELL = regex.compile(r"^[ \t]*([^\s,;|\t:][^,;|\t\r\n]{0,62}?)[ \t]*\r?$")
_COLUMN_ROWS = 50


def _known_key(key: str) -> bool:
    from trustproxy.pii.keyed import key_type

    return key_type(key) is not None


def _lines(text: str) -> list[tuple[int, str]]:
    """``(offset, line)`` of each line of ``text``."""
    out: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _csv_fields(text: str) -> Iterator[Field]:
    lines = _lines(text)
    i = 0
    while i < len(lines) - 1:
        start, head = lines[i]
        delim = next((d for d in _DELIMS if head.count(d) >= 1), None)
        if delim is None:
            i += 1
            continue
        cells = _split_cells(head.rstrip("\r"), delim)
        if len(cells) < 2 or not all(_HEADER_CELL.match(head[a:b]) for a, b in cells):
            i += 1
            continue
        keys = [head[a:b].strip().strip('"') for a, b in cells]
        j = i + 1
        # a header cut by a line break (``IBAN,Account\nnumber``): its last cell goes on on
        # the next line when only together they are a known key and a full row follows
        if i + 2 < len(lines):
            tail = lines[i + 1][1].rstrip("\r")
            if (delim not in tail and _HEADER_CELL.match(tail) and not _known_key(keys[-1])
                    and len(_split_cells(lines[i + 2][1].rstrip("\r"), delim)) == len(cells)):
                joined = (keys[-1] + " " + tail.strip().strip('"')).strip()
                if _known_key(joined):
                    keys[-1] = joined
                    j = i + 2
        while j < len(lines):
            rstart, row = lines[j]
            if not row.strip():
                break  # a blank line ends a table (a sentence with a comma above one is no header)
            rc = _split_cells(row.rstrip("\r"), delim)
            used = 1
            # a row continued on the next line(s): a quoted cell holding a line break, or a
            # cell cut by one (the row is short by exactly what the next line brings)
            while used < 4 and j + used < len(lines) and (
                    row.count('"') % 2 == 1 or len(rc) < len(cells)):
                nxt = lines[j + used][1].rstrip("\r")
                if row.count('"') % 2 == 0 and _header_like(nxt, delim, len(cells)):
                    break  # the next line is a header of its own: the line above was prose
                longer = row + "\n" + lines[j + used][1]
                lc = _split_cells(longer.rstrip("\r"), delim)
                if len(lc) > len(cells):
                    break
                row, rc, used = longer, lc, used + 1
                if len(rc) == len(cells) and row.count('"') % 2 == 0:
                    break
            if len(rc) != len(cells):
                break
            for key, (a, b) in zip(keys, rc):
                v = row[a:b]
                s = len(v) - len(v.lstrip(" \t\""))
                e = len(v.rstrip(" \t\""))
                if e > s:
                    yield Field(key, rstart + a + s, rstart + a + e, "bare")
            j += used
        i = j if j > i + 1 else i + 1


def _header_like(line: str, delim: str, n: int) -> bool:
    cells = _split_cells(line, delim)
    return len(cells) == n and all(_HEADER_CELL.match(line[a:b]) for a, b in cells)


def _column_fields(text: str) -> Iterator[Field]:
    """A column of one (``Account number\n43222634\n90203048``): the header line a known key
    (:func:`trustproxy.pii.keyed.key_type`), each following short line one value of it."""
    lines = _lines(text)
    i = 0
    while i < len(lines) - 1:
        head = lines[i][1]
        if not _COLUMN_HEAD.match(head) or not _known_key(head.strip()):
            i += 1
            continue
        key = head.strip()
        j = i + 1
        while j < len(lines) and j - i <= _COLUMN_ROWS:
            rstart, row = lines[j]
            m = _COLUMN_CELL.match(row)
            if m is None:
                break
            yield Field(key, rstart + m.start(1), rstart + m.end(1), "column")
            j += 1
        i = max(j, i + 1)


def _split_cells(line: str, delim: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i, n = 0, len(line)
    start = 0
    quoted = False
    while i < n:
        c = line[i]
        if c == '"':
            quoted = not quoted
        elif c == delim and not quoted:
            out.append((start, i))
            start = i + 1
        i += 1
    out.append((start, n))
    return out


def fields(text: str) -> list[Field]:
    """Every labelled value in ``text``: JSON members (nested and escaped JSON too), CSV cells
    under their header, ``key=value`` and ``Label: value`` pairs.

    Read on the normalised view that keeps structure (:func:`~trustproxy.pii.normalize.fold_view`):
    a zero-width character, control character, soft hyphen, ``_emphasis_`` or line break inside
    a key, a label or a value does not cut the value short or hide its key; positions are
    mapped back to ``text`` (a field covers the whole original extent of its value)."""
    from trustproxy.pii.normalize import fold_view

    view, offsets = fold_view(text)
    found = _fields(view)
    if view is text or view == text:
        return found
    out = []
    for f in found:
        if f.end > f.start:
            a, b = offsets[f.start], offsets[f.end - 1] + 1
        else:
            a = b = offsets[f.start]
        out.append(Field(f.key, a, b, f.kind))
    return out


def _fields(text: str) -> list[Field]:
    out: list[Field] = []
    covered: list[tuple[int, int]] = []
    if "{" in text or "[" in text:
        for p in _json_regions(text):
            out.extend(p.fields)
            if p.literals:
                covered.append((min(x.start for x in p.literals), max(x.end for x in p.literals)))
    def outside(f: Field) -> bool:
        return all(f.end <= a or f.start >= b for a, b in covered)
    if "=" in text or ":" in text or "\uff1a" in text:
        out.extend(f for f in _kv_fields(text) if outside(f))
        out.extend(_token_fields(text))
    if "\n" in text:
        if any(d in text for d in _DELIMS):
            out.extend(f for f in _csv_fields(text) if outside(f))
        out.extend(f for f in _column_fields(text) if outside(f))
    return out
