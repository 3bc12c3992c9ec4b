"""Precision: technical and ordinary text that holds no personal data and no secrets must give
zero detections with the default entity list and thresholds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trustproxy.pii.detector import DEFAULT_ENTITIES, Detector, get_detector

pytestmark = pytest.mark.slow

CLEAN: list[str] = [
    "Let's sync next week about the Q3 roadmap and the Q4 OKRs.",
    "Deploy to S3 in us-east-1, then scale the EC2 fleet to 12 instances.",
    "The API returned HTTP 404, then 500, and finally 200 OK after the retry.",
    "Upgrade from 1.2.3 to v2.0.1; see CHANGELOG for 2.0.0-rc.1 breaking changes.",
    "Request id 3f2b8c1e-9d4a-4e8b-a1c2-7f6e5d4c3b2a failed validation.",
    "Reverted commit 9fceb02d0ae598e95dc970b74767f19372d61af8 on main.",
    "Short SHA a1b2c3d fixed the flaky test in 4e5f6a7.",
    "2024-05-14T10:23:45.123Z INFO worker-3 processed 1532 jobs in 842 ms",
    "[2024-05-14 10:23:45,123] WARN pool.py:88 connection pool at 95% (19/20)",
    'Traceback (most recent call last):\n  File "/app/server.py", line 142, in handle\n'
    "    resp = await self.dispatch(req)\nKeyError: 'user_id'",
    "java.lang.NullPointerException\n\tat com.acme.billing.Invoice.total(Invoice.java:57)",
    "def get_user(user_id: int) -> User:\n    return session.get(User, user_id)",
    "const maxRetries = 5; for (let i = 0; i < maxRetries; i++) { await sleep(250 * i); }",
    "SELECT id, created_at FROM orders WHERE status = 'paid' LIMIT 100;",
    "server:\n  port: 8080\n  workers: 4\n  timeout_seconds: 30\nlogging:\n  level: info",
    "database:\n  host: db.internal\n  port: 5432\n  user: app\n  password: ${DB_PASSWORD}",
    "DATABASE_URL=postgres://app@db.internal:5432/app?sslmode=require",
    "def login(username, password=None):\n    return auth.check(username, password=password)",
    "class Settings(BaseModel):\n    password: str = Field(description='db password')",
    "docker run -p 8080:80 -e LOG_LEVEL=debug nginx:1.25-alpine",
    "kubectl scale deployment web --replicas=3 -n prod",
    "pip install requests==2.31.0 numpy>=1.26 'pydantic<3'",
    "The p99 latency dropped from 450ms to 120ms after enabling HTTP/2.",
    "Budget for FY2025 is 1.2M, up 15% from last year.",
    "Meeting moved to Tuesday 3pm; bring the slides for the board review.",
    "Our team in Berlin and the vendor in Austin will review the contract.",
    "Microsoft and Google announced new cloud regions this quarter.",
    "Use Redis for the cache and Kafka for the event bus; Postgres stays the source of truth.",
    "The build failed on node 18 but passed on node 20.",
    "Set max_tokens=512 and temperature=0.2 for the summariser.",
    "Error E1101: Module 'numpy' has no 'float' member (pylint).",
    "Port 443 is open; port 22 is restricted to the VPN CIDR 10.0.0.0/8.",
    "Checksum sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Base64 of the config: eyAiZGVidWciOiB0cnVlIH0= (just a flag).",
    "The ticket JIRA-4521 depends on PROJ-88 and OPS-1203.",
    "Chapter 3, section 4.2, page 118 explains the algorithm.",
    "Run `make test` then `make lint`; CI takes about 7 minutes.",
    "We shipped 3 features, fixed 27 bugs, and closed 12 tickets in sprint 42.",
    "Memory usage: 1536 MiB / 4096 MiB; CPU 73%.",
    "The model achieved 0.873 F1 on the dev set and 0.861 on test.",
    "GET /api/v1/users/1234/orders?page=2&per_page=50 HTTP/1.1",
    "Latency histogram buckets: 5, 10, 25, 50, 100, 250, 500, 1000.",
    "Please review the PR before the code freeze on Friday.",
    "Mount the volume at /var/lib/postgresql/data and restart the pod.",
    "Set AWS_REGION=eu-west-1 and AWS_PROFILE=staging before running terraform plan.",
    "The invoice total is $1,249.99 including tax.",
    "Image size is 1920x1080 at 60 fps.",
    "Use the public key in ~/.ssh/id_ed25519.pub for the deploy.",
    "Windows build 22631.3296 fixed the driver issue.",
    "The function returns a tuple (status, payload) or raises ValueError.",
    "See RFC 7231 section 6.5.4 for the 404 semantics.",
    "Row 42, column 7: unexpected token '}'.",
]


@pytest.fixture(scope="module")
def detector() -> Iterator[Detector]:
    yield get_detector()


def test_clean_corpus_has_zero_detections(detector: Detector) -> None:
    assert len(CLEAN) >= 40
    results = detector.detect_many(CLEAN, entities=DEFAULT_ENTITIES, thresholds={},
                                   default_threshold=0.5)
    flagged = [(i, [(s.entity_type, s.recognizer) for s in spans])
               for i, spans in enumerate(results) if spans]
    fp_rate = len(flagged) / len(CLEAN)
    print(f"\ndetector false-positive rate on clean corpus: {fp_rate:.1%} "
          f"({len(flagged)}/{len(CLEAN)} snippets); flagged (index, types): {flagged}")
    assert not flagged


def test_plain_dates_are_not_dates_of_birth(detector: Detector) -> None:
    text = "The release is on 03/14/2025 and the freeze on March 3, 2025."
    assert detector.detect(text, entities=["DATE_OF_BIRTH"], thresholds={},
                           default_threshold=0.5) == []


def test_nine_digit_numbers_need_context(detector: Detector) -> None:
    text = "order 021000021 shipped, account 123456789012 (AWS), build 912803456"
    spans = detector.detect(text, entities=DEFAULT_ENTITIES, thresholds={},
                            default_threshold=0.5)
    assert [s.entity_type for s in spans] == []
