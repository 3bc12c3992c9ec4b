"""Strict parsing of client bodies at the edge (kept for callers of the old names).

The doors own their models now: ``doors/openai_chat.py`` (chat completions, the canonical
request) and ``doors/embeddings.py``; ``doors/common.py`` refuses steering fields and reads
JSON strictly. The forwarded body is the door model's dump: there is no allow-list here.
"""

from __future__ import annotations

from trustproxy.doors.common import STEERING_FIELDS
from trustproxy.doors.embeddings import EmbeddingRequest, parse_embeddings
from trustproxy.doors.openai_chat import ChatRequest, parse_chat

__all__ = ["STEERING_FIELDS", "ChatRequest", "EmbeddingRequest", "parse_chat", "parse_embeddings"]
