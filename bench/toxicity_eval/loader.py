"""Load the toxicity evaluation set: ``load()`` -> list of ``Item`` (label, category, locale, split, text)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Item:
    label: str      # "toxic" | "clean"
    category: str   # file stem before the locale, e.g. "threat", "technical"
    locale: str     # "en", "de", "fr", "es"
    split: str      # "tune" | "heldout"
    text: str


def split_of(text: str) -> str:
    """Held-out when the first byte of the SHA-256 of the text is odd."""
    return "heldout" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 else "tune"


def load(root: Path = HERE) -> list[Item]:
    items: list[Item] = []
    for label in ("toxic", "clean"):
        for f in sorted((root / label).glob("*.txt")):
            category, locale = f.stem.rsplit(".", 1)
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    items.append(Item(label, category, locale, split_of(line), line))
    return items
