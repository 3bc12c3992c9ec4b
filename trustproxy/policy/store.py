"""Which policy applies, and keeping the loaded set current while the server runs.

Selection precedence (deterministic, first match wins):

1. the tenant's policy: the tenant (the API key's owner) owns the data and answers for it, so
   its compliance rules travel with its data whatever route the request takes;
2. the route's policy: a model route may need stricter rules (e.g. a provider without a data
   processing agreement);
3. the default policy.

Names are checked at start-up: ``select_policy`` raises ``PolicyError`` for an unknown name,
and the server calls it for every configured tenant and route before it accepts traffic.

Hot reload: ``PolicyStore.watch()`` polls the directory (real paths after symlinks, sizes,
mtimes, inodes, and a content hash), so a Kubernetes ConfigMap update (an atomic swap of the
``..data`` symlink) is noticed. A new set is built completely, validated, then swapped in with
a single assignment; an invalid edit keeps the previous set and is reported (log line without
content, ``on_reload(False)``, ``status()``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from trustproxy.errors import PolicyError
from trustproxy.policy.loader import LoadedPolicy, load_policy_dir, policy_files

log = logging.getLogger("trustproxy.policy")


def select_policy(policies: Mapping[str, LoadedPolicy], *, tenant_policy: str | None,
                  route_policy: str | None, default: str = "default") -> LoadedPolicy:
    """The tenant's policy, else the route's, else ``default``; ``PolicyError`` if the chosen
    name is not loaded (an unknown name never silently falls back to a weaker policy)."""
    for source, name in (("tenant", tenant_policy), ("route", route_policy), ("default", default)):
        if name:
            lp = policies.get(name)
            if lp is None:
                known = ", ".join(sorted(policies)) or "none"
                raise PolicyError([f"the {source} asks for policy {name!r}, which is not loaded (loaded: {known})"])
            return lp
    raise PolicyError(["no policy selected and no default policy configured"])


def dir_fingerprint(directory: str | os.PathLike[str],
                    cache: dict[tuple, str] | None = None) -> str:
    """A hash of what the directory's policy files are now: names, resolved real paths and
    contents. ``cache`` maps (real path, inode, size, mtime) to a content hash so unchanged
    files are not re-read."""
    h = hashlib.sha256()
    try:
        files = policy_files(directory)
    except OSError:
        return "unreadable"
    for p in files:
        try:
            real = os.path.realpath(p)
            st = os.stat(real)
            key = (real, st.st_ino, st.st_size, st.st_mtime_ns)
            digest = cache.get(key) if cache is not None else None
            if digest is None:
                digest = hashlib.sha256(Path(real).read_bytes()).hexdigest()
                if cache is not None:
                    cache[key] = digest
        except OSError:
            digest = "unreadable"
            real = ""
        h.update(f"{p.name}\0{real}\0{digest}\n".encode())
    return h.hexdigest()


class PolicyStore:
    """The current policies of one directory. Construction loads them and raises
    ``PolicyError`` if any is invalid, or if ``default`` or a ``required`` name is missing."""

    def __init__(self, directory: str | os.PathLike[str], default: str = "default", *,
                 required: Iterable[str] = (),
                 on_reload: Callable[[bool], None] | None = None) -> None:
        self.directory = str(directory)
        self.default = default
        self.required = sorted({default, *required})
        self.on_reload = on_reload
        self._cache: dict[tuple, str] = {}
        self._fingerprint = dir_fingerprint(self.directory, self._cache)
        self._policies: dict[str, LoadedPolicy] = self._load()
        self._last_error: list[str] = []
        self._last_reload = time.time()
        self._last_attempt = self._last_reload
        self._reloads = 0

    def _load(self) -> dict[str, LoadedPolicy]:
        policies = load_policy_dir(self.directory)
        missing = [n for n in self.required if n not in policies]
        if missing:
            raise PolicyError([f"{self.directory}: required policy {n!r} is missing "
                               f"(it is the default or used by a tenant or route)" for n in missing])
        return policies

    # ---- reading ------------------------------------------------------------------------------
    @property
    def policies(self) -> dict[str, LoadedPolicy]:
        return self._policies

    def get(self, name: str) -> LoadedPolicy:
        lp = self._policies.get(name)
        if lp is None:
            raise PolicyError([f"policy {name!r} is not loaded"])
        return lp

    def select(self, *, tenant_policy: str | None = None,
               route_policy: str | None = None) -> LoadedPolicy:
        return select_policy(self._policies, tenant_policy=tenant_policy,
                             route_policy=route_policy, default=self.default)

    def versions(self) -> dict[str, str]:
        return {name: lp.version for name, lp in self._policies.items()}

    def status(self) -> dict[str, Any]:
        """For /readyz: problems are file:line:col field: message lines (no user text)."""
        return {
            "ok": not self._last_error,
            "directory": self.directory,
            "policies": self.versions(),
            "default": self.default,
            "last_reload": self._last_reload,
            "last_attempt": self._last_attempt,
            "reloads": self._reloads,
            "last_error": list(self._last_error),
        }

    # ---- reloading ----------------------------------------------------------------------------
    def reload(self) -> bool:
        """Load the directory again. On success swap the new set in and return True; on failure
        keep the previous set, record the problems and return False."""
        fingerprint = dir_fingerprint(self.directory, self._cache)
        self._last_attempt = time.time()
        try:
            new = self._load()
        except PolicyError as exc:
            self._fingerprint = fingerprint
            self._last_error = list(exc.problems)
            log.warning("policy reload failed: %d problem(s); keeping the previous policies %s",
                        len(exc.problems), self.versions())
            self._notify(False)
            return False
        old = self.versions()
        self._policies = new  # one assignment: readers see the old set or the new one
        self._fingerprint = fingerprint
        self._last_error = []
        self._last_reload = self._last_attempt
        self._reloads += 1
        if self.versions() != old:
            log.info("policies reloaded: %s", self.versions())
        self._notify(True)
        return True

    def changed(self) -> bool:
        """Whether the files differ from what was last loaded (or last failed to load)."""
        return dir_fingerprint(self.directory, self._cache) != self._fingerprint

    def _notify(self, ok: bool) -> None:
        if self.on_reload is not None:
            try:
                self.on_reload(ok)
            except Exception:  # a metrics callback must not break reloading
                log.exception("on_reload callback failed")

    async def check_once(self) -> bool | None:
        """Reload if the files changed: True/False as ``reload()``, None if unchanged."""
        if not await asyncio.to_thread(self.changed):
            return None
        return await asyncio.to_thread(self.reload)

    async def watch(self, interval: float = 1.0) -> None:
        """Poll forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep watching; the previous policies stay in force
                log.exception("policy watch iteration failed")
