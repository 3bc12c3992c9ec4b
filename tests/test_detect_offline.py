"""Detection never touches the network (tldextract must use its bundled suffix list)."""

from __future__ import annotations

import socket

import pytest

from trustproxy.pii.detector import get_detector

pytestmark = pytest.mark.slow


def test_detection_of_emails_and_urls_makes_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("network access during detection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    det = get_detector()
    det.cache_clear()
    text = "mail ann@example.co.uk or see https://docs.example.org/a?b=1 and www.test.io"
    spans = det.detect(text, entities=["EMAIL_ADDRESS", "URL"], thresholds={},
                       default_threshold=0.5)
    assert ("EMAIL_ADDRESS", "ann@example.co.uk") in [(s.entity_type, text[s.start:s.end])
                                                      for s in spans]
    assert any(s.entity_type == "URL" for s in spans)
