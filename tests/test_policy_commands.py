"""`trustproxy policy check|test|explain|schema`, the shipped schema, and every shipped
policy's golden examples against the real detector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import trustproxy  # noqa: F401
from trustproxy.policy import commands
from trustproxy.policy.export import DOC_BEGIN, DOC_END, schema_reference_markdown, schema_text
from trustproxy.policy.loader import load_loaded_file, load_policy_dir
from trustproxy.policy.schema import Policy

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
SHIPPED = sorted([*POLICIES.glob("*.yaml"), *(POLICIES / "examples").glob("*.yaml")])


@dataclass
class FakeResult:
    detected: list[tuple[str, str, float, int, int]]
    blocked: bool
    blocked_types: list[str]
    provider_text: str


def fake_inspect(policy: Policy, text: str) -> FakeResult:
    """Detects the word 'Falcon' as CODENAME, masked, unless the policy blocks it."""
    actions = {e.type: e.action.value for e in policy.entities}
    i = text.find("Falcon")
    if i < 0:
        return FakeResult([], False, [], text)
    action = actions.get("CODENAME", "mask")
    det = [("CODENAME", action, 0.9, i, i + 6)]
    if action == "block":
        return FakeResult(det, True, ["CODENAME"], "")
    return FakeResult(det, False, [], text.replace("Falcon", "<CODENAME_1>"))


GOOD = """\
name: good
entities: [{type: CODENAME}]
custom_recognizers: [{name: codenames, type: CODENAME, deny_list: [Falcon]}]
tests:
  - name: codename masked
    text: "Ask Falcon"
    expect: {detected: [CODENAME], provider_sees: "Ask <CODENAME_1>", actions: {CODENAME: mask}}
  - text: "hello"
    expect: {detected: [], blocked: false}
"""
WRONG = """\
name: wrong
entities: [{type: CODENAME, action: block}]
custom_recognizers: [{name: codenames, type: CODENAME, deny_list: [Falcon]}]
tests:
  - name: expects masking
    text: "Ask Falcon"
    expect: {blocked: false, provider_sees_not: [Falcon], actions: {CODENAME: mask}}
"""


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    assert commands.check([str(tmp_path)]) == 0
    lp = load_policy_dir(tmp_path)["good"]
    assert capsys.readouterr().out == f"ok good {lp.version}\n"
    (tmp_path / "bad.yaml").write_text("name: bad\nentities: [{type: PERSON, action: mask_all}]\n")
    assert commands.check([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"ok good {lp.version}",
                   f"{tmp_path}/bad.yaml:2:35 entities[0].action: 'mask_all' is not one of "
                   "mask, redact, hash, synthetic, block, allow",
                   "1 problem(s) found"]
    assert commands.check([str(tmp_path / "good.yaml")]) == 0


def test_golden_pass_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    assert commands.test([str(tmp_path / "good.yaml")], inspect=fake_inspect) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["PASS good #1 codename masked [CODENAME]",
                   "PASS good #2 example 2 [nothing detected]",
                   "golden examples: 2 ok, 0 failing"]
    (tmp_path / "wrong.yaml").write_text(WRONG)
    assert commands.test([str(tmp_path / "wrong.yaml")], inspect=fake_inspect) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["FAIL wrong #1 expects masking",
                   "     blocked: expected false, got true (blocked types: CODENAME)",
                   "     actions: CODENAME expected mask, got block",
                   "golden examples: 0 ok, 1 failing"]


def test_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    assert commands.explain("good", "Ask Falcon", str(tmp_path), inspect=fake_inspect) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["detected:", "  CODENAME  score 0.90  mask       chars 4-10",
                       "blocked: no", "provider sees:", "Ask <CODENAME_1>"]
    assert commands.explain("nope", "x", str(tmp_path), inspect=fake_inspect) == 1
    assert "'nope', which is not loaded" in capsys.readouterr().out


def test_schema_command_and_shipped_schema(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert commands.schema(str(out)) == 0
    assert out.read_text() == schema_text()
    shipped = (POLICIES / "policy.schema.json").read_text()
    assert shipped == schema_text(), "run: trustproxy policy schema"
    assert json.loads(shipped)["additionalProperties"] is False


def test_docs_reference_is_current() -> None:
    doc = (ROOT / "docs" / "policies.md").read_text()
    section = doc[doc.index(DOC_BEGIN) + len(DOC_BEGIN):doc.index(DOC_END)]
    assert section.strip() == schema_reference_markdown().strip(), \
        "run: python -m trustproxy.policy.export --docs docs/policies.md"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_is_valid_and_points_at_schema(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    rel = os.path.relpath(POLICIES / "policy.schema.json", path.parent)
    assert first == f"# yaml-language-server: $schema=./{rel}" or first == f"# yaml-language-server: $schema={rel}"
    lp = load_loaded_file(path)
    assert lp.policy.tests, "every shipped policy carries golden examples"


def test_module_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "trustproxy.policy.commands", "check", "policies"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(line.split()[1] for line in r.stdout.splitlines()) == ["default", "gdpr", "hipaa", "pci"]
    r = subprocess.run([sys.executable, "-m", "trustproxy.policy.commands", "check", "/nonexistent.yaml"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no such file" in r.stdout


def _real_inspect():  # type: ignore[no-untyped-def]
    try:
        from trustproxy.pii.masker import inspect_text
        import trustproxy.pii.detector  # noqa: F401
        import trustproxy.pii.vault  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"real detector not available yet ({exc.name})")
    return inspect_text


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_golden_examples_pass(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = commands.test([str(path)], inspect=_real_inspect())
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out
