"""The one exception tree of trustproxy. Every error becomes an OpenAI-shaped error body.

    TrustProxyError                      (status, type, code; message never holds user text)
    ├── InvalidRequest        400 invalid_request_error
    │   ├── PayloadTooLarge   413
    │   └── Uninspectable     413 code=uninspectable    (over the policy's inspection budget)
    ├── AuthenticationError   401
    ├── NotFound              404
    ├── PolicyBlocked         400 code=policy_blocked   (names entity types / categories only)
    ├── ZeroRetentionRequired 403
    ├── GuardFailed           500 code=guard_failed     (a detector or scorer errored: fail closed)
    ├── Overloaded            503 (429 per client) code=overloaded; always a Retry-After header
    ├── UpstreamError         status of the upstream (429 keeps Retry-After; 502/504 ...)
    └── PolicyError           invalid policy file (CLI / start-up; not an HTTP error)

Messages are written by us, never copied from user input or from upstream bodies (which may
echo the prompt).
"""

from __future__ import annotations

from typing import Any


class TrustProxyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


class InvalidRequest(TrustProxyError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class Uninspectable(PayloadTooLarge):
    """The request holds more text (characters or slots) than the policy lets the guards inspect.
    Refused, never passed through unscreened."""

    code = "uninspectable"


class AuthenticationError(TrustProxyError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(InvalidRequest):
    status = 404
    code = "not_found"


class PolicyBlocked(TrustProxyError):
    status = 400
    type = "invalid_request_error"
    code = "policy_blocked"


class ZeroRetentionRequired(TrustProxyError):
    status = 403
    type = "permission_error"
    code = "zero_data_retention_required"


class GuardFailed(TrustProxyError):
    status = 500
    type = "server_error"
    code = "guard_failed"


class UpstreamError(TrustProxyError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class Overloaded(TrustProxyError):
    """Admission control refused the request: a bound (in-flight requests, a guard queue, the
    audit buffer) is full. Fast, before any work; the client should retry after ``Retry-After``
    seconds. ``status=429`` when a per-client limit was hit. ``reason`` (a short token) labels
    the metric; it is not sent to the client."""

    status = 503
    type = "server_error"
    code = "overloaded"

    def __init__(self, message: str = "The proxy is at capacity; retry shortly.", *, reason: str = "in_flight",
                 retry_after: int = 1, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status=status, code=code, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.reason = reason


class PolicyError(Exception):
    """An invalid policy file. ``problems`` are human-readable lines ``file:line:col field: what``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
