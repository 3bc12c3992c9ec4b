"""Entity type names are checked against the detector's real recognizer registry, with a
did-you-mean at file:line:col; a screen switched on with nothing to screen is an error; the
exported JSON Schema lists the valid names for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import trustproxy  # noqa: F401
from trustproxy.policy import commands, registry
from trustproxy.policy.errors import PolicyFileError
from trustproxy.policy.export import policy_json_schema
from trustproxy.policy.loader import load_policy_dir

ROOT = Path(__file__).resolve().parent.parent


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(PolicyFileError) as ei:
        load_policy_dir(tmp_path)
    return ei.value.problems


def test_typo_gets_did_you_mean_at_file_line_col(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("name: default\nentities:\n  - {type: PERSON}\n  - {type: EMAL_ADDRESS, action: mask}\n"
            "output:\n  pii:\n    entities: [CREDIT_CARD, US_SNN]\n"
            "retention:\n  require_zero_data_retention_for: [PHONE_NUMBR]\n"
            "tests:\n  - text: hi\n    expect: {detected: [PERSN], actions: {EMAIL_ADRESS: mask}}\n")
    (tmp_path / "default.yaml").write_text(text, encoding="utf-8")
    assert commands.check([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    f = f"{tmp_path}/default.yaml"

    def at(word: str) -> str:  # line:col of the word's first occurrence
        line = next(i for i, x in enumerate(text.splitlines(), 1) if word in x)
        return f"{line}:{text.splitlines()[line - 1].index(word) + 1}"

    assert out == [
        f"{f}:{at('EMAL_ADDRESS')} entities[1].type: unknown entity type 'EMAL_ADDRESS' (did you mean 'EMAIL_ADDRESS'?)",
        f"{f}:{at('US_SNN')} output.pii.entities[1]: unknown entity type 'US_SNN' (did you mean 'US_SSN'?)",
        f"{f}:{at('PHONE_NUMBR')} retention.require_zero_data_retention_for[0]: unknown entity type 'PHONE_NUMBR' "
        "(did you mean 'PHONE_NUMBER'?)",
        f"{f}:{at('PERSN')} tests[0].expect.detected[0]: unknown entity type 'PERSN' (did you mean 'PERSON'?)",
        f"{f}:{at('EMAIL_ADRESS')} tests[0].expect.actions.EMAIL_ADRESS: unknown entity type 'EMAIL_ADRESS' "
        "(did you mean 'EMAIL_ADDRESS'?)",
        "5 problem(s) found"]


def test_a_name_nothing_reports(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"default.yaml": "name: default\nentities: [{type: FAVOURITE_COLOUR}]\n"})
    assert problems == [f"{tmp_path}/default.yaml:2:19 entities[0].type: unknown entity type 'FAVOURITE_COLOUR' "
                        "(not reported by any recognizer; add a custom_recognizer for it, or see docs/policies.md)"]


def test_custom_types_count_also_from_the_parent(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(
        "name: default\nentities: [{type: PROJECT_CODENAME}]\n"
        "custom_recognizers: [{name: codenames, type: PROJECT_CODENAME, deny_list: [Falcon]}]\n", encoding="utf-8")
    (tmp_path / "team.yaml").write_text(
        "name: team\nextends: default\nentities: [{type: PROJECT_CODENAME, action: redact}]\n"
        "output: {pii: {entities: [PROJECT_CODENAME]}}\n", encoding="utf-8")
    loaded = load_policy_dir(tmp_path)
    assert loaded["team"].policy.output.pii.entities == ["PROJECT_CODENAME"]
    # without the parent's recognizer the same name is unknown
    (tmp_path / "default.yaml").write_text("name: default\n", encoding="utf-8")
    problems = _problems(tmp_path, {})
    assert problems[0].startswith(f"{tmp_path}/team.yaml:3:19 entities[0].type: unknown entity type")


def test_output_screen_with_nothing_to_screen(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"default.yaml": "name: default\noutput:\n  pii:\n    enabled: true\n"})
    assert problems == [f"{tmp_path}/default.yaml:4:14 output.pii: enabled with no entities: it would screen "
                        "nothing; list output.pii.entities or set enabled: false"]
    (tmp_path / "default.yaml").write_text("name: default\noutput: {pii: {enabled: false}}\n", encoding="utf-8")
    assert load_policy_dir(tmp_path)
    (tmp_path / "default.yaml").write_text("name: default\noutput: {pii: {action: allow, entities: []}}\n",
                                           encoding="utf-8")
    assert load_policy_dir(tmp_path)  # allow: the screen is off by its action


def test_safe_rendering_quotes_no_value(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("name: default\nentities: [{type: Quorvexa_Zyndrith}]\n",
                                           encoding="utf-8")
    with pytest.raises(PolicyFileError) as ei:
        load_policy_dir(tmp_path)
    (safe,) = ei.value.safe_problems()
    assert safe.startswith("default.yaml:2:19 entities[0].type: unknown entity type")
    assert "Quorvexa" not in safe and str(tmp_path) not in safe


def test_registry_is_the_real_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recognizer added to trustproxy's recognizers shows up with no list to update; every
    Presidio predefined type for the language is there, less those trustproxy replaces."""
    from presidio_analyzer import Pattern, PatternRecognizer

    import trustproxy.pii.recognizers as recs

    names = registry.known_entity_names("en")
    assert {"PERSON", "LOCATION", "US_ITIN", "UK_NHS", "CREDIT_CARD", "STREET_ADDRESS", "AWS_ACCESS_KEY",
            "MEDICAL_RECORD_NUMBER"} <= names
    original = recs.build_recognizers

    def with_extra(language: str = "en") -> list[Any]:
        return [*original(language), PatternRecognizer(supported_entity="ZZ_BADGE_NUMBER", name="Badge",
                                                       patterns=[Pattern("badge", r"\bBDG-\d{6}\b", 0.8)],
                                                       supported_language=language)]

    monkeypatch.setattr(recs, "build_recognizers", with_extra)
    registry.known_entity_names.cache_clear()
    try:
        assert "ZZ_BADGE_NUMBER" in registry.known_entity_names("en")
    finally:
        monkeypatch.undo()
        registry.known_entity_names.cache_clear()
    assert "ZZ_BADGE_NUMBER" not in registry.known_entity_names("en")


def test_presidio_language_warnings_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    registry.known_entity_names.cache_clear()
    with caplog.at_level(logging.WARNING):
        registry.known_entity_names("en")
    assert "language is not supported" not in caplog.text


def test_schema_lists_the_valid_names() -> None:
    schema = policy_json_schema()
    defs = schema["$defs"]
    enum = defs["EntityType"]["anyOf"][0]["enum"]
    assert enum == sorted(registry.known_entity_names("en"))
    ref = {"$ref": "#/$defs/EntityType"}
    assert defs["EntityRule"]["properties"]["type"]["$ref"] == ref["$ref"]
    assert defs["OutputPIIConfig"]["properties"]["entities"]["items"] == ref
    assert defs["RetentionConfig"]["properties"]["require_zero_data_retention_for"]["items"] == ref
    assert defs["GoldenExpect"]["properties"]["detected"]["anyOf"][0]["items"] == ref
    assert defs["GoldenExpect"]["properties"]["actions"]["anyOf"][0]["propertyNames"] == ref
    shipped = json.loads((ROOT / "policies" / "policy.schema.json").read_text(encoding="utf-8"))
    assert shipped == schema, "run: trustproxy policy schema"


def test_schema_accepts_shipped_policies_and_rejects_lowercase_types() -> None:
    import jsonschema
    import yaml

    schema = policy_json_schema()
    for path in sorted((ROOT / "policies").rglob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "entities": [{"type": "email address"}]}, schema)
