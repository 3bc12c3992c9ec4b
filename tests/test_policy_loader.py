"""Policy loading: exact problem lines (file:line:col field: message), extends merging."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import trustproxy  # noqa: F401
from trustproxy.errors import PolicyError
from trustproxy.policy.loader import (LoadedPolicy, compose, load_policy_dir, load_policy_file,
                                      policy_version)
from trustproxy.policy.schema import EntityAction, Policy


def write(d: Path, name: str, body: str) -> Path:
    p = d / f"{name}.yaml"
    p.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return p


def problems_of(path: Path | str, *, directory: bool = False) -> list[str]:
    with pytest.raises(PolicyError) as ei:
        (load_policy_dir if directory else load_policy_file)(path)
    return ei.value.problems


def test_typo_in_action_names_allowed_values(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        entities:
          - type: PERSON
          - type: US_SSN
            action: mask_all
        """)
    assert problems_of(p) == [
        f"{p}:5:13 entities[1].action: 'mask_all' is not one of mask, redact, hash, synthetic, block, allow"]


def test_unknown_key_suggests_the_field(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        entitys:
          - type: PERSON
        output:
          toxicity:
            categories:
              insult: {threshold: 0.5, acton: block}
        """)
    assert problems_of(p) == [
        f"{p}:2:1 entitys: unknown field 'entitys' (did you mean 'entities'?)",
        f"{p}:7:32 output.toxicity.categories.insult.acton: unknown field 'acton' (did you mean 'action'?)",
    ]


def test_unknown_key_without_close_match_lists_allowed(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        streaming: {zzz: 1}
        """)
    assert problems_of(p) == [
        f"{p}:2:13 streaming.zzz: unknown field 'zzz' (allowed: max_hold_back_chars)"]


def test_bad_yaml_has_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        entities:
          - type: PERSON
           action: mask
        """)
    [problem] = problems_of(p)
    assert problem == (f"{p}:4:4: YAML syntax error: while parsing a block collection "
                       "expected <block end>, but found '<block mapping start>'")


def test_bad_regex_and_missing_pattern(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        custom_recognizers:
          - name: ticket
            type: TICKET
            regex: "TCK-(\\\\d+"
          - name: nothing
            type: NOTHING
        """)
    assert problems_of(p) == [
        f"{p}:5:12 custom_recognizers[0].regex: invalid regular expression: "
        "missing ) at position 8",
        f"{p}:6:5 custom_recognizers[1]: needs a `regex` or a non-empty `deny_list`",
    ]


def test_all_problems_are_collected_in_line_order(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: other
        threshold: 1.5
        entities:
          - {type: US_SSN, action: block}
          - {type: US_SSN, action: nope}
        tests:
          - expect: {blocked: maybe}
        """)
    assert problems_of(p) == [
        f"{p}:1:7 name: must equal the file name without .yaml ('acme'), got 'other'",
        f"{p}:2:12 threshold: must be at most 1.0, got 1.5",
        f"{p}:5:12 entities[1].type: duplicate entity type 'US_SSN' (already listed at line 4)",
        f"{p}:5:28 entities[1].action: 'nope' is not one of mask, redact, hash, synthetic, block, allow",
        f"{p}:7:5 tests[0].text: required field is missing",
        f"{p}:7:23 tests[0].expect.blocked: must be true or false, got 'maybe'",
    ]


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    p = write(tmp_path, "acme", """
        name: acme
        threshold: 0.4
        threshold: 0.6
        """)
    assert problems_of(p) == [f"{p}:3:1 threshold: this key appears twice in the same section"]


def test_cyclic_extends(tmp_path: Path) -> None:
    write(tmp_path, "a", "name: a\nextends: b\n")
    write(tmp_path, "b", "name: b\nextends: a\n")
    assert problems_of(tmp_path, directory=True) == [
        f"{tmp_path}/a.yaml:2:10 extends: cyclic extends: a -> b -> a",
        f"{tmp_path}/b.yaml:2:10 extends: cyclic extends: b -> a -> b",
    ]


def test_missing_extends_suggests(tmp_path: Path) -> None:
    write(tmp_path, "default", "name: default\n")
    write(tmp_path, "acme", "name: acme\nextends: defalt\n")
    write(tmp_path, "child", "name: child\nextends: acme\n")
    assert problems_of(tmp_path, directory=True) == [
        f"{tmp_path}/acme.yaml:2:10 extends: no policy named 'defalt' in {tmp_path} (did you mean 'default'?)",
        f"{tmp_path}/child.yaml:2:10 extends: cannot build on 'acme': it has errors (listed for its file)",
    ]


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    write(tmp_path, "empty", "# nothing\n")
    write(tmp_path, "list", "- a\n- b\n")
    assert problems_of(tmp_path, directory=True) == [
        f"{tmp_path}/empty.yaml: the file is empty",
        f"{tmp_path}/list.yaml:1:1: the file must be a mapping of fields (name:, entities:, ...)",
    ]


def test_extends_merge_rules(tmp_path: Path) -> None:
    write(tmp_path, "base", """
        name: base
        description: the base
        threshold: 0.4
        entities:
          - {type: PERSON, threshold: 0.8}
          - {type: CREDIT_CARD}
        custom_recognizers:
          - {name: ticket, type: TICKET, regex: "TCK-\\\\d+"}
          - {name: codename, type: CODENAME, deny_list: [Falcon]}
        allow_list: [Acme]
        output:
          pii: {entities: [EMAIL_ADDRESS], action: redact}
          toxicity: {mode: fast, categories: {insult: {threshold: 0.7}}}
        tests:
          - {text: "hello", expect: {detected: []}}
        """)
    write(tmp_path, "mid", """
        name: mid
        extends: base
        entities:
          - {type: CREDIT_CARD, action: redact}
          - {type: US_SSN, action: block}
        custom_recognizers:
          - {name: codename, type: CODENAME, deny_list: [Osprey]}
        allow_list: [Acme, Acme Corp]
        output:
          pii: {entities: [CREDIT_CARD, EMAIL_ADDRESS]}
          toxicity: {categories: {insult: {threshold: 0.6, action: flag}, threat: {threshold: 0.5}}}
        """)
    write(tmp_path, "leaf", """
        name: leaf
        extends: mid
        entities:
          - {type: PERSON, action: allow}
        """)
    loaded = load_policy_dir(tmp_path)
    leaf = loaded["leaf"]
    assert isinstance(leaf, LoadedPolicy)
    assert leaf.chain == ["leaf", "mid", "base"]
    assert leaf.path == f"{tmp_path}/leaf.yaml"
    pol = leaf.policy
    assert pol.name == "leaf" and pol.extends == "mid" and pol.description == ""
    assert pol.threshold == 0.4
    assert [(e.type, e.action, e.threshold) for e in pol.entities] == [
        ("PERSON", EntityAction.allow, 0.8),       # updated field by field
        ("CREDIT_CARD", EntityAction.redact, None),
        ("US_SSN", EntityAction.block, None),
    ]
    assert [(c.name, c.deny_list) for c in pol.custom_recognizers] == [
        ("ticket", None), ("codename", ["Osprey"])]
    assert pol.allow_list == ["Acme", "Acme Corp"]
    assert pol.output.pii.entities == ["EMAIL_ADDRESS", "CREDIT_CARD"]
    assert pol.output.pii.action == "redact"
    assert pol.output.toxicity.mode == "fast"
    cats = pol.output.toxicity.categories
    assert (cats["insult"].threshold, cats["insult"].action) == (0.6, "flag")
    assert cats["threat"].threshold == 0.5
    assert pol.tests == [] and len(loaded["base"].policy.tests) == 1  # tests are not inherited
    assert len(leaf.version) == 12 and leaf.version == policy_version(pol)
    assert load_policy_file(tmp_path / "leaf.yaml") == pol


def test_version_is_of_resolved_content(tmp_path: Path) -> None:
    write(tmp_path, "base", "name: base\nentities: [{type: PERSON}]\n")
    write(tmp_path, "child", "# a comment\nname: child\nextends: base\n")
    v1 = load_policy_dir(tmp_path)["child"].version
    write(tmp_path, "child", "# another comment\nname: child\nextends: base\n")
    assert load_policy_dir(tmp_path)["child"].version == v1  # comments do not change it
    write(tmp_path, "base", "name: base\nentities: [{type: PERSON, action: redact}]\n")
    assert load_policy_dir(tmp_path)["child"].version != v1  # a parent's change does


def test_compose_direct() -> None:
    parent = Policy(name="p", entities=[{"type": "PERSON"}])  # type: ignore[list-item]
    child = Policy.model_validate({"name": "c", "extends": "p", "threshold": 0.9})
    out = compose(parent, child)
    assert out.threshold == 0.9 and [e.type for e in out.entities] == ["PERSON"]


def test_hidden_entries_and_subfolders_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "default", "name: default\n")
    (tmp_path / "examples").mkdir()
    write(tmp_path / "examples", "broken", "name: [\n")
    (tmp_path / ".hidden.yaml").write_text("name: [\n")
    assert list(load_policy_dir(tmp_path)) == ["default"]
