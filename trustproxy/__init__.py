"""trustproxy: an OpenAI-compatible trust layer for LLMs."""

from trustproxy import _offline as _offline  # noqa: F401  (must run before litellm/presidio import)

__version__ = "0.1.0"
