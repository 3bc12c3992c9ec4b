"""Deployment configuration: ``trustproxy.yaml`` plus ``TRUSTPROXY_*`` environment overrides.

This file belongs to the platform team (routes, client keys, limits). What may leave the company
is decided by the policy files in ``policies/``, owned by compliance. The only module that reads
the environment.

Environment overrides use the ``TRUSTPROXY_`` prefix and ``__`` for nesting, e.g.
``TRUSTPROXY_PORT=9000`` or ``TRUSTPROXY_AUDIT__PATH=/var/log/trustproxy/audit.jsonl``.
Secrets never sit in the file: routes name the *environment variable* holding a provider key,
and client keys are stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from trustproxy.errors import PolicyError
from trustproxy.execution import ExecutionSettings

ECHO_MODEL = "echo"
_KEY_HASH = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")  # route, client, tenant, policy names (audit/metrics safe)


def _check_name(v: str | None, what: str) -> str | None:
    if v is not None and not _NAME.match(v):
        raise ValueError(f"{what} must be 1-64 characters of letters, digits and _ . : / -")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Route(_Strict):
    """A client-facing model name and how to reach the provider behind it (litellm params)."""

    model: str = Field(description="litellm model string, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, or `echo`.")
    api_base: str | None = Field(None, description="Provider base URL (local servers, Azure, proxies).")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the provider key.")
    api_version: str | None = Field(None, description="API version (Azure).")
    timeout: float = Field(60.0, gt=0, description="Seconds before an upstream call is abandoned.")
    stream_timeout: float | None = Field(None, gt=0, description="Seconds to wait for the first stream byte.")
    max_stream_seconds: float = Field(600.0, gt=0, description="Longest a streamed reply may last; past it the stream is cut with an error event.")
    max_stream_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Largest a streamed reply may be (upstream bytes, or reply characters where bytes are not seen); past it the stream is cut with an error event.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries on retryable upstream errors (litellm Router).")
    fallbacks: list[str] = Field(default_factory=list, description="Other routes tried in order when this one fails.")
    zero_data_retention: bool = Field(False, description="The provider contract for this route guarantees no retention.")
    policy: str | None = Field(None, description="Policy for this route (a tenant's policy wins over it).")
    allow_server_state: bool = Field(False, description=(
        "Responses door: accept `store: true` and forward it (the provider keeps the masked exchange). "
        "Stored responses, conversations, background runs and hosted tools stay refused: the proxy "
        "cannot screen them."))
    params: dict[str, Any] = Field(default_factory=dict, description="Extra non-secret litellm params (e.g. aws_region_name).")

    @field_validator("params")
    @classmethod
    def _no_secrets_in_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if any(s in k.lower() for s in ("key", "secret", "token", "password"))]
        if bad:
            raise ValueError(f"params must not hold secrets ({', '.join(sorted(bad))}); use api_key_env")
        return v


class Client(_Strict):
    """A calling application: its API key (hashed) and tenant."""

    name: str
    key_sha256: str = Field(description="hex SHA-256 of the client's API key (`trustproxy hash-key`).")
    tenant: str | None = None
    policy: str | None = Field(None, description="Policy for this client (wins over the route's).")

    @field_validator("name", "tenant", "policy")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return _check_name(v, "client names, tenants and policy names")

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.strip().lower()
        if not _KEY_HASH.match(v):
            raise ValueError("key_sha256 must be 64 hex characters (the SHA-256 of the key, not the key)")
        return v


class AuditSettings(_Strict):
    path: str | None = Field(None, description="Audit JSON-lines file (rotated). Unset: stdout.")
    stdout: bool | None = Field(None, description="Also write audit events to stdout (default: only when no path).")
    max_bytes: int = Field(50 * 1024 * 1024, gt=0)
    backups: int = Field(10, ge=0)


class OpsSettings(_Strict):
    """Who may read ``/readyz`` and ``/metrics``, and where (``/healthz`` stays open: it says
    only "alive")."""

    port: int | None = Field(None, ge=1, le=65535, description="Serve /healthz, /readyz and /metrics on this "
                             "separate port (and no longer on the API port); for Kubernetes probes and scrapers.")
    host: str | None = Field(None, description="Listen address of the operations port (default: `host`).")
    key_sha256: str | None = Field(None, description="hex SHA-256 of a key that /readyz and /metrics require "
                                   "as `Authorization: Bearer <key>` (`trustproxy hash-key`).")

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().lower()
        if not _KEY_HASH.match(v):
            raise ValueError("ops.key_sha256 must be 64 hex characters (the SHA-256 of the key, not the key)")
        return v


def packaged_policy_dir() -> Path:
    """The default policies shipped inside the package (``trustproxy/_policies``: a link to the
    checkout's ``policies/`` that the wheel build turns into real files)."""
    return Path(__file__).resolve().parent / "_policies"
class PlaygroundSettings(_Strict):
    enabled: bool = Field(True, description="Serve the policy playground (GET /playground and POST /v1/trust/playground). "
                          "It answers on loopback, or with a client key; never on an open non-loopback address.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUSTPROXY_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    policy_dir: str | None = Field(None, description="Directory of policy files; default ./policies if it "
                                   "holds the default policy, else the packaged defaults.")
    default_policy: str = "default"
    routes: dict[str, Route] = Field(default_factory=lambda: {ECHO_MODEL: Route(model=ECHO_MODEL)})
    clients: list[Client] = Field(default_factory=list)
    allow_unauthenticated: bool = Field(False, description="Serve without client keys on a non-loopback address.")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    detection_timeout_seconds: float = Field(15.0, gt=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)
    hash_key: str | None = Field(None, description="Secret for the `hash` action; set it via TRUSTPROXY_HASH_KEY.")
    audit: AuditSettings = Field(default_factory=AuditSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    playground: PlaygroundSettings = Field(default_factory=PlaygroundSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings, description="Admission control and guard pools, per worker (see docs/benchmarks-load.md).")
    workers: int | None = Field(None, ge=1, le=256, description="Worker processes for `trustproxy serve` (`--workers` wins). Unset: the CPUs this process may use (affinity and cgroup quota).")
    cpu_affinity: str = Field("auto", description="Pin each worker process to one CPU: `auto` (pin worker i to the i-th CPU this process may run on, only when there are exactly as many CPUs as workers, e.g. a container given its own cpuset), `off`, or a CPU list such as `0,1` or `2-3` (worker i gets the i-th CPU of it, round robin). See docs/benchmarks-load.md for what pinning does to throughput.")
    log_level: str = "INFO"

    @field_validator("cpu_affinity")
    @classmethod
    def _affinity(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("auto", "off"):
            parse_cpu_list(v)  # ValueError: a clear message, no value repeated
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v.upper()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment beats the file (init kwargs come from the YAML file)
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        for name, route in self.routes.items():
            _check_name(name, f"route name '{name[:64]}'")
            _check_name(route.policy, f"routes.{name}.policy")
            for fb in route.fallbacks:
                if fb not in self.routes:
                    raise ValueError(f"routes.{name}.fallbacks: unknown route '{fb}'")
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise ValueError("clients: duplicate client names")
        return self

    # -- derived -------------------------------------------------------------------------
    def resolved_policy_dir(self) -> Path:
        """``policy_dir`` if set; else ``./policies`` if it holds the default policy; else the
        packaged defaults (so ``trustproxy serve`` works from any directory after install)."""
        if self.policy_dir:
            return Path(self.policy_dir)
        cwd = Path.cwd() / "policies"
        if (cwd / f"{self.default_policy}.yaml").exists():
            return cwd
        return packaged_policy_dir()

    def policy_dir_source(self) -> str:
        """Why :meth:`resolved_policy_dir` is what it is (for the start-up log)."""
        if self.policy_dir:
            return "policy_dir setting"
        if self.resolved_policy_dir() == packaged_policy_dir():
            return "packaged defaults; `trustproxy policy init DIR` copies them out for editing"
        return "./policies in the working directory"

    def is_loopback(self) -> bool:
        if self.host in ("localhost",):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_auth_safety(self) -> None:
        """Refuse to serve without client keys on a non-loopback address unless told so."""
        if not self.clients and not self.is_loopback() and not self.allow_unauthenticated:
            raise PolicyError([
                f"refusing to listen on {self.host} without client API keys: add `clients:` to the "
                "config, or set `allow_unauthenticated: true` if another layer authenticates callers"])


def parse_cpu_list(text: str) -> list[int]:
    """``0,2`` or ``0-3`` or ``0-1,4`` (the kernel's cpu-list syntax) as CPU numbers, in order."""
    cpus: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError("must be auto, off, or a CPU list such as 0,1 or 0-3")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or b > 4095:
            raise ValueError("a CPU range must go upwards and stay below 4096")
        cpus += [c for c in range(a, b + 1) if c not in cpus]
    return cpus


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load the deployment config. ``path`` (or ``TRUSTPROXY_CONFIG``) is a YAML file."""
    path = path or os.environ.get("TRUSTPROXY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise PolicyError([f"{p}: config file not found"]) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
            raise PolicyError([f"{where}: invalid YAML ({getattr(exc, 'problem', 'syntax error')})"]) from None
        if not isinstance(raw, dict):
            raise PolicyError([f"{p}: the config must be a mapping"])
        data.update(raw)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        where = str(path) if path else "config"
        raise PolicyError(_problems(exc, lambda loc: f"{where}: {loc}")) from None
    # command-line flags beat the environment, which beats the file; validated like the rest
    update = {k: v for k, v in overrides.items() if v is not None}
    if not update:
        return settings
    out = settings.model_copy()
    try:  # each flag validated as its field is (bounds, types), without reading the environment again
        for key, value in update.items():
            Settings.__pydantic_validator__.validate_assignment(out, key, value)
        return out
    except ValidationError as exc:
        raise PolicyError(_problems(exc, lambda loc: f"--{loc.replace('_', '-')}" if loc in update
                                    else f"{loc}")) from None


def _problems(exc: ValidationError, where: Any) -> list[str]:
    """One line per error: where, then what is allowed (the offending value is not repeated:
    it may be a secret from the environment)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"])
        ctx = err.get("ctx") or {}
        if err["type"] in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
            msg = msg.replace("Input should be", "must be")
        elif ctx.get("error") is not None:
            msg = str(ctx["error"])
        out.append(f"{where(loc)}: {msg}")
    return out
