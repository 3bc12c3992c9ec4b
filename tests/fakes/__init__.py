"""Real fake LLM provider servers for the test-suite (see ``providers`` for how litellm calls them)."""

from tests.fakes.base import FakeProvider, Recorded, Reply, ToolCall
from tests.fakes.providers import FakeAnthropic, FakeOllama, FakeOpenAI

#: The third wire format, under a stable name for fixtures and callers.
FakeThird = FakeOllama

__all__ = ["FakeAnthropic", "FakeOllama", "FakeOpenAI", "FakeProvider", "FakeThird", "Recorded",
           "Reply", "ToolCall"]
