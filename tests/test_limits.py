"""Regex time limits count CPU, not waiting: a loaded machine does not fail requests."""

from __future__ import annotations

import time

import pytest
import regex

from trustproxy.limits import cpu_bounded


def test_a_timeout_while_waiting_is_retried():
    calls = []

    def run(limit: float) -> str:
        calls.append(limit)
        if len(calls) < 3:
            time.sleep(limit * 1.5)  # wall time passes, no CPU: the thread was waiting
            raise TimeoutError
        return "done"

    assert cpu_bounded(run, 0.02) == "done" and calls == [0.02, 0.04, 0.08]  # the wall limit doubles


def test_a_slow_share_of_a_core_still_finishes():
    """A call needing 1.5x its limit of wall time (its thread gets part of a core) succeeds on a
    retry with a longer wall limit, instead of timing out every time."""
    calls = []

    def run(wall: float) -> str:
        calls.append(wall)
        if wall < 0.03:
            time.sleep(wall)  # needs 0.03 s of wall time; the thread waits, spends no CPU
            raise TimeoutError
        return "done"

    assert cpu_bounded(run, 0.02) == "done" and len(calls) == 2


def test_a_timeout_after_the_limit_of_cpu_stands():
    slow = regex.compile(r"(?:a|aa)+(?:a|aa)+b")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        cpu_bounded(lambda lim: slow.search("a" * 5000 + "c", timeout=lim), 0.05)
    assert time.monotonic() - t0 < 1.0  # not retried: the CPU was spent


def test_retries_are_bounded():
    calls = []

    def always_waiting(limit: float) -> None:
        calls.append(1)
        time.sleep(limit * 1.2)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        cpu_bounded(always_waiting, 0.01, retries=2)
    assert len(calls) == 3
