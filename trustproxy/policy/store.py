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
``..data`` symlink) is noticed. A new set is built completely off the event loop: loaded and
validated, then every changed policy compiled and *prepared* (``prepare``: models loaded and
smoke-tested, see :mod:`trustproxy.policy.compiled`), and only then swapped in with a single
assignment. A set that fails anywhere (an invalid file, a model that cannot load, a pipeline
without NER) keeps the previous set in force and is reported: a log line per problem naming
file, line and field (never a value), ``on_reload(False)`` (the reload-error metric), and
``status()`` (``/readyz`` stops answering plain ``ok``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from trustproxy.errors import PolicyError
from trustproxy.policy.compiled import CompiledPolicy, compile_policy
from trustproxy.policy.errors import PolicyFileError, Problem, safe_problems
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
    """The current policies of one directory. Construction loads and prepares them and raises
    ``PolicyError`` if any is invalid or cannot be prepared, or if ``default`` or a ``required``
    name is missing. ``prepare`` turns a loaded policy into a ready ``CompiledPolicy`` (sync,
    may be heavy); the default only compiles (no models: for tools and tests)."""

    def __init__(self, directory: str | os.PathLike[str], default: str = "default", *,
                 required: Iterable[str] = (),
                 on_reload: Callable[[bool], None] | None = None,
                 prepare: Callable[[LoadedPolicy], CompiledPolicy] | None = None) -> None:
        self.directory = str(directory)
        self.default = default
        self.required = sorted({default, *required})
        self.on_reload = on_reload
        self._prepare = prepare or compile_policy
        self._cache: dict[tuple, str] = {}
        self._fingerprint = dir_fingerprint(self.directory, self._cache)
        self._policies: dict[str, CompiledPolicy] = {}
        self._policies = self._load()
        self._last_error: list[str] = []
        self._last_reload = time.time()
        self._last_attempt = self._last_reload
        self._reloads = 0
        self._reload_lock = threading.Lock()  # the watcher and a manual reload never interleave
        for cp in self._policies.values():
            log.info("%s", cp.summary())

    def _load(self) -> dict[str, CompiledPolicy]:
        """Load, check and prepare a complete new set (the current one is untouched)."""
        loaded = load_policy_dir(self.directory)
        missing = [n for n in self.required if n not in loaded]
        if missing:
            raise PolicyFileError([Problem(self.directory, None, None, "", f"required policy {n!r} is missing "
                                           "(it is the default or used by a tenant or route)") for n in missing])
        out: dict[str, CompiledPolicy] = {}
        problems: list[Problem] = []
        for name, lp in loaded.items():
            current = self._policies.get(name)
            if current is not None and current.version == lp.version and current.path == lp.path:
                out[name] = current  # unchanged: already prepared
                continue
            try:
                out[name] = self._prepare(lp)
            except PolicyFileError as exc:
                problems.extend(exc.details)
            except PolicyError as exc:
                problems.extend(Problem(lp.path, None, None, "", line, "cannot be prepared")
                                for line in exc.problems)
            except Exception as exc:  # noqa: BLE001 - never serve a policy that could not be prepared
                problems.append(Problem(lp.path, None, None, "", f"cannot be prepared ({type(exc).__name__})"))
        if problems:
            raise PolicyFileError(problems)
        return out

    # ---- reading ------------------------------------------------------------------------------
    @property
    def policies(self) -> dict[str, CompiledPolicy]:
        return self._policies

    def get(self, name: str) -> CompiledPolicy:
        lp = self._policies.get(name)
        if lp is None:
            raise PolicyError([f"policy {name!r} is not loaded"])
        return lp

    def select(self, *, tenant_policy: str | None = None,
               route_policy: str | None = None) -> CompiledPolicy:
        lp = select_policy(self._policies, tenant_policy=tenant_policy,
                           route_policy=route_policy, default=self.default)
        assert isinstance(lp, CompiledPolicy)
        return lp

    def versions(self) -> dict[str, str]:
        return {name: lp.version for name, lp in self._policies.items()}

    def status(self) -> dict[str, Any]:
        """For /readyz: problems are ``file:line:col field: message`` lines naming the file (not
        its path) and quoting no value from it."""
        return {
            "ok": not self._last_error,
            "policies": self.versions(),
            "default": self.default,
            "last_reload": self._last_reload,
            "last_attempt": self._last_attempt,
            "reloads": self._reloads,
            "last_error": list(self._last_error),
        }

    # ---- reloading ----------------------------------------------------------------------------
    def reload(self) -> bool:
        """Load and prepare the directory again (sync: run it off the event loop). On success
        swap the new set in and return True; on failure keep the previous set, record the
        problems and return False."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> bool:
        fingerprint = dir_fingerprint(self.directory, self._cache)
        self._last_attempt = time.time()
        try:
            new = self._load()
        except PolicyError as exc:
            self._fingerprint = fingerprint
            self._last_error = safe_problems(exc)
            log.warning("policy reload failed: %d problem(s); keeping the previous policies %s",
                        len(self._last_error), self.versions())
            for line in self._last_error:
                log.warning("policy problem: %s", line)
            self._notify(False)
            return False
        old = self._policies
        self._policies = new  # one assignment: readers see the old set or the new one
        self._fingerprint = fingerprint
        self._last_error = []
        self._last_reload = self._last_attempt
        self._reloads += 1
        for name, cp in new.items():
            if old.get(name) is not cp:
                log.info("%s", cp.summary())
        if {n: c.version for n, c in old.items()} != self.versions():
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

    def reload_if_changed(self) -> bool | None:
        """``reload()`` if the files changed (checked under the reload lock, so two callers
        never both reload one change); None if unchanged."""
        with self._reload_lock:
            if not self.changed():
                return None
            return self._reload()

    async def check_once(self) -> bool | None:
        """Reload if the files changed: True/False as ``reload()``, None if unchanged. The
        reload (and every model it prepares) runs in a thread, never on the event loop."""
        if not await asyncio.to_thread(self.changed):
            return None
        return await asyncio.to_thread(self.reload_if_changed)

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
