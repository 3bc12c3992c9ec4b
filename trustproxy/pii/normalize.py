"""An evasion-resistant view of a text, with a map back to the original offsets.

``normalize(text) -> (norm, offsets)``; ``offsets[i]`` is the index in ``text`` of the
character that produced ``norm[i]``, and ``offsets[len(norm)] == len(text)``. Map a span found in
``norm`` back with :func:`to_original` (it covers whole original characters, also when one
original character expanded to several under NFKC, and leaves out dropped characters that only
trail the span). The view is only ever read by detectors; nothing rewrites the caller's text
from it.

Two phases: first per original character, then structural edits on the result (so an
invisible character inside a value does not hide its shape from them).

Per original character, in order:

- Unicode format characters (category Cf: zero-width space/joiners, BOM, soft hyphen, bidi
  marks), variation selectors, and control characters other than whitespace (C0, DEL, C1 —
  on the all-ASCII path too) are dropped, and so are a vertical tab or form feed inside a token;
- a combining mark (Mn/Me) is composed with its base when NFC knows the result
  (``e`` + U+0301 -> ``é``) and dropped otherwise (``4`` + U+20E3 keycap -> ``4``, ``曹`` +
  U+0327 -> ``曹``), and always dropped inside a token that holds a digit or an ``@`` (an
  address, IBAN or id: ``yahoo.co`` + U+0301 + ``m`` -> ``yahoo.com``) or in a group of two to
  four capitals between digit groups (an IBAN's bank code); marks of scripts that
  write vowels with them (Devanagari, Arabic, Thai ...) are kept;
- every dash / minus sign (category Pd, U+2212 ...) becomes ``-``; every space separator (NBSP,
  thin space, ideographic space ...) becomes `` ``; line/paragraph separators become ``\\n``;
- decimal digits of any script (``unicodedata.decimal``) become ASCII digits;
- anything else is NFKC-normalised (full-width letters, ligatures, superscripts ...).

Then evasions that split or glue a value are undone:

- Markdown emphasis is format noise: runs of two or more ``*`` and a single ``*`` that opens or
  closes a word (alphanumeric on exactly one side) are dropped, so ``**123**-45-6789`` reads
  ``123-45-6789``; a ``*`` between two alphanumerics (``2*3``) stays. ``_`` emphasis is dropped
  only as a pair on one line (``_078-05-1120_``): a lone ``_`` is part of identifiers.
- A TAB between two digits reads as a space; a line break between two digits reads as a
  space where it sits between digit groups (``0566\\n5566`` in ``4000 0566\\n5566 5556``) and
  is dropped where it cuts a group or an ungrouped run (``657-73-164\\n5``, ``95\\r\\n1807739136``)
  or sits next to a ``-``; a line break or TAB inside an e-mail address (``ana.ruiz@exa\\r\\nmple.com``;
  not after a plain word before a whole one: ``write to\\nana@example.com``)
  or between two fragments of a key or id (both sides hold digits and letters, or inner
  capitals: ``AKIAG7NS\\nNX65``; or a one- or two-character stub of a long one:
  ``A\\r\\nKIAI...``), or inside a URL's ``user:password`` before its ``@``, is dropped; a TAB
  or a single line break (LF or CRLF) between words reads
  as a space (``Diane\\tHouston``, ``Peter\\r\\nWood``).
- Digits and capitals spaced one by one (``4 0 0 0 0 5 ...``, ``0 7 8 - 0 5 - ...``,
  ``D E 8 9 3 7 ...``, ``M R N 1 2 3 ...``), six or more single characters holding at least
  six digits, are closed up (dashes kept), also next to a CJK character (``号9 7 9 ...的``).
- JSON escapes in text (a JSON document pasted into a message, or escaped inside a JSON
  string): backslashes before a quote are dropped and a written ``\\n``/``\\t``/``\\r`` reads as
  a space, so ``{\\"note\\": \\"call Ana\\nRuiz\\"}`` reads like prose to NER.
- A value glued to the letters of its label (``ssn078-05-1120``, ``tel2125550188``): a space
  is inserted between a word of letters and a run of seven or more digits that ends the token.
  An inserted character maps to the original character after it.
"""

from __future__ import annotations

import unicodedata

import regex

__all__ = ["normalize", "to_original", "fold_view"]

_EXTRA_DASHES = frozenset("\u2212\u2043\ufe63\uff0d\u02d7\u2796")
_KEEP_CONTROLS = frozenset("\t\n\r\f\v")

# ASCII text needs the slow path only if one of these occurs.
_ASCII_TRIGGERS = regex.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f*_]"    # controls, emphasis
    r"|\d-?[ \t]*[\r\n\t]"                    # a break right after a digit
    r"|[\r\n][^\s@]*@|@[^\s@]*[\r\n]"          # a break inside an address (pre-check)
    r"|(?<![\w])\d[ ]\d[ ]\d"                 # spaced digits
    r"|[A-Za-z]\d{3}|[a-z][A-Z]{2}\d\d|(?i:iban|mail|card|tel)[A-Z0-9+]"  # glued labels
    r"|\\[\"nrtu]"                           # JSON escapes in text
    r"|\S(?:\r\n|\r|\n|\t)[ \t]*\S"              # a line break or TAB inside a line of text
)
_ASCII_CONTROLS = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_ESCAPE = regex.compile(r'\\+(?=")|\\+[nrt]|\\+u[0-9a-fA-F]{4}')
# scripts whose combining marks are letters' vowel signs: kept
_MARK_SCRIPTS = ("DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU",
                 "KANNADA", "MALAYALAM", "SINHALA", "THAI", "LAO", "TIBETAN", "MYANMAR", "KHMER",
                 "ARABIC", "HEBREW", "SYRIAC", "THAANA", "HANGUL", "ETHIOPIC")
_BREAK_DIGITS = regex.compile(r"(?<=\d-?)[ \t]*[\r\n\t][ \t\r\n]*(?=-?\d)")
# ASCII: a CJK word on the line before an address (``杨萍\\nmindong@...``) is no part of it
_BREAK_EMAIL = regex.compile(
    r"(?a)(?<![\w.+\-@])([\w.+\-]+@?[\w.\-]*)((?:\r\n|\r|\n|\t)[ \t]*)([\w.+\-]*@?[\w.\-]+)")
_EMAIL = regex.compile(r"(?a)[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}")
_URL_USERINFO = regex.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@]*:[^\s/@]*$")
_BREAK_TOKEN = regex.compile(r"([^\s]{1,200})((?:\r\n|\r|\n|\t)[ \t]*)(?=([^\s]{1,200}))")
# one character at a time: digits and capitals (``D E 5 8 ...``, ``M R N 1 2 3 ...``), next to
# any script but a Latin word or number (``病历号9 7 9 ...的``)
_SPACED_DIGITS = regex.compile(
    r"(?<![A-Za-z0-9_.,\u00c0-\u024f])(?:[\dA-Z](?:[ ]{1,2}-[ ]{1,2}|[ ]-|-[ ]|[ ]{1,2}|-)){5,}[\dA-Z]"
    r"(?![A-Za-z0-9_\u00c0-\u024f])")
_SPACED_MIN_DIGITS = 6
_GLUED = regex.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,12}(?=(\d(?:[\d\-./ ]?\d){6,})(?![A-Za-z0-9]))")
# a label glued to the value it names ("ibanNL30...", "IBANES05...", "emailana@...")
_GLUED_LABEL = regex.compile(
    r"(?<![A-Za-z0-9])(?i:iban|ssn|tel|phone|mobile|card|dob|mrn|acct|email|mail|cpf|dni|nie|bsn|"
    r"nino|nhs|pwd|passwd|password|token|apikey|key)(?=(?:[A-Z]{2}\d{2}[A-Z0-9]{10,30}|\+?\d{6,}|"
    r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,})(?![A-Za-z0-9]))")
_IBAN_LIKE = regex.compile(r"[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){10,30}(?![A-Za-z0-9])")
# CJK text glues Latin tokens to its characters ("メールはana@x.jpです"): a boundary between
# the scripts reads as a space
_CJK_LATIN = regex.compile(r"(?<=[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ー])(?=[A-Za-z0-9+])"
                           r"|(?<=[A-Za-z0-9.])(?=[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ー])")
_UNDERSCORE_PAIR = regex.compile(r"(?<![A-Za-z0-9_])(_+)(?=[^\s_])([^\n_]*?[^\s_])(_+)(?![A-Za-z0-9_])")


# the start of a new log line or list item, never the tail of a wrapped key
# the first token of a line that starts something new, not the tail of a wrapped key: a
# dotted name (``sqlalchemy.exc.OperationalError:``) or a label (``Error:``)
_NEW_TOKEN = regex.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)+:?(?!\S)|[^\s:]+:(?!\S)")
_LINE_START = regex.compile(r"\[?\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|[-*•]\s|\d+[.)]\s|[A-Z][A-Z0-9_]{1,}=")


def unescape_json(text: str) -> tuple[str, list[int]] | None:
    """The JSON-unescaped text and its offset map (see :func:`_unescape`), or None."""
    return _unescape(text)


def _randomish(tok: str) -> bool:
    """A fragment of a key, token or id: digits with letters, or mixed case past the first
    letter, or base64/hex punctuation; not a plain word."""
    t = tok.strip("\"'`,;()[]{}<>")
    if len(t) < 3 or "," in t or ";" in t:
        return False  # a CSV row or a list (``no.,IBAN``), not a piece of one key
    has_digit = any(c.isdigit() for c in t)
    has_alpha = any(c.isalpha() for c in t)
    inner_upper = any(c.isupper() for c in t[1:]) and any(c.islower() for c in t)
    return (has_digit and has_alpha) or inner_upper \
        or any(c in "+/=_^$%&#!" for c in t) and has_alpha


def _caps_key(a: str, b: str) -> bool:
    """Two capitals-and-digits pieces of one key (``AKIACI`` + ``Y7MUBSXBILFKDY``)."""
    return all(x.isascii() and x.isalnum() and not any(c.islower() for c in x) for x in (a, b)) \
        and len(a) + len(b) >= 16 and any(c.isdigit() for c in a + b)


_GROUP_BEFORE = regex.compile(r"(?:^|[^\d])\d{1,5}[ .\-/]\d{2,5}$")
_GROUP_AFTER = regex.compile(r"\d{2,5}[ .\-/]\d{1,5}(?:[^\d]|$)")


def _between_groups(text: str, s: int, e: int) -> bool:
    """Whether the line break at ``[s, e)`` between two digits sits between digit groups
    (``4000 0566\\n5566 5556``: reads as a space) rather than inside one (``657-73-164\\n5``,
    ``95\\n1807739136``: the digits join)."""
    before = text[max(0, s - 12):s].rstrip(" \t")
    after = text[e:e + 12]
    left = len(before) - len(before.rstrip("0123456789"))
    right = len(after) - len(after.lstrip("0123456789"))
    if left < 2 or right < 2:
        return False
    return _GROUP_BEFORE.search(before) is not None or _GROUP_AFTER.match(after) is not None


def _code_token(text: str, i: int) -> bool:
    """Whether the token around ``text[i]`` holds a digit or an ``@``: an address, an id or a
    code, where a combining mark is noise to drop (``yahoo.co\u0301m``, ``N\u0327L23...``)
    rather than an accent to compose (``Le\u0301na``)."""
    a = i
    while a > 0 and not text[a - 1].isspace() and i - a < 64:
        a -= 1
    b = i
    while b < len(text) and not text[b].isspace() and b - i < 64:
        b += 1
    if any(ch == "@" or ch.isdigit() for ch in text[a:b]):
        return True
    # a group of capitals between digit groups (``NL74 CGH\u0323M 6732 ...``: an IBAN's bank code)
    tok = "".join(ch for ch in text[a:b] if not unicodedata.combining(ch))
    return 2 <= len(tok) <= 4 and tok.isascii() and tok.isupper() and tok.isalpha() \
        and a >= 2 and text[a - 1] == " " and text[a - 2].isdigit() \
        and b + 1 < len(text) and text[b] == " " and text[b + 1].isdigit()


def _continued(text: str, k: int, drop: set[int]) -> bool:
    """Whether the token ending at ``k`` goes on after a dropped line break (a wrapped key:
    ``cf41556884\\n402fab...`` is one hex token, not the label ``cf`` glued to a number)."""
    if k not in drop:
        return False
    while k < len(text) and k in drop:
        k += 1
    return k < len(text) and text[k].isalnum()


def _stub(short: str, long: str) -> bool:
    """A one- or two-character piece of a long key cut off by a line break: ``A`` +
    ``KIAIDX4Q2RYG3ECPRWA``, ``hf_FCuJW...Un`` + ``y``."""
    return 1 <= len(short) <= 2 and short.isascii() and short.isalnum() \
        and len(long.strip("\"'`,;()[]{}<>")) >= 12 and _randomish(long)


def _is_vs(c: str) -> bool:
    o = ord(c)
    return 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF


def _fold_char(c: str) -> str:
    """The normalised form of one character ('' if dropped)."""
    cat = unicodedata.category(c)
    if cat == "Cf" or (cat == "Cc" and c not in _KEEP_CONTROLS) or _is_vs(c):
        return ""
    if cat == "Pd" or c in _EXTRA_DASHES:
        return "-"
    if cat == "Zs":
        return " "
    if cat in ("Zl", "Zp"):
        return "\n"
    d = unicodedata.decimal(c, None)
    if d is not None:
        return str(d)
    out = unicodedata.normalize("NFKC", c)
    if out == c:
        return c
    # NFKC output may itself hold dashes/spaces/digits to fold (e.g. full-width forms)
    return "".join(_fold_simple(x) for x in out)


def _fold_simple(c: str) -> str:
    cat = unicodedata.category(c)
    if cat == "Cf":
        return ""
    if cat == "Pd" or c in _EXTRA_DASHES:
        return "-"
    if cat == "Zs":
        return " "
    d = unicodedata.decimal(c, None)
    return str(d) if d is not None else c


def _markdown_noise(text: str, drop: set[int]) -> None:
    """Indexes of ``*`` characters that are emphasis markers (see module docstring)."""
    i, n = 0, len(text)
    while i < n:
        i = text.find("*", i)
        if i < 0:
            return
        j = i
        while j < n and text[j] == "*":
            j += 1
        before = text[i - 1] if i > 0 else ""
        after = text[j] if j < n else ""
        if j - i >= 2 or (before.isalnum() != after.isalnum()):
            drop.update(range(i, j))
        i = j


def _edits(text: str) -> tuple[set[int], dict[int, str], set[int]]:
    """Structural edits on the original text: indexes to drop, indexes replaced by a string,
    indexes before which a space is inserted."""
    drop: set[int] = set()
    repl: dict[int, str] = {}
    insert: set[int] = set()
    if "*" in text:
        _markdown_noise(text, drop)
    if "_" in text:
        for m in _UNDERSCORE_PAIR.finditer(text):
            drop.update(range(m.start(1), m.end(1)))
            drop.update(range(m.start(3), m.end(3)))
    if "\n" in text or "\r" in text or "\t" in text:
        for m in _BREAK_DIGITS.finditer(text):
            s, e = m.span()
            dash = text[s - 1:s] == "-" or text[e:e + 1] == "-"
            if dash or ("\t" not in m.group() and not _between_groups(text, s, e)):
                drop.update(range(s, e))   # a number broken inside a group: one run again
            else:
                repl[s] = " "
                drop.update(range(s + 1, e))
        if "@" in text:
            for m in _BREAK_EMAIL.finditer(text):
                g1, g3 = m.group(1), m.group(3).rstrip(".")
                # an address that ends a sentence ("... at ana@example.org.\nNothing") is whole
                whole = _EMAIL.fullmatch(g1) or (g1.endswith(".") and g3[:1].isupper()
                                                 and _EMAIL.fullmatch(g1.rstrip(".")))
                if _EMAIL.fullmatch(g1 + g3) and not whole \
                        and ("@" in g1 or g3.startswith("@") or not _EMAIL.fullmatch(g3)
                             or not g1.isalpha()):
                    # a whole address before the break stays; a plain word before a whole
                    # address is the prose it was wrapped in ("write to\nana@example.com")
                    drop.update(range(m.start(2), m.end(2)))
        for m in _BREAK_TOKEN.finditer(text):
            a, b = m.start(2), m.end(2)
            if a in drop or a in repl:
                continue
            g1, g3 = m.group(1), m.group(3)
            if "@" in g1 or "@" in g3:
                # a URL's credentials cut before the "@" (``postgres://u:pa\nss@db``): one token
                if _URL_USERINFO.search(g1) and "@" not in g1 and "@" in g3 \
                        and not _LINE_START.match(g3) and not _NEW_TOKEN.match(g3):
                    drop.update(range(a, b))
                continue  # addresses: joined above only when the halves make one address
            if not _LINE_START.match(g3) and not _NEW_TOKEN.match(g3) and (
                    _randomish(g1) and _randomish(g3) or _stub(g1, g3) or _stub(g3, g1)
                    or _caps_key(g1, g3)):
                drop.update(range(a, b))      # a key or id wrapped mid-token
            elif text[a] == "\t" or m.group(2).count("\n") == 1 and "\n\n" not in m.group(2):
                repl[a] = " "                # a wrapped line (LF or CRLF) or a TAB between words
                drop.update(range(a + 1, b))
    for m in _SPACED_DIGITS.finditer(text):
        if sum(c.isdigit() for c in m.group()) < _SPACED_MIN_DIGITS:
            continue
        for k in range(m.start(), m.end()):
            if text[k] == " ":
                drop.add(k)
    for m in _GLUED.finditer(text):
        if not (_IBAN_LIKE.match(text, m.start())
                or _IBAN_LIKE.match(text, max(m.start(), m.end() - 2))) \
                and not _continued(text, m.end(1), drop):
            insert.add(m.end())
    for m in _GLUED_LABEL.finditer(text):
        insert.add(m.end())
    if not text.isascii():
        for m in _CJK_LATIN.finditer(text):
            insert.add(m.start())
    return drop, repl, insert


def _unescape(text: str) -> tuple[str, list[int]] | None:
    """JSON escapes read as what they stand for: backslashes before a quote dropped, a written
    ``\\n``/``\\r``/``\\t`` as the control character, ``\\uXXXX`` as its character. None if
    there is nothing to decode."""
    if "\\" not in text:
        return None
    out: list[str] = []
    offs: list[int] = []
    pos = 0
    found = False
    for m in _JSON_ESCAPE.finditer(text):
        s, e = m.span()
        for k in range(pos, s):
            out.append(text[k])
            offs.append(k)
        g = m.group(0)
        found = True
        if g.endswith("\\"):          # backslashes before a quote
            pass
        elif g[-1] in "nrt" and not g[-2:-1].isalnum():
            out.append({"n": "\n", "r": "\r", "t": "\t"}[g[-1]])
            offs.append(s)
        elif g[-5:-4] == "u" or "u" in g:
            try:
                out.append(chr(int(g[-4:], 16)))
                offs.append(s)
            except ValueError:
                out.extend(g)
                offs.extend(range(s, e))
        pos = e
    if not found:
        return None
    for k in range(pos, len(text)):
        out.append(text[k])
        offs.append(k)
    offs.append(len(text))
    return "".join(out), offs


def normalize(text: str) -> tuple[str, list[int]]:
    """Return the normalised view of ``text`` and its offset map (``len(norm) + 1`` entries)."""
    pre = _unescape(text)
    if pre is None:
        return _normalize(text)
    t1, o1 = pre
    norm, o2 = _normalize(t1)
    return norm, [o1[i] for i in o2]


def fold_view(text: str) -> tuple[str, list[int]]:
    """A light view for reading structure (JSON syntax, CSV rows, ``key=value`` and
    ``Label: value`` lines): only the per-character folds (invisible and control characters
    dropped, marks composed, forms folded) and ``_emphasis_`` pairs dropped; line breaks, JSON
    escapes and spacing stay where they are, so lines and JSON stay what they were. (Not
    cached: nothing here keeps a caller's text after the call.)"""
    ascii_text = text.isascii()
    if ascii_text and not _ASCII_CONTROLS.search(text) and "_" not in text:
        return text, list(range(len(text) + 1))
    folded, o1 = _fold(text, ascii_text)
    if "_" not in folded:
        return folded, o1
    drop: set[int] = set()
    for m in _UNDERSCORE_PAIR.finditer(folded):
        drop.update(range(m.start(1), m.end(1)))
        drop.update(range(m.start(3), m.end(3)))
    if not drop:
        return folded, o1
    keep = [i for i in range(len(folded)) if i not in drop]
    return "".join(folded[i] for i in keep), [o1[i] for i in keep] + [len(text)]


def _normalize(text: str) -> tuple[str, list[int]]:
    ascii_text = text.isascii()
    if ascii_text and not _ASCII_TRIGGERS.search(text):
        return text, list(range(len(text) + 1))
    # 1. per character: invisible characters dropped, marks composed, forms folded
    folded, o1 = _fold(text, ascii_text)
    # 2. structural edits on the folded text, so an invisible character inside a value does
    #    not hide its shape from them (``FR81\ufe0e 3338 ...`` is an IBAN, not a glued label)
    drop, repl, insert = _edits(folded)
    if not drop and not repl and not insert:
        return folded, o1
    out: list[str] = []
    offsets: list[int] = []
    for i, c in enumerate(folded):
        if i in insert:
            out.append(" ")
            offsets.append(o1[i])
        if i in drop:
            continue
        r = repl.get(i)
        if r is not None:
            out.append(r)
            offsets.extend([o1[i]] * len(r))
            continue
        out.append(c)
        offsets.append(o1[i])
    offsets.append(len(text))
    return "".join(out), offsets


_VT_FF = frozenset("\v\f")


def _fold(text: str, ascii_text: bool) -> tuple[str, list[int]]:
    """Phase 1 of :func:`_normalize`: the per-character folds (see the module docstring);
    the offset map has ``len(out) + 1`` entries."""
    if ascii_text and not _ASCII_CONTROLS.search(text):
        return text, list(range(len(text) + 1))
    out: list[str] = []
    offsets: list[int] = []
    base_ascii = False   # the last kept character is an ASCII base a mark may attach to
    n = len(text)
    for i, c in enumerate(text):
        o = ord(c)
        if o < 0x80:
            if o < 0x20 and c not in _KEEP_CONTROLS or o == 0x7F:
                continue
            if c in _VT_FF and 0 < i < n - 1 and not text[i - 1].isspace() \
                    and not text[i + 1].isspace():
                continue  # a vertical tab or form feed inside a token: a control, not a break
            out.append(c)
            offsets.append(i)
            base_ascii = True
            continue
        cat = unicodedata.category(c)
        if cat in ("Mn", "Me") and not _is_vs(c) and base_ascii and out:
            composed = unicodedata.normalize("NFC", out[-1] + c)
            if len(composed) == 1 and not _code_token(text, i):
                out[-1] = composed
            continue  # a mark on an ASCII base: composed or dropped, never kept loose
        folded = _fold_char(c)
        if folded:
            out.append(folded)
            offsets.extend([i] * len(folded))
            base_ascii = not unicodedata.name(c, "").startswith(_MARK_SCRIPTS)
    offsets.append(len(text))
    return "".join(out), offsets


def to_original(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Map the normalised span ``[start, end)`` to the original ``[s, e)``."""
    if end <= start:
        s = offsets[start]
        return s, s
    return offsets[start], offsets[end - 1] + 1
