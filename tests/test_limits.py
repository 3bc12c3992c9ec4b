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

    assert cpu_bounded(run, 0.02) == "done" and calls == [0.02, 0.02, 0.02]


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
