"""Clean texts: technical and ordinary traffic with no personal data and no secret in it, which
must reach the provider unaltered. Hashes, UUIDs, SHAs, integrity strings, version numbers,
timestamps, code, product names that look like people ("Terraform Cloud"), order numbers, and
ordinary prose in every corpus language.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable

from bench.corpus.lang import ASK, FILLER, INTRO

COMMITS = ["fix: retry idempotent requests only", "chore: bump dependencies", "feat: add CSV export",
           "refactor: split the billing worker", "docs: explain the rollout plan", "test: cover the empty cart",
           "perf: cache the tax table", "fix(api): return 409 on duplicate keys", "ci: pin the runner image"]
PRODUCTS = ["Terraform Cloud", "GitHub Actions", "Azure DevOps", "Google Sheets", "Visual Studio Code",
            "Apple Pay", "Jira Service Management", "Amazon S3", "Windows Server 2022", "Microsoft Teams",
            "Adobe Acrobat", "Salesforce Service Cloud", "Datadog APM", "Grafana Loki", "Docker Desktop",
            "Google Cloud Run", "Oracle Database", "Red Hat Enterprise Linux", "Power BI", "Zoom Rooms",
            "Stripe Checkout", "Shopify Plus", "Jenkins X", "Argo CD", "Kafka Connect", "Elastic Cloud"]
SERVICES = ["billing-worker", "api-gateway", "scheduler", "search-indexer", "auth-service", "report-builder"]
PACKAGES = ["numpy", "pandas", "requests", "fastapi", "pydantic", "sqlalchemy", "react", "express",
            "lodash", "spring-boot", "tokio", "serde"]


def _sha(r: random.Random, n: int = 40) -> str:
    return hashlib.sha256(str(r.random()).encode()).hexdigest()[:n] if n <= 64 else ""


def _ver(r: random.Random) -> str:
    return f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 20)}"


def _uuid(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def _ts(r: random.Random) -> str:
    return (f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
            f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z")


def git_log(r: random.Random) -> str:
    lines = [f"{_sha(r, 7)} {r.choice(COMMITS)}" for _ in range(r.randint(5, 10))]
    full = _sha(r, 40)
    return ("Which of these commits could have caused the regression? git log --oneline:\n"
            + "\n".join(lines) + f"\n\nThe bisect ended at {full}; `git show {full[:12]} --stat` lists 4 files.")


def checksums(r: random.Random) -> str:
    lines = [f"{_sha(r, 64)}  dist/{r.choice(PACKAGES)}-{_ver(r)}.tar.gz" for _ in range(r.randint(3, 6))]
    md5 = _sha(r, 32)
    return ("The release checksums do not match the mirror. sha256sum output:\n" + "\n".join(lines)
            + f"\n\nThe mirror reports md5 {md5} for the first file. Which one is wrong?")


def uuids_json(r: random.Random) -> str:
    rows = [{"request_id": _uuid(r), "trace_id": _sha(r, 32), "span_id": _sha(r, 16),
             "status": r.choice([200, 201, 404, 409, 503]), "duration_ms": r.randint(3, 4000),
             "ts": _ts(r)} for _ in range(r.randint(3, 5))]
    import json
    return "Why are the 503s clustered? Here is the sample:\n" + json.dumps(rows, indent=2)


def integrity(r: random.Random) -> str:
    import base64
    import json
    pkgs = {}
    for name in r.sample(PACKAGES, 4):
        digest = base64.b64encode(hashlib.sha512(str(r.random()).encode()).digest()).decode()
        pkgs[f"node_modules/{name}"] = {"version": _ver(r), "resolved": f"https://registry.npmjs.org/{name}/-/{name}-{_ver(r)}.tgz",
                                        "integrity": f"sha512-{digest}"}
    return ("npm ci fails with EINTEGRITY after the lockfile merge. The relevant part of package-lock.json:\n"
            + json.dumps({"packages": pkgs}, indent=2))


def python_code(r: random.Random) -> str:
    n = r.randint(2, 9)
    return (f"Can you make this faster? It runs every {r.randint(5, 60)} minutes.\n\n```python\n"
            "import hashlib\nfrom pathlib import Path\n\n\n"
            f"def digest_tree(root: Path, chunk: int = {2 ** r.randint(12, 20)}) -> dict[str, str]:\n"
            "    out = {}\n    for path in sorted(root.rglob('*')):\n        if not path.is_file():\n            continue\n"
            "        h = hashlib.sha256()\n        with path.open('rb') as fh:\n"
            "            while block := fh.read(chunk):\n                h.update(block)\n"
            "        out[str(path.relative_to(root))] = h.hexdigest()\n    return out\n\n\n"
            f"if __name__ == '__main__':\n    print(len(digest_tree(Path('/srv/data'))), 'files, retries={n}')\n```")


def sql(r: random.Random) -> str:
    return ("This query got slow after the table passed 40M rows:\n\n```sql\n"
            "SELECT o.id, o.created_at, SUM(li.quantity * li.unit_price) AS total\n"
            "FROM orders o JOIN line_items li ON li.order_id = o.id\n"
            f"WHERE o.created_at >= NOW() - INTERVAL '{r.randint(7, 90)} days' AND o.status = 'paid'\n"
            f"GROUP BY o.id ORDER BY total DESC LIMIT {r.choice([50, 100, 500])};\n```\n"
            "EXPLAIN shows a sequential scan on line_items. Which index would you add?")


def k8s(r: random.Random) -> str:
    svc = r.choice(SERVICES)
    return (f"The {svc} pods are OOMKilled since the upgrade. Manifest:\n\n```yaml\n"
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {svc}\nspec:\n  replicas: {r.randint(2, 6)}\n"
            f"  template:\n    spec:\n      containers:\n        - name: {svc}\n"
            f"          image: ghcr.io/acme/{svc}@sha256:{_sha(r, 64)}\n"
            f"          resources:\n            limits: {{memory: {r.choice([256, 512, 768])}Mi, cpu: {r.choice(['250m', '500m', '1'])}}}\n"
            f"          env:\n            - {{name: LOG_LEVEL, value: info}}\n            - {{name: WORKERS, value: \"{r.randint(2, 8)}\"}}\n```")


def app_log(r: random.Random) -> str:
    lines = []
    for _ in range(r.randint(6, 12)):
        lines.append(f"{_ts(r)} {r.choice(['INFO', 'WARN', 'ERROR'])} [{r.choice(SERVICES)}] "
                     f"job={r.choice(['nightly-report', 'sync-catalog', 'rebuild-index'])} "
                     f"duration_ms={r.randint(5, 9000)} status={r.choice(['ok', 'retry', 'timeout'])} "
                     f"attempt={r.randint(1, 4)}")
    return "Why does the job time out only at night?\n\n" + "\n".join(lines)


def traceback(r: random.Random) -> str:
    return ("Getting this on CI only:\n\nTraceback (most recent call last):\n"
            f'  File "/app/src/worker/tasks.py", line {r.randint(20, 400)}, in run_batch\n'
            "    result = client.fetch(batch_id, timeout=cfg.timeout)\n"
            f'  File "/app/.venv/lib/python3.12/site-packages/httpx/_client.py", line {r.randint(800, 1700)}, in send\n'
            "    raise exc\nhttpx.ReadTimeout: The read operation timed out\n\n"
            f"batch_id={_uuid(r)} commit={_sha(r, 40)} runner=ubuntu-24.04 python=3.12.{r.randint(0, 9)}")


def versions(r: random.Random) -> str:
    ups = [f"- {p}: {_ver(r)} -> {_ver(r)}" for p in r.sample(PACKAGES, 5)]
    return ("Dependabot opened these upgrades; which are safe to merge together?\n" + "\n".join(ups)
            + f"\nNode {r.randint(18, 22)}.{r.randint(0, 15)}.{r.randint(0, 9)}, Python 3.{r.randint(10, 13)}, "
            f"build #{r.randint(1000, 99999)}, image tag v{_ver(r)}-rc.{r.randint(1, 5)}.")


def products(r: random.Random) -> str:
    a, b, c, d = r.sample(PRODUCTS, 4)
    return (f"We are moving our state from {a} to {b}. The finance team still exports from {c}, "
            f"and the on-call rotation lives in {d}. Write a migration checklist with owners as roles "
            f"(not names), and note which steps need a maintenance window of about {r.randint(1, 6)} hours.")


def orders(r: random.Random) -> str:
    rows = [f"ORD-{r.randint(2023, 2025)}-{r.randint(1, 99999):05d},{r.choice(['paid', 'shipped', 'refunded'])},"
            f"{r.randint(1, 40)},{r.randint(100, 99999) / 100:.2f},EUR" for _ in range(r.randint(5, 9))]
    return ("Summarise the refund share in this export:\n\norder_id,status,items,total,currency\n"
            + "\n".join(rows))


def tool_args_clean(r: random.Random) -> str:
    import json
    return json.dumps({"query": f"error rate for {r.choice(SERVICES)} over the last {r.randint(1, 24)}h",
                       "group_by": ["region", "version"], "limit": r.choice([10, 50, 100]),
                       "since": _ts(r), "dashboard": _uuid(r)})


def tool_result_clean(r: random.Random) -> str:
    import json
    return json.dumps({"status": "ok", "rows": [{"region": reg, "version": f"v{_ver(r)}", "errors": r.randint(0, 500),
                                                 "requests": r.randint(1000, 900000)} for reg in r.sample(
        ["eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1", "sa-east-1"], 3)],
                       "query_id": _uuid(r), "elapsed_ms": r.randint(5, 900)})


def prose(r: random.Random, lang: str) -> str:
    domain = r.choice([d for d in INTRO[lang]])
    parts = [r.choice(INTRO[lang][domain])] + r.sample(FILLER[lang], min(3, len(FILLER[lang]))) + [r.choice(ASK[lang])]
    return " ".join(parts) if lang not in ("ja", "zh") else "".join(parts)


TECH: dict[str, Callable[[random.Random], str]] = {
    "git_log": git_log, "checksums": checksums, "uuids": uuids_json, "integrity": integrity,
    "code": python_code, "sql": sql, "k8s": k8s, "log": app_log, "traceback": traceback,
    "versions": versions, "products": products, "orders": orders,
}
