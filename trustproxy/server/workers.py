"""``trustproxy serve --workers N``: a pre-fork supervisor and N worker processes.

- The supervisor forks N workers; each binds its own listening socket on the same address with
  ``SO_REUSEPORT``, and the kernel spreads new connections evenly over the listening ones. (Not
  one shared socket: asyncio accepts up to 100 connections per wake-up, so one worker could
  take most keep-alive connections while another idles.) The supervisor imports no
  models: each worker loads its own (spaCy, Presidio, the scorer) after the fork.
- A worker listens only once its runtime is up (its site starts after start-up), so no
  connection waits on a worker that is still loading; it runs its own policy watcher (hot
  reload in every worker) and writes its own audit chain (``w<N>``).
- Metrics: the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the
  first fork; ``/metrics`` on any worker returns the sum over all of them.
- A worker that dies is started again (same number, so it continues its audit chain); one that
  fails at start-up with a configuration error stops the supervisor (exit 2) rather than loop.
- SIGTERM / SIGINT: passed to every worker, which stops accepting and drains its requests for
  ``shutdown_grace_seconds`` (aiohttp's graceful shutdown); the supervisor exits when all have
  exited (0 if all drained cleanly), killing stragglers ``grace + 10`` s later.

``--workers`` default: :func:`default_workers`, the CPUs this process may run on (affinity) and,
in a container, the cgroup CPU quota rounded up.

CPU pinning (``cpu_affinity``, :func:`cpu_plan`): each worker can be pinned to one CPU, all its
threads with it. A worker is one event loop plus guard-pool threads that hand the GIL to each
other many times per request; spread over several cores, every hand-over is a cross-core wake-up
(costly in a VM) and the cores idle in between. Pinned, the hand-overs stay on one core
(measured in docs/benchmarks-load.md). ``auto`` pins only when the process may run on exactly as
many CPUs as there are workers (a cpuset of its own): on a shared node, where every container
sees all CPUs, pinning each pod's worker 0 to CPU 0 would pile them onto one core.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

log = logging.getLogger("trustproxy.workers")

WORKER_ENV = "TRUSTPROXY_WORKER_ID"


def worker_id() -> int | None:
    """This process's worker number under a supervisor with several workers, else None."""
    v = os.environ.get(WORKER_ENV)
    return int(v) if v and v.isdigit() else None


def _cgroup_cpus() -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max``, v1 ``cfs_quota/period``), None: no quota."""
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", encoding="ascii") as f:
            q = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us", encoding="ascii") as f:
            p = int(f.read())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def _allowed_cpus() -> list[int]:
    """The CPUs this process may run on (``sched_getaffinity``); empty where it cannot be read."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def default_workers() -> int:
    """The CPUs this process may use: ``sched_getaffinity``, capped by a cgroup quota (ceil)."""
    n = len(_allowed_cpus()) or os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def cpu_plan(setting: str, workers: int) -> list[int] | None:
    """The CPU each worker is pinned to (index: worker number), or None: not pinned.

    Raises ``PolicyError`` (exit 2 at start-up) for a CPU list naming a CPU this process may not
    run on."""
    from trustproxy.errors import PolicyError
    from trustproxy.settings import parse_cpu_list

    allowed = _allowed_cpus()
    if setting == "off" or not allowed:
        return None
    if setting == "auto":
        return allowed if len(allowed) == workers else None
    cpus = parse_cpu_list(setting)
    outside = [c for c in cpus if c not in allowed]
    if outside:
        raise PolicyError([f"cpu_affinity: CPU {', '.join(map(str, outside))} is not one this process may run on "
                           f"(allowed: {_cpu_list(allowed)})"])
    return [cpus[i % len(cpus)] for i in range(workers)]


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))


def pin_process(cpu: int) -> bool:
    """Pin this process, every thread it has now and every thread it starts later, to ``cpu``.

    A pin the system refuses (a seccomp profile, a CPU taken away since start-up) is logged and
    the process runs unpinned: pinning is about speed, not about what is screened."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        log.warning("could not pin pid=%s to CPU %s (%s); running unpinned", os.getpid(), cpu, exc.strerror)
        return False
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = []
    for tid in tids:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # a thread that just ended
            pass
    return True


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT; it starts listening when the worker's site starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    """Forks and supervises the workers (see the module docstring)."""

    def __init__(self, settings: Any, workers: int, cpus: list[int] | None = None) -> None:
        self.settings = settings
        self.n = workers
        self.cpus = cpus
        self.children: dict[int, int] = {}   # pid -> worker number
        self.started: dict[int, float] = {}  # worker number -> start time
        self.stopping = False
        self.exit_code = 0
        self.metrics_dir: str | None = None

    def run(self) -> int:
        try:
            _bind(self.settings.host, self.settings.port).close()  # fail here if the address is taken
        except OSError as exc:
            print(f"error: cannot listen on {self.settings.host}:{self.settings.port} ({exc.strerror})", file=sys.stderr)
            return 2
        self.metrics_dir = tempfile.mkdtemp(prefix="trustproxy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        log.info("supervisor pid=%s: %s workers on http://%s:%s%s", os.getpid(), self.n, self.settings.host,
                 self.settings.port, f", pinned to CPUs {_cpu_list(self.cpus)}" if self.cpus else ", not pinned to CPUs")
        for i in range(self.n):
            self._spawn(i)
        try:
            self._loop()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.exit_code

    def _spawn(self, i: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.environ[WORKER_ENV] = str(i)
                if self.cpus:
                    pin_process(self.cpus[i])  # before any thread of the worker starts
                code = _worker_main(self.settings)
            except SystemExit:  # SIGTERM before the app was serving (aiohttp's GracefulExit)
                code = 0
            except BaseException:  # noqa: BLE001 - a worker never returns into the supervisor's code
                log.exception("worker %s crashed", i)
            finally:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = i
        self.started[i] = time.monotonic()

    def _on_stop(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop_at = time.monotonic() + self.settings.shutdown_grace_seconds + 10
        log.info("supervisor: %s, draining %s workers", signal.Signals(signum).name, len(self.children))
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _loop(self) -> None:
        from prometheus_client import multiprocess

        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if self.stopping and time.monotonic() > self._stop_at:
                    for p in list(self.children):
                        log.error("supervisor: worker pid=%s did not drain in time; killing it", p)
                        os.kill(p, signal.SIGKILL)
                    self._stop_at = float("inf")
                time.sleep(0.05)
                continue
            i = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            multiprocess.mark_process_dead(pid)
            if self.stopping:
                if code == 2:  # the other workers' start-up failed the same way
                    self.exit_code = 2
                elif code != 0 and self.exit_code != 2:
                    self.exit_code = 1
                continue
            if code == 2:  # configuration error at start-up: restarting will not help
                log.error("worker %s failed to start (exit 2); stopping", i)
                self.exit_code = 2
                self._on_stop(signal.SIGTERM, None)
                continue
            log.error("worker %s (pid=%s) exited with %s; starting it again", i, pid, code)
            if time.monotonic() - self.started.get(i, 0) < 1.0:
                time.sleep(1.0)  # no hot restart loop
            self._spawn(i)


def report_start_failure(err: Exception, settings: Any) -> int:
    """Print why the proxy cannot start (stderr is a log sink: files, lines, fields; no values,
    no paths in policy problems) and return the exit code, 2. Shared by ``serve`` and workers."""
    from trustproxy.errors import PolicyError, TrustProxyError
    from trustproxy.policy.errors import PolicyFileError

    if isinstance(err, PolicyFileError):
        for p in err.safe_problems():
            print(f"error: {p}", file=sys.stderr)
        print(f"error: the policies cannot serve; `trustproxy policy check {settings.resolved_policy_dir()}` "
              "shows file problems in full, with the values", file=sys.stderr)
    elif isinstance(err, PolicyError):
        for p in err.problems:
            print(f"error: {p}", file=sys.stderr)
    elif isinstance(err, TrustProxyError):  # e.g. a detoxify checkpoint is missing: no user text
        print(f"error: {err.message}", file=sys.stderr)
    return 2


def _worker_main(settings: Any) -> int:
    from trustproxy.errors import PolicyError, TrustProxyError
    from trustproxy.server.app import run

    try:
        run(settings, sock=_bind(settings.host, settings.port))
    except (PolicyError, TrustProxyError) as err:
        return report_start_failure(err, settings)
    return 0


def serve(settings: Any, workers: int, cpus: list[int] | None = None) -> int:
    """Run the proxy with ``workers`` processes (pinned to ``cpus``, see :func:`cpu_plan`);
    returns the exit code."""
    return Supervisor(settings, workers, cpus).run()
