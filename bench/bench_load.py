"""Load benchmark: throughput, latency and cost of ``trustproxy serve`` under concurrency, one
worker vs N, and the latency it adds to a direct litellm call.

One run, one machine, same fake upstream (``tests/fakes``, its own process; it echoes the prompt,
so every reply is ~1 KB and carries the request's own values back through mask -> restore):

1. **Added latency** (sequential): ``litellm.acompletion`` straight to the upstream, interleaved
   request by request with the same call through the proxy (default policy, ``--workers N``).
2. **Load**: ``--workers 1`` and ``--workers N`` both running, closed-loop clients at each
   concurrency (default 8, 32, 64), each level split into ``--rounds`` turns (default 3) in which
   the two take turns, so a drift of the machine's speed (tens of percent within minutes on a
   shared VM) reaches both alike; each request a unique ~1 KB prompt with a name, an email, a
   phone number and ids (no cache can serve it). Reported: throughput, p50/p99 latency, CPU milliseconds per
   request (user+system of the supervisor and all workers, from /proc), RSS per worker, and
   refusals (503) and errors.
3. **Soak** (``--soak SECONDS``): concurrency 64 with unique values for a bounded time; every
   reply must equal its own prompt (so no value of another request can be in it), RSS is
   sampled every 10 s, and any error other than a counted 503 fails the run.

Every reply is checked: it must be exactly the prompt that was sent (the values were masked on
the way up and restored on the way back), and the upstream must never have seen the email.

Usage:
  python bench/bench_load.py [--workers-n 2] [--concurrency 8 32 64] [--requests 300]
                             [--write docs/benchmarks-load.md --plot docs/benchmarks-load.png]
  python bench/bench_load.py --soak 600
Prints no user text (the prompts are synthetic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trustproxy  # noqa: E402,F401  (offline switches before litellm)

import aiohttp  # noqa: E402
import yaml  # noqa: E402

FAKE = """\
import sys, time
sys.path.insert(0, {root!r})
from tests.fakes.providers import FakeOpenAI
f = FakeOpenAI(model="gpt-fake").start_sync()
print(f.port, flush=True)
seen = leaks = 0
while True:
    time.sleep(1)
    reqs, f.requests[:] = list(f.requests), []
    seen += len(reqs)
    leaks += sum("@example.org" in str(r.json) for r in reqs)
    with open({counts!r}, "w") as out:
        out.write(f"{{seen}} {{leaks}}")
"""


def upstream_counts(path: Path) -> tuple[int, int]:
    """(requests the upstream saw, of which held an unmasked email)."""
    try:
        seen, leaks = path.read_text().split()
        return int(seen), int(leaks)
    except (OSError, ValueError):
        return 0, 0


FIRST = ("Maria", "John", "Aiko", "Omar", "Lena", "Carlos", "Priya", "Tom", "Sofia", "Ivan")
LAST = ("Garcia", "Smith", "Tanaka", "Haddad", "Novak", "Silva", "Patel", "Brown", "Rossi", "Petrov")


def prompt(i: int, rnd: random.Random, domain: str = "example.org") -> str:
    """~1 KB, unique: a name, an email, a phone number, an order id and a random tag. The direct
    litellm baseline uses another domain, so the upstream's count of unmasked emails counts only
    requests that came through the proxy."""
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    tag = "".join(rnd.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(8))
    phone = f"415-{rnd.randint(200, 999)}-{rnd.randint(1000, 9999)}"
    email = f"{first.lower()}.{last.lower()}.{i}{tag}@{domain}"
    head = (f"Ticket {i}-{tag}: {first} {last} wrote in about order {100000 + i}. You can reach them at "
            f"{email} or on {phone}. ")
    body = ("The parcel was due last Tuesday but the tracking page still shows it at the regional depot, "
            "and the customer has asked twice for an update without a clear answer. They are polite but "
            "clearly frustrated, and they mention that the order contains a birthday present that must "
            "arrive before the weekend. Please draft a short reply that apologises for the delay, explains "
            "what we will check with the carrier today, and offers either a refund of the shipping cost or "
            "a free upgrade to express delivery for the replacement if the parcel cannot be located by "
            "tomorrow evening. Keep the tone warm and professional, avoid promising dates we cannot keep, "
            "and end with a clear next step. ")
    text = head + body
    while len(text) < 1000:
        text += "Thank you for your help with this. "
    return text[:1024].rsplit(" ", 1)[0] + "."


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- processes ---------------------------------------------------------------------------------

def start_fake(counts: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", FAKE.format(root=str(ROOT), counts=str(counts))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += tree(int(k))
    return out


def cpu_seconds(pids: list[int]) -> float:
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tck  # utime, stime
    return total


def proc_status(pid: int, key: str) -> str | None:
    """One field of ``/proc/<pid>/status`` (``VmRSS``, ``Cpus_allowed_list``), None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpus_allowed(pid: int) -> str:
    """The CPUs a process may run on, as the kernel lists them (``0-1``, ``0``)."""
    return proc_status(pid, "Cpus_allowed_list") or "?"


def rss_mb(pid: int) -> float:
    v = proc_status(pid, "VmRSS")  # "123456 kB"
    return int(v.split()[0]) / 1024 if v else 0.0


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    url: str
    workers: int
    #: the CPUs the workers are pinned to ("" for the default, ``cpu_affinity: auto``)
    affinity: str = ""
    #: the fake upstream's pid: its CPU per request is reported next to the proxy's and the client's
    upstream_pid: int = 0

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.proc.pid]
        return tree(self.proc.pid)[1:]

    def all_pids(self) -> list[int]:
        return tree(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_proxy(work: Path, upstream: str, workers: int, upstream_pid: int = 0, affinity: str = "") -> Proxy:
    pol = work / "policies"
    pol.mkdir(parents=True)
    shutil.copy(ROOT / "policies" / "default.yaml", pol / "default.yaml")
    route = {"model": "openai/gpt-fake", "api_base": upstream, "api_key_env": "TP_BENCH_KEY", "max_retries": 0}
    cfg = {"routes": {"default": route}, "log_level": "WARNING",
           "audit": {"path": str(work / "audit.jsonl"), "stdout": False}}
    (work / "trustproxy.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    port = free_port()
    # this tree's code, not whatever copy of trustproxy the venv has installed
    cmd = [sys.executable, "-m", "trustproxy.cli"]
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    env = {**os.environ, "TP_BENCH_KEY": "sk-bench",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([*cmd, "serve", "--workers", str(workers), "--config", str(work / "trustproxy.yaml"),
                             "--port", str(port), "--policy-dir", str(pol),
                             *(["--cpu-affinity", affinity] if affinity else [])], stdout=subprocess.DEVNULL,
                            stderr=log, env=env, cwd=work)
    p = Proxy(proc, f"http://127.0.0.1:{port}", workers, affinity, upstream_pid)
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            log.close()
            tail = (work / "serve.log").read_text(errors="replace").splitlines()[-15:]
            raise SystemExit(f"trustproxy serve exited ({proc.returncode}):\n" + "\n".join(tail))
        if len(p.worker_pids()) == workers and _ready_everywhere(p):
            return p
        if time.monotonic() > deadline:
            raise SystemExit("trustproxy serve did not become ready")
        time.sleep(1.0)


def _ready_everywhere(p: Proxy) -> bool:
    """Every worker listens (SO_REUSEPORT: a worker still loading has no listening socket)."""
    import urllib.request

    try:
        with urllib.request.urlopen(p.url + "/readyz", timeout=2) as r:
            if r.status != 200:
                return False
    except OSError:
        return False
    port = int(p.url.rsplit(":", 1)[1])
    listening = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(f":{port:04X}") and parts[3] == "0A":
            listening += 1
    return listening >= p.workers


# ---- clients -----------------------------------------------------------------------------------

@dataclass
class Level:
    workers: int
    concurrency: int
    affinity: str = ""
    n: int = 0
    ok: int = 0
    refused: int = 0
    errors: int = 0
    mismatched: int = 0
    seconds: float = 0.0
    lat: list[float] = field(default_factory=list)
    cpu_ms_per_req: float = 0.0
    client_cpu_ms_per_req: float = 0.0
    upstream_cpu_ms_per_req: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    #: each worker's allowed CPUs at the end of the level (read from /proc, not assumed)
    cpus: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def one(session: aiohttp.ClientSession, url: str, text: str, lvl: Level) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": text}]}
    t0 = time.perf_counter()
    try:
        async with session.post(url + "/v1/chat/completions", json=body) as r:
            data = await r.json(content_type=None)
            status = r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        lvl.errors += 1
        return
    took = time.perf_counter() - t0
    if status == 503:
        lvl.refused += 1
        return
    if status != 200:
        lvl.errors += 1
        return
    lvl.ok += 1
    lvl.lat.append(took)
    if data["choices"][0]["message"]["content"] != text:
        lvl.mismatched += 1


async def run_level(p: Proxy, conc: int, n: int, seed: int, *, duration: float | None = None,
                    on_tick: Any = None) -> Level:
    lvl = Level(p.workers, conc, p.affinity)
    rnd = random.Random(seed)
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=conc, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as s:
        # warm every connection first (and every worker), not measured
        await asyncio.gather(*(one(s, p.url, prompt(seed * 10**7 + next(counter), rnd), Level(0, 0))
                               for _ in range(conc)))
        pids = p.all_pids()
        c0, cc0, u0, t0 = cpu_seconds(pids), time.process_time(), cpu_seconds([p.upstream_pid]), time.perf_counter()
        end = t0 + duration if duration else None

        async def client() -> None:
            while True:
                i = next(counter)
                if end is None and lvl.n >= n:
                    return
                if end is not None and time.perf_counter() >= end:
                    return
                lvl.n += 1
                await one(s, p.url, prompt(seed * 10**7 + i, rnd), lvl)

        ticker = asyncio.create_task(_tick(p, lvl, on_tick)) if on_tick else None
        await asyncio.gather(*(client() for _ in range(conc)))
        lvl.seconds = time.perf_counter() - t0
        done = max(1, lvl.ok + lvl.refused + lvl.errors)
        lvl.cpu_ms_per_req = (cpu_seconds(pids) - c0) * 1000 / done
        lvl.client_cpu_ms_per_req = (time.process_time() - cc0) * 1000 / done
        lvl.upstream_cpu_ms_per_req = (cpu_seconds([p.upstream_pid]) - u0) * 1000 / done
        lvl.rss_mb = [rss_mb(w) for w in p.worker_pids()]
        lvl.cpus = [cpus_allowed(w) for w in p.worker_pids()]
        if ticker:
            ticker.cancel()
    return lvl


def merge(into: Level | None, lv: Level) -> Level:
    """Two segments of one level as one: counts and seconds added, latencies pooled, CPU per
    request weighted by the requests of each segment, RSS from the later one."""
    if into is None:
        return lv
    done_a = max(1, into.ok + into.refused + into.errors)
    done_b = max(1, lv.ok + lv.refused + lv.errors)

    def w(a: float, b: float) -> float:
        return (a * done_a + b * done_b) / (done_a + done_b)

    return Level(lv.workers, lv.concurrency, lv.affinity, n=into.n + lv.n, ok=into.ok + lv.ok, refused=into.refused + lv.refused,
                 errors=into.errors + lv.errors, mismatched=into.mismatched + lv.mismatched,
                 seconds=into.seconds + lv.seconds, lat=into.lat + lv.lat,
                 cpu_ms_per_req=w(into.cpu_ms_per_req, lv.cpu_ms_per_req),
                 client_cpu_ms_per_req=w(into.client_cpu_ms_per_req, lv.client_cpu_ms_per_req),
                 upstream_cpu_ms_per_req=w(into.upstream_cpu_ms_per_req, lv.upstream_cpu_ms_per_req),
                 rss_mb=lv.rss_mb, cpus=lv.cpus)


async def _tick(p: Proxy, lvl: Level, on_tick: Any) -> None:
    while True:
        await asyncio.sleep(10)
        on_tick(lvl, [rss_mb(w) for w in p.worker_pids()])


async def added_latency(p: Proxy, upstream: str, n: int) -> tuple[list[float], list[float], list[float]]:
    """Wall seconds of each direct call and each proxied one, and the CPU milliseconds (this
    process) of each direct call: the same-run baseline of the proxy's CPU per request."""
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"model": "openai/gpt-fake", "api_base": upstream, "api_key": "sk-bench", "max_retries": 0}
    rnd = random.Random(7)
    direct: list[float] = []
    proxied: list[float] = []
    direct_cpu: list[float] = []
    async with aiohttp.ClientSession() as s:
        for i in range(n + 10):
            text = prompt(9 * 10**8 + i, rnd)
            plain = text.replace("@example.org", "@example.net")  # same length and work
            t0, c0 = time.perf_counter(), time.process_time()
            r = await litellm.acompletion(messages=[{"role": "user", "content": plain}], **params)
            d, dc = time.perf_counter() - t0, time.process_time() - c0
            assert r.choices[0].message.content == plain
            lvl = Level(0, 0)
            t0 = time.perf_counter()
            await one(s, p.url, text, lvl)
            q = time.perf_counter() - t0
            assert lvl.ok == 1 and not lvl.mismatched, "proxy reply differs from the prompt"
            if i >= 10:
                direct.append(d)
                direct_cpu.append(dc * 1000)
                proxied.append(q)
    return direct, proxied, direct_cpu


# ---- report ------------------------------------------------------------------------------------

def table(levels: list[Level]) -> str:
    rows = ["| workers | CPUs each worker may use | concurrency | requests | throughput (req/s) | p50 (ms) | p99 (ms) "
            "| CPU ms / request (proxy) | RSS per worker (MB) | 503 | errors | replies != prompt |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for lv in levels:
        rows.append(f"| {lv.workers} | {' / '.join(lv.cpus)} | {lv.concurrency} | {lv.ok} | {lv.rps:.1f} | "
                    f"{pct(lv.lat, 50) * 1000:.0f} | "
                    f"{pct(lv.lat, 99) * 1000:.0f} | {lv.cpu_ms_per_req:.1f} | "
                    f"{', '.join(f'{r:.0f}' for r in lv.rss_mb)} | {lv.refused} | {lv.errors} | {lv.mismatched} |")
    return "\n".join(rows)


def plot(levels: list[Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for cf in dict.fromkeys((lv.workers, lv.affinity) for lv in levels):
        ls = [lv for lv in levels if (lv.workers, lv.affinity) == cf]
        xs = [lv.concurrency for lv in ls]
        name = f"--workers {cf[0]}" + (f" --cpu-affinity {cf[1]}" if cf[1] else "")
        a.plot(xs, [lv.rps for lv in ls], marker="o", label=name, linestyle="--" if cf[1] else "-")
        b.plot(xs, [pct(lv.lat, 99) * 1000 for lv in ls], marker="o", label=name, linestyle="--" if cf[1] else "-")
    a.set(title="Throughput (unique 1 KB prompts, default policy)", xlabel="concurrency", ylabel="requests / s")
    b.set(title="p99 latency", xlabel="concurrency", ylabel="ms")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_xticks(sorted({lv.concurrency for lv in levels}))
        ax.set_ylim(bottom=0)  # from zero, so heights compare as ratios
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return (f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs usable, "
            f"Python {platform.python_version()}, load average at start {load[0]:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers-n", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--requests", type=int, default=300, help="measured requests per level")
    ap.add_argument("--rounds", type=int, default=3,
                    help="turns each level is split into, --workers 1 and N alternating")
    ap.add_argument("--no-pinned-baseline", action="store_true",
                    help="leave out the --workers 1 --cpu-affinity <first CPU> runs")
    ap.add_argument("--sequential", type=int, default=100, help="requests for the added-latency comparison")
    ap.add_argument("--soak", type=float, default=None, help="soak for this many seconds instead (concurrency 64)")
    ap.add_argument("--write", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()

    start_load = machine()
    work = Path(tempfile.mkdtemp(prefix="tp-bench-load-"))
    counts = work / "upstream-counts"
    fake, port = start_fake(counts)
    upstream = f"http://127.0.0.1:{port}/v1"
    try:
        if args.soak:
            code = soak(work, upstream, args.workers_n, args.soak)
            time.sleep(1.5)
            seen, leaks = upstream_counts(counts)
            print(f"upstream saw {seen} requests, {leaks} with an unmasked email")
            return code or (1 if leaks else 0)
        # the defaults (cpu_affinity: auto), and --workers 1 pinned to one CPU: the fair baseline
        # for what the N workers' own pinning adds (auto pins N workers on exactly N CPUs)
        configs: list[tuple[int, str]] = [(1, ""), (args.workers_n, "")]
        if not args.no_pinned_baseline:
            configs.append((1, str(min(os.sched_getaffinity(0)))))
        proxies = {cf: start_proxy(work / f"w{cf[0]}{cf[1] and '-pinned'}", upstream, cf[0], fake.pid, cf[1])
                   for cf in configs}
        agg: dict[tuple[int, str, int], Level] = {}
        try:
            direct, proxied, direct_cpu = asyncio.run(added_latency(proxies[(args.workers_n, "")], upstream,
                                                                    args.sequential))
            for c in args.concurrency:
                n = max(args.requests, 3 * c * args.rounds)
                # the configurations take turns, in rounds, so all see the same phases of a machine
                # whose speed drifts by tens of percent within minutes
                for r in range(args.rounds):
                    for cf in configs:
                        lv = asyncio.run(run_level(proxies[cf], c, n // args.rounds,
                                                   seed=cf[0] * 100 + c + 1000 * r))
                        agg[(*cf, c)] = merge(agg.get((*cf, c)), lv)
                for cf in configs:
                    lv = agg[(*cf, c)]
                    print(f"workers={cf[0]}{cf[1] and ' pinned'} conc={c}: {lv.rps:.1f} req/s "
                          f"p50={pct(lv.lat, 50) * 1000:.0f} ms "
                          f"p99={pct(lv.lat, 99) * 1000:.0f} ms cpu={lv.cpu_ms_per_req:.1f} ms/req "
                          f"client={lv.client_cpu_ms_per_req:.1f} upstream={lv.upstream_cpu_ms_per_req:.1f} "
                          f"rss={[round(x) for x in lv.rss_mb]} 503={lv.refused} err={lv.errors} "
                          f"mismatch={lv.mismatched}", flush=True)
        finally:
            for p in proxies.values():
                p.stop()
        levels = [agg[(*cf, c)] for cf in configs for c in args.concurrency]
        end_load = os.getloadavg()[0]
        time.sleep(1.5)
        seen, leaks = upstream_counts(counts)
        report = render(levels, direct, proxied, direct_cpu, args, start_load, end_load, seen, leaks)
        print(report)
        if args.plot:
            plot(levels, args.plot)
        if args.write:
            write(args.write, report)
        bad = sum(lv.mismatched + lv.errors for lv in levels) + leaks
        return 1 if bad else 0
    finally:
        fake.terminate()
        shutil.rmtree(work, ignore_errors=True)


def render(levels: list[Level], direct: list[float], proxied: list[float], direct_cpu: list[float],
           args: argparse.Namespace, start_load: str, end_load: float, seen: int, leaks: int) -> str:
    by = {(lv.workers, lv.affinity, lv.concurrency): lv for lv in levels}
    n = args.workers_n
    pinned = next((lv.affinity for lv in levels if lv.affinity), "")

    def ratio(base: tuple[int, str]) -> str:
        return "; ".join(f"concurrency {c}: {by[(n, '', c)].rps / by[(*base, c)].rps:.2f}x" for c in args.concurrency
                         if (*base, c) in by and (n, "", c) in by and by[(*base, c)].rps)
    ratios = ratio((1, ""))
    vs_pinned = (f"Against `--workers 1 --cpu-affinity {pinned}` (one process pinned to one CPU, the same "
                 f"pinning each of the N workers gets): {ratio((1, pinned))}." if pinned else "")
    d50, p50 = pct(direct, 50) * 1000, pct(proxied, 50) * 1000
    lines = [
        "<!-- bench_load:begin -->",
        f"Machine: {start_load}; load average at the end {end_load:.1f} (the benchmark's own client and "
        "fake upstream run on the same cores). Ratios come from the same run, `--workers 1` and `--workers N` "
        f"taking turns in {args.rounds} rounds per level; absolute numbers depend "
        "on what else the machine was doing.",
        "",
        table(levels),
        "",
        f"Throughput, `--workers {n}` / `--workers 1` (both with the default `cpu_affinity: auto`): {ratios}.",
        "",
        vs_pinned,
        "",
        f"Added latency (sequential, {len(direct)} unique 1 KB prompts, interleaved, default policy, "
        f"`--workers {n}`): direct `litellm.acompletion` p50 {d50:.1f} ms, through the proxy p50 {p50:.1f} ms: "
        f"**+{p50 - d50:.1f} ms** (p99 {pct(direct, 99) * 1000:.1f} vs {pct(proxied, 99) * 1000:.1f} ms).",
        "",
        cpu_line(levels, direct_cpu),
        "",
        f"Checks: every reply compared with its own prompt (column `replies != prompt`); the upstream saw "
        f"{seen} requests, {leaks} of them with an unmasked email.",
        "",
        "Reproduce (from the repository root, in the venv):",
        "",
        "```",
        "python bench/bench_load.py --write docs/benchmarks-load.md --plot docs/benchmarks-load.png",
        "```",
        "<!-- bench_load:end -->",
    ]
    return "\n".join(lines)


def cpu_line(levels: list[Level], direct_cpu: list[float]) -> str:
    """The proxy's CPU per request against baselines measured in the same run: a direct litellm
    call (the same provider work without the proxy), and the client's and upstream's own CPU."""
    if not direct_cpu or not levels:
        return ""
    direct = statistics.mean(direct_cpu)
    per = ", ".join(f"w{lv.workers}{lv.affinity and 'p'}/c{lv.concurrency} {lv.cpu_ms_per_req / direct:.1f}x"
                    for lv in levels)
    client = statistics.mean(lv.client_cpu_ms_per_req for lv in levels)
    up = statistics.mean(lv.upstream_cpu_ms_per_req for lv in levels)
    return (f"CPU against the same run's baselines: a direct `litellm.acompletion` call costs {direct:.1f} ms of CPU "
            f"(mean of {len(direct_cpu)}); a request through the proxy costs {per} of it. The benchmark's client "
            f"used {client:.1f} ms and the fake upstream {up:.1f} ms of CPU per request on the same cores.")


def write(path: Path, report: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    b, e = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"
    if b in text and e in text:
        text = text[:text.index(b)] + report + text[text.index(e) + len(e):]
    else:
        text = text + "\n" + report + "\n"
    path.write_text(text, encoding="utf-8")


def soak(work: Path, upstream: str, workers: int, seconds: float) -> int:
    p = start_proxy(work / "soak", upstream, workers)
    samples: list[tuple[float, list[float]]] = []
    t0 = time.monotonic()

    def tick(lvl: Level, rss: list[float]) -> None:
        samples.append((time.monotonic() - t0, rss))
        print(f"t={samples[-1][0]:.0f}s ok={lvl.ok} 503={lvl.refused} err={lvl.errors} "
              f"mismatch={lvl.mismatched} rss={[round(r) for r in rss]}", flush=True)

    try:
        lvl = asyncio.run(run_level(p, 64, 0, seed=4242, duration=seconds, on_tick=tick))
    finally:
        p.stop()
    first = samples[0][1] if samples else []
    last = samples[-1][1] if samples else []
    print(json.dumps({"seconds": round(lvl.seconds), "ok": lvl.ok, "refused_503": lvl.refused,
                      "errors": lvl.errors, "replies_not_their_own_prompt": lvl.mismatched,
                      "rps": round(lvl.rps, 1), "p50_ms": round(pct(lvl.lat, 50) * 1000),
                      "p99_ms": round(pct(lvl.lat, 99) * 1000), "rss_first_mb": [round(r) for r in first],
                      "rss_last_mb": [round(r) for r in last],
                      "rss_max_mb": [round(max(s[1][i] for s in samples)) for i in range(len(first))] if samples else []}))
    return 1 if lvl.errors or lvl.mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
