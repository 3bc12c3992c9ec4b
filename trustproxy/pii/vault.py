"""The per-request vault: what replaced each of the caller's values, and the way back.

One ``Vault`` per request, never shared; the server calls :meth:`Vault.clear` when the request
ends. Nothing here logs or raises with a value in the message.

Placeholder format: ``<TYPE_N>``, e.g. ``<PERSON_1>``, ``<EMAIL_ADDRESS_2>``.

* The entity type is readable, so the model still knows *what* stood there ("write to
  <EMAIL_ADDRESS_1>") and keeps its grammar right.
* Angle brackets are rarely rewritten by models (they look like markup to keep), are rare in
  prose, and never occur inside the values we replace.
* ``N`` counts per type (``<PERSON_1>``, ``<PERSON_2>``, ``<EMAIL_ADDRESS_1>``): short numbers
  are copied faithfully; one global counter would give long, easily garbled numbers.
* The same value (same type) always gets the same placeholder within a request, and a number
  already written by the caller in any form we restore is skipped, so a caller's literal
  ``<PERSON_1>`` is never turned into someone's name.

Restoring tolerates how models mangle placeholders: case (``<person_1>``), spacing
(``< PERSON_1 >``, ``<PERSON 1>``, ``<PERSON-1>``), HTML and JSON escapes (``&lt;PERSON_1&gt;``,
``&#60;``, ``\\u003cPERSON_1\\u003e``), markdown escapes (``\\<PERSON_1\\>``) and square
brackets (``[PERSON_1]``); surrounding quotes or ``**`` stay as written. Only this vault's
``(type, number)`` pairs match: a forged ``<PERSON_99>`` stays as is.

Other surfaces: ``redact`` gives ``<TYPE>`` (irreversible); ``hash`` gives
``<TYPE_h0123abcd>``: ``h`` then the first 8 hex digits of HMAC-SHA256(hash_key,
``TYPE\\x1fvalue``), stable across requests with the same key and never restored;
``synthetic`` gives a realistic fake value, restored exactly (case-sensitive, on word
boundaries).

JSON: a value the caller wrote inside a JSON string is kept decoded (one level: what the string
means) together with how it was written (``written``); where a reply puts it back inside a JSON
string it is given back exactly as written (or JSON-escaped if it was never written escaped
and would otherwise break the string). A JSON *number* the caller wrote gets a placeholder of
its own (:meth:`Vault.mask_number`): the provider sees it quoted (``"<CREDIT_CARD_1>"``: the JSON
stays valid), and the quoted placeholder restores to the bare number, so the caller's JSON
comes back as it was written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Iterable, KeysView, Set as AbstractSet

from trustproxy.errors import GuardFailed

__all__ = ["Vault"]

# Tolerated spellings of the brackets, longest first (regex alternation is ordered).
OPENS: tuple[str, ...] = ("\\u003c", "&#x3c;", "&#60;", "&lt;", "\\<", "\\[", "<", "[")
CLOSES: tuple[str, ...] = ("\\u003e", "&#x3e;", "&#62;", "&gt;", "\\>", "\\]", ">", "]")
_OPEN_RE = "|".join(re.escape(o) for o in OPENS)
_CLOSE_RE = "|".join(re.escape(c) for c in CLOSES)
_SEP = r"[ \t_\-]{1,3}"      # between the words and the number of a placeholder
_PAD = r"[ \t]{0,4}"         # inside the brackets
_SPLIT = re.compile(r"[ \t_\-]+")
# Any placeholder-looking token (any type): used to find numbers the caller already wrote.
_ANY_PLACEHOLDER = re.compile(
    rf"(?ai:(?:{_OPEN_RE}){_PAD}(?P<body>[A-Za-z][A-Za-z0-9]*(?:{_SEP}[A-Za-z0-9]+)*){_PAD}"
    rf"(?:{_CLOSE_RE}))")
_TYPE_RE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_MAX_DELIM = max(len(d) for d in OPENS + CLOSES)

_FIRST = ("Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
          "Parker", "Rowan", "Hayden", "Emerson", "Finley", "Dakota", "Reese", "Skyler",
          "Logan", "Harper", "Elliot", "Cameron", "Sawyer", "Marlowe", "Peyton")
_LAST = ("Whitfield", "Ashdown", "Calloway", "Brightwater", "Pemberton", "Hollis", "Marchetti",
         "Okafor", "Lindqvist", "Featherstone", "Abernathy", "Castellano", "Thornbury",
         "Vasquez-Reyes", "Kowalczyk", "Delacroix", "Fairbanks", "Nakamura", "Oyelaran",
         "Sorensen", "Tremblay", "Wainwright", "Yarborough", "Zielinski")


def canonical_key(body: str) -> str | None:
    """``"person 1"`` -> ``"PERSON_1"``; None unless the last word is a number without a
    leading zero."""
    words = _SPLIT.split(body.strip(" \t"))
    if len(words) < 2 or not words[-1].isdigit() or words[-1].startswith("0"):
        return None
    return "_".join(words).upper()


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit left of the check digit
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


class Vault:
    """The per-request map between the caller's values and what the provider saw."""

    def __init__(self, existing_texts: Iterable[str] = (), hash_key: bytes = b"", *,
                 seed: int = 0) -> None:
        self._hash_key = hash_key
        self._seed = seed
        self._existing = "\x00".join(existing_texts)
        self._existing_fold = self._existing.casefold()
        self._taken: set[str] = set()
        for m in _ANY_PLACEHOLDER.finditer(self._existing):
            key = canonical_key(m.group("body"))
            if key:
                self._taken.add(key)
        self._next: dict[str, int] = {}
        self._placeholder_of: dict[tuple[str, str], str] = {}   # (type, value) -> key
        self._value_of_key: dict[str, str] = {}                 # "PERSON_1" -> value
        self._written: dict[str, str] = {}                      # key -> as written in a JSON string
        self._number_of: dict[tuple[str, str], str] = {}        # (type, JSON number) -> key
        self._number_keys: set[str] = set()
        self._fake_of: dict[tuple[str, str], str] = {}          # (type, value) -> fake
        self._value_of_fake: dict[str, str] = {}                # fake -> value
        self._fake_initials: set[str] = set()
        self._originals: set[str] = set()
        self._seen: set[tuple[str, str]] = set()
        self._counts: dict[str, int] = {}
        self._version = 0
        self._compiled: tuple[int, re.Pattern[str] | None] = (-1, None)
        self._surface_len: tuple[int, int] = (-1, 0)

    # -- replacing -------------------------------------------------------------------------

    def mask(self, entity_type: str, value: str, *, written: str | None = None) -> str:
        """The reversible placeholder ``<TYPE_N>`` for ``value``. ``written``: the value as the
        caller wrote it inside a JSON string (escaped), when ``value`` is its decoded form."""
        etype = self._type(entity_type)
        key = self._placeholder_of.get((etype, value))
        if key is None:
            key = self._new_key(etype)
            self._placeholder_of[(etype, value)] = key
            self._value_of_key[key] = value
            self._remember(etype, value)
        if written is not None and key not in self._written:
            self._written[key] = written
        return f"<{key}>"

    def mask_number(self, entity_type: str, literal: str) -> str:
        """The placeholder for a JSON number literal (``4000056655665556``): a key of its own,
        written quoted by the caller of this method; ``"<KEY>"`` restores to the bare literal."""
        etype = self._type(entity_type)
        key = self._number_of.get((etype, literal))
        if key is None:
            key = self._new_key(etype)
            self._number_of[(etype, literal)] = key
            self._value_of_key[key] = literal
            self._number_keys.add(key)
            self._remember(etype, literal)
        return f"<{key}>"

    def _new_key(self, etype: str) -> str:
        n = self._next.get(etype, 0)
        while True:
            n += 1
            key = f"{etype}_{n}"
            if key not in self._taken and key not in self._value_of_key:
                break
        self._next[etype] = n
        return key

    def mask_bare(self, entity_type: str, value: str) -> str:
        """The placeholder without brackets (``PERSON_1``) for a field that allows only
        ``[A-Za-z0-9_-]`` (a message ``name``). Restored like a synthetic value: exactly, on
        word boundaries, unless the caller's own text already holds that word."""
        key = self.mask(entity_type, value)[1:-1]
        if key not in self._value_of_fake and re.search(
                rf"(?<!\w){re.escape(key)}(?!\w)", self._existing) is None:
            self._value_of_fake[key] = value
            self._fake_initials.add(key[0])
            self._version += 1
        return key

    def redact(self, entity_type: str) -> str:
        """The irreversible ``<TYPE>``."""
        etype = self._type(entity_type)
        self._counts[etype] = self._counts.get(etype, 0) + 1
        return f"<{etype}>"

    def hash(self, entity_type: str, value: str) -> str:
        """``<TYPE_h0123abcd>``: keyed HMAC-SHA256, stable for the same key; not restored."""
        etype = self._type(entity_type)
        if not self._hash_key:
            raise GuardFailed("The hash action needs a hash key; none is configured.")
        digest = hmac.new(self._hash_key, f"{etype}\x1f{value}".encode("utf-8", "surrogatepass"),
                          hashlib.sha256).hexdigest()
        self._remember(etype, value)
        return f"<{etype}_h{digest[:8]}>"

    def synthetic(self, entity_type: str, value: str) -> str:
        """A realistic fake for PERSON, EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN
        (others: the placeholder); consistent in the vault, absent from the request,
        restored."""
        etype = self._type(entity_type)
        fake = self._fake_of.get((etype, value))
        if fake is not None:
            return fake
        maker = _MAKERS.get(etype)
        if maker is None:
            return self.mask(etype, value)
        for attempt in range(64):
            rng = random.Random(f"{self._seed}|{etype}|{len(self._fake_of)}|{attempt}")
            candidate = maker(rng, value)
            if self._usable_fake(candidate):
                break
        else:
            return self.mask(etype, value)
        self._fake_of[(etype, value)] = candidate
        self._value_of_fake[candidate] = value
        self._fake_initials.add(candidate[0])
        self._remember(etype, value)
        return candidate

    # -- restoring -------------------------------------------------------------------------

    def restore(self, text: str, *, json_escape: bool = False) -> str:
        """``text`` with this vault's placeholders (as mangled by models) and fakes replaced
        by the originals; with ``json_escape`` the originals are JSON-string escaped."""
        pattern = self.pattern()
        if pattern is None:
            return text
        return pattern.sub(lambda m: self.replacement(m, json_escape), text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """``[start, end)`` of each restorable token in ``text``."""
        pattern = self.pattern()
        return [] if pattern is None else [m.span() for m in pattern.finditer(text)]

    def pattern(self) -> re.Pattern[str] | None:
        """One regex matching every restorable surface; group ``ph`` (placeholder, with group
        ``body``) or ``syn`` (a fake). None when nothing is restorable."""
        version, compiled = self._compiled
        if version == self._version:
            return compiled
        alts = []
        if self._number_keys:
            # a number's placeholder inside JSON quotes (any escaping level): the bare literal
            alts.append(rf"(?P<num>(?P<q>\\{{0,8}}\")(?ai:(?:{_OPEN_RE})(?P<nbody>{_PAD}(?:"
                        + self._kinds(self._number_keys) + rf"){_PAD})(?:{_CLOSE_RE}))(?P=q))")
        if self._value_of_key:
            kinds = self._kinds(self._value_of_key)
            alts.append(rf"(?P<ph>(?ai:(?:{_OPEN_RE})(?P<body>{_PAD}(?:{kinds}){_PAD})"
                        rf"(?:{_CLOSE_RE})))")
        if self._value_of_fake:
            fakes = sorted(self._value_of_fake, key=lambda s: (-len(s), s))
            alts.append(r"(?<!\w)(?P<syn>" + "|".join(re.escape(f) for f in fakes) + r")(?!\w)")
        compiled = re.compile("|".join(alts)) if alts else None
        self._compiled = (self._version, compiled)
        return compiled

    @staticmethod
    def _kinds(keys: Iterable[str]) -> str:
        by_type: dict[str, list[str]] = {}
        for key in keys:
            etype, _, n = key.rpartition("_")
            by_type.setdefault(etype, []).append(n)
        return "|".join(
            _SEP.join(re.escape(w) for w in etype.split("_"))
            + _SEP + "(?:" + "|".join(sorted(ns, key=lambda s: (-len(s), s))) + ")"
            for etype, ns in sorted(by_type.items()))

    def replacement(self, m: re.Match[str], json_escape: bool = False, *,
                    in_string: bool = False) -> str:
        """The original for a match of :meth:`pattern` (the match itself if unknown).
        ``json_escape``: the match stands inside JSON (tool-call arguments): the value as the
        caller wrote it in a JSON string, or JSON-escaped. ``in_string``: the match stands in
        what looks like a JSON string in prose: as written in a JSON string if it was, else
        as written, JSON-escaped only if it holds a quote or a backslash (it would end or
        break the string)."""
        gd = m.groupdict()
        if gd.get("num") is not None:
            key = canonical_key(gd["nbody"])
            value = self._value_of_key.get(key) if key in self._number_keys else None
            return m.group(0) if value is None else value
        syn = gd.get("syn")
        key = None
        if syn is not None:
            value = self._value_of_fake.get(syn)
        else:
            key = canonical_key(m.group("body"))
            value = self._value_of_key.get(key) if key else None
        if value is None:
            return m.group(0)
        if key in self._number_keys:
            return value  # a number's placeholder outside quotes: the literal
        if json_escape or in_string:
            written = self._written.get(key) if key else None
            if written is not None:
                return written
            if in_string and '"' not in value and "\\" not in value:
                return value
            return json.dumps(value, ensure_ascii=False)[1:-1]
        return value

    # -- questions -------------------------------------------------------------------------

    def owns(self, value: str) -> bool:
        """Whether ``value`` is one of the caller's own values: one it replaced, or a word
        sequence present in the request (case-insensitive)."""
        fold = value.strip().casefold()
        if not fold:
            return False
        if fold in self._originals:
            return True
        return re.search(rf"(?<!\w){re.escape(fold)}(?!\w)", self._existing_fold) is not None

    def entity_counts(self) -> dict[str, int]:
        """Per type: distinct values masked, faked or hashed, plus redactions."""
        return dict(self._counts)

    @property
    def placeholder_keys(self) -> KeysView[str]:
        """``PERSON_1``, ...: the placeholders this vault restores (a live view)."""
        return self._value_of_key.keys()

    @property
    def number_keys(self) -> AbstractSet[str]:
        """Keys of placeholders that stand for JSON numbers (restored unquoted; a live view)."""
        return self._number_keys

    @property
    def fakes(self) -> KeysView[str]:
        """The synthetic values this vault restores (a live view)."""
        return self._value_of_fake.keys()

    @property
    def fake_initials(self) -> AbstractSet[str]:
        """First characters of the synthetic values (a live view)."""
        return self._fake_initials

    @property
    def max_surface_len(self) -> int:
        """Length of the longest text :meth:`restore` can replace (mangled forms included)."""
        cached_version, cached = self._surface_len
        if cached_version == self._version:
            return cached
        longest = 0
        for key in self._value_of_key:
            words = key.split("_")
            inner = sum(map(len, words)) + 3 * (len(words) - 1) + 8
            longest = max(longest, inner + 2 * _MAX_DELIM + (18 if key in self._number_keys else 0))
        for fake in self._value_of_fake:
            longest = max(longest, len(fake))
        self._surface_len = (self._version, longest)
        return longest

    def clear(self) -> None:
        """Forget every value (the server calls this when the request ends)."""
        self._existing = self._existing_fold = ""
        self._taken.clear()
        self._next.clear()
        self._placeholder_of.clear()
        self._value_of_key.clear()
        self._written.clear()
        self._number_of.clear()
        self._number_keys.clear()
        self._fake_of.clear()
        self._value_of_fake.clear()
        self._fake_initials.clear()
        self._originals.clear()
        self._seen.clear()
        self._counts.clear()
        self._version += 1

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _type(entity_type: str) -> str:
        etype = entity_type.upper()
        if not _TYPE_RE.fullmatch(etype):
            raise ValueError("entity types are letters, digits and single underscores")
        return etype

    def _remember(self, etype: str, value: str) -> None:
        if (etype, value) not in self._seen:
            self._seen.add((etype, value))
            self._counts[etype] = self._counts.get(etype, 0) + 1
        self._originals.add(value.casefold())
        self._version += 1

    def _usable_fake(self, fake: str) -> bool:
        fold = fake.casefold()
        return (fake not in self._value_of_fake and fold not in self._originals
                and fold not in self._existing_fold)


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(_FIRST), rng.choice(_LAST)


def _fake_person(rng: random.Random, value: str) -> str:
    first, last = _name(rng)
    return f"{first} {last}"


def _fake_email(rng: random.Random, value: str) -> str:
    first, last = _name(rng)
    return f"{first}.{last}{rng.randint(1, 99)}@example.com".lower()


def _fake_phone(rng: random.Random, value: str) -> str:
    return f"555-01{rng.randint(0, 99):02d}"


def _fake_card(rng: random.Random, value: str) -> str:
    body = "4000" + "".join(str(rng.randint(0, 9)) for _ in range(11))
    digits = body + _luhn_digit(body)
    sep = "-" if "-" in value else " " if " " in value.strip() else ""
    return sep.join(digits[i:i + 4] for i in range(0, 16, 4)) if sep else digits


def _fake_ssn(rng: random.Random, value: str) -> str:
    # area numbers 900-999 are never issued as SSNs
    return f"9{rng.randint(0, 99):02d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


_MAKERS = {
    "PERSON": _fake_person,
    "EMAIL_ADDRESS": _fake_email,
    "PHONE_NUMBER": _fake_phone,
    "CREDIT_CARD": _fake_card,
    "US_SSN": _fake_ssn,
}
