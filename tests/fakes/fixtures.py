"""Pytest fixtures: started fake providers, one per test.

The servers run in their own thread, so these fixtures are plain (sync) generator fixtures:
they work in sync and async tests alike, whatever the event-loop scope.
Import them from ``tests/conftest.py``: ``from tests.fakes.fixtures import *  # noqa: F403``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.providers import FakeAnthropic, FakeOllama, FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_third() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


__all__ = ["fake_anthropic", "fake_openai", "fake_third"]
