"""SSE encoding for OpenAI-style streams."""

from __future__ import annotations

import json
from typing import Any


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


DONE = b"data: [DONE]\n\n"
