"""Load policy files: YAML with line numbers, strict validation, ``extends`` composition.

Every problem in every file is collected and raised together as one ``PolicyError`` whose
lines read ``policies/acme.yaml:14:13 entities[3].action: 'mask_all' is not one of ...``.

Merge rules for ``extends: parent`` (the child is applied on top of the fully resolved parent):

- a field the child sets replaces the parent's value; a field it leaves out is inherited;
- nested sections (``output``, ``output.toxicity``, ``streaming``, ``retention``) merge field
  by field, and ``output.toxicity.categories`` merges by category name;
- ``entities`` merge by ``type``: the child's entry updates that type's rule field by field
  (so ``{type: CREDIT_CARD, action: redact}`` keeps the parent's threshold); new types are
  appended. To stop handling a parent's type, give it ``action: allow``;
- ``custom_recognizers`` are concatenated; a child recognizer with the same ``name`` replaces
  the parent's;
- lists of words (``allow_list``, ``output.pii.entities``,
  ``retention.require_zero_data_retention_for``) are concatenated without duplicates;
- ``name``, ``description`` and ``tests`` are never inherited (a parent's golden examples need
  not hold once a child changes the rules).

Entity type names (``entities[].type``, ``output.pii.entities``,
``retention.require_zero_data_retention_for``, golden ``expect.detected`` / ``expect.actions``)
must be types the detector can report (:mod:`trustproxy.policy.registry`) or types of the
resolved policy's ``custom_recognizers``; a typo gets a did-you-mean. Turning
``output.pii.enabled`` on with no ``output.pii.entities`` is an error (it would screen nothing).

Each file must be valid on its own before it is merged (e.g. a toxicity category a child
changes must carry its ``threshold``). ``load_policy_dir`` resolves ``extends`` within the
directory only; ``load_policy_file`` also looks one directory up.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex as _rx  # the engine the detector uses (Presidio's dependency)
import yaml
from pydantic import ValidationError

from trustproxy.errors import PolicyError
from trustproxy.policy.errors import (Loc, MarkIndex, PolicyFileError, Problem, format_loc, sort_problems,
                                      suggest, validation_problems)
from trustproxy.policy.schema import Policy

SUFFIXES = (".yaml", ".yml")
_RX_FLAGS = _rx.DOTALL | _rx.MULTILINE  # as trustproxy.pii.recognizers


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with ``extends`` resolved. ``chain`` runs from this policy to its root
    (``["pci", "default"]``); ``version`` is a short sha256 of the resolved content."""

    policy: Policy
    version: str
    path: str
    chain: list[str] = field(default_factory=list)
    # (shown path, {field location: (line, col)}) of each file of the chain, this policy's own
    # first: where a field is set (positions only: a YAML mark would keep the whole file text)
    sources: tuple[tuple[str, dict[Loc, tuple[int, int]]], ...] = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.policy.name

    def locate(self, loc: Loc) -> tuple[str, int | None, int | None]:
        """The file, line and column that set the field at ``loc``: the first file of the chain
        that writes it, else this policy's own file (a default applies)."""
        for shown, positions in self.sources:
            if loc in positions:
                line, col = positions[loc]
                return shown, line, col
        return self.path, None, None

    def problem(self, loc: Loc, message: str, safe_message: str | None = None) -> Problem:
        """A ``Problem`` at the place that sets ``loc``."""
        file, line, col = self.locate(loc)
        return Problem(file, line, col, format_loc(loc), message, safe_message)


def _positions(marks: MarkIndex) -> dict[Loc, tuple[int, int]]:
    return {loc: (m.line + 1, m.column + 1) for loc, m in marks.values.items()}


@dataclass
class _Raw:
    """One parsed (not yet composed) policy file."""

    name: str
    path: str
    marks: MarkIndex
    data: dict[str, Any] | None = None
    policy: Policy | None = None
    problems: list[Problem] = field(default_factory=list)


def policy_version(policy: Policy) -> str:
    """12 hex digits of sha256 over the canonical JSON of a resolved policy."""
    blob = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def policy_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The policy files directly in ``directory`` (hidden entries such as ``..data`` skipped)."""
    d = Path(directory)
    return sorted(p for p in d.iterdir()
                  if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file())


# ---- parsing ---------------------------------------------------------------------------------

def _index(node: yaml.Node, loc: tuple, marks: MarkIndex, dups: list[tuple[tuple, Any]]) -> None:
    marks.values[loc] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark)
            kl = loc + (key,)
            if key in seen:
                dups.append((kl, k.start_mark))
            seen.add(key)
            marks.keys[kl] = k.start_mark
            _index(v, kl, marks, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, loc + (i,), marks, dups)


def _parse(path: Path, shown: str) -> _Raw:
    raw = _Raw(name=path.stem, path=shown, marks=MarkIndex())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raw.problems.append(Problem(shown, None, None, "", f"cannot read the file ({type(exc).__name__})"))
        return raw
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raw.problems.append(Problem(shown, None, None, "", "the file is empty"))
            return raw
        dups: list[tuple[tuple, Any]] = []
        _index(node, (), raw.marks, dups)
        for loc, mark in dups:
            raw.problems.append(Problem(shown, mark.line + 1, mark.column + 1, format_loc(loc),
                                        "this key appears twice in the same section"))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raw.problems.append(Problem(shown, line, col, "", f"YAML syntax error: {what}", "YAML syntax error"))
        return raw
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raw.problems.append(Problem(shown, None, None, "", f"YAML error: {type(exc).__name__}"))
        return raw
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raw.problems.append(Problem(shown, 1, 1, "", "the file must be a mapping of fields (name:, entities:, ...)"))
        return raw
    raw.data = data
    problems = _semantic_problems(raw, data)
    try:
        raw.policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, Policy, shown, raw.marks))
    raw.problems.extend(sort_problems(problems))
    return raw


def _items(data: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [(i, x) for i, x in enumerate(value) if isinstance(x, dict)]


def _semantic_problems(raw: _Raw, data: dict[str, Any]) -> list[Problem]:
    """Checks the schema alone cannot express; they read the raw data, so they run (and
    report) even when the schema found other problems in the same file."""
    out: list[Problem] = []

    def at(loc: tuple, message: str, safe: str | None = None) -> None:
        line, col = raw.marks.find(loc)
        out.append(Problem(raw.path, line, col, format_loc(loc), message, safe))

    name, extends = data.get("name"), data.get("extends")
    if isinstance(name, str) and name != raw.name:
        at(("name",), f"must equal the file name without .yaml ({raw.name!r}), got {name!r}",
           "must equal the file name without .yaml")
    if isinstance(extends, str) and extends == raw.name:
        at(("extends",), "a policy cannot extend itself")
    first: dict[str, int] = {}
    for i, rule in _items(data, "entities"):
        t = rule.get("type")
        if not isinstance(t, str):
            continue
        if t in first:
            line, _ = raw.marks.find(("entities", first[t]))
            at(("entities", i, "type"), f"duplicate entity type {t!r} (already listed at line {line})",
               f"duplicate entity type (already listed at line {line})")
        else:
            first[t] = i
    names: set[str] = set()
    for i, rec in _items(data, "custom_recognizers"):
        rname, regex, deny = rec.get("name"), rec.get("regex"), rec.get("deny_list")
        if isinstance(rname, str):
            if rname in names:
                at(("custom_recognizers", i, "name"), f"duplicate recognizer name {rname!r}",
                   "duplicate recognizer name")
            names.add(rname)
        if regex is None and not deny:
            at(("custom_recognizers", i), "needs a `regex` or a non-empty `deny_list`")
        if isinstance(regex, str):
            try:
                compiled = _rx.compile(regex, _RX_FLAGS)
            except _rx.error as exc:
                at(("custom_recognizers", i, "regex"),
                   f"invalid regular expression: {exc.msg} at position {exc.pos}")
            else:
                if compiled.fullmatch(""):
                    at(("custom_recognizers", i, "regex"), "the regular expression matches empty text")
        if rec.get("checksum", "none") != "none" and regex is None:
            at(("custom_recognizers", i, "checksum"), "a checksum applies to `regex` matches only")
    return out


# ---- entity type names -----------------------------------------------------------------------

def _name_locs(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Every place in one file's raw data that names an entity type, and the name."""
    out: list[tuple[Loc, str]] = []
    for i, rule in _items(data, "entities"):
        if isinstance(rule.get("type"), str):
            out.append((("entities", i, "type"), rule["type"]))
    for path in (("output", "pii", "entities"), ("retention", "require_zero_data_retention_for")):
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        for j, t in enumerate(node if isinstance(node, list) else []):
            if isinstance(t, str):
                out.append((path + (j,), t))
    for k, test in _items(data, "tests"):
        expect = test.get("expect")
        if not isinstance(expect, dict):
            continue
        for j, t in enumerate(expect.get("detected") or []):
            if isinstance(t, str):
                out.append((("tests", k, "expect", "detected", j), t))
        actions = expect.get("actions")
        for t in actions if isinstance(actions, dict) else {}:
            if isinstance(t, str):
                out.append((("tests", k, "expect", "actions", t), t))
    return out


def valid_entity_names(policy: Policy) -> frozenset[str]:
    """What ``policy`` may name: the detector's registry for its language, plus its own
    custom recognizers' types."""
    from trustproxy.policy.registry import known_entity_names

    # the main language and every extra one (`languages`: language code -> its NER model)
    languages = [policy.language, *(getattr(policy, "languages", None) or {})]
    names = frozenset().union(*(known_entity_names(str(lang)) for lang in languages))
    return names | {c.type for c in policy.custom_recognizers}


def _raw_valid_names(data: dict[str, Any]) -> frozenset[str]:
    """:func:`valid_entity_names` from a file that did not validate (no ``extends``)."""
    from trustproxy.policy.registry import known_entity_names

    lang = data.get("language") if isinstance(data.get("language"), str) else "en"
    custom = {r["type"] for _, r in _items(data, "custom_recognizers") if isinstance(r.get("type"), str)}
    return known_entity_names(str(lang)) | custom


def name_problems(path: str, marks: MarkIndex, data: dict[str, Any], resolved: Policy | None) -> list[Problem]:
    """Unknown entity types in one file (checked against the *resolved* policy, so a parent's
    custom recognizers count; ``None``: the file alone, when it did not validate), and an
    output screen switched on with nothing to screen."""
    out: list[Problem] = []
    locs = _name_locs(data)
    if locs:
        valid = valid_entity_names(resolved) if resolved is not None else _raw_valid_names(data)
        choices = sorted(valid)
        for loc, name in locs:
            if name in valid:
                continue
            hint = suggest(name, choices) or suggest(name.upper(), choices)
            tail = f" (did you mean {hint!r}?)" if hint else \
                " (not reported by any recognizer; add a custom_recognizer for it, or see docs/policies.md)"
            line, col = marks.find(loc, key=loc[-1] == name)
            out.append(Problem(path, line, col, format_loc(loc), f"unknown entity type {name!r}{tail}",
                               f"unknown entity type{tail}"))
    pii_raw = data.get("output", {}).get("pii") if isinstance(data.get("output"), dict) else None
    if resolved is not None and isinstance(pii_raw, dict) and ("enabled" in pii_raw or "entities" in pii_raw):
        cfg = resolved.output.pii
        if cfg.enabled and not cfg.entities and cfg.action != "allow":
            where: Loc = ("output", "pii", "enabled" if "enabled" in pii_raw else "entities")
            line, col = marks.find(where)
            out.append(Problem(path, line, col, "output.pii",
                               "enabled with no entities: it would screen nothing; list "
                               "output.pii.entities or set enabled: false"))
    return out


# ---- composition -----------------------------------------------------------------------------

def _union(base: list[Any], extra: list[Any]) -> list[Any]:
    return base + [x for x in extra if x not in base]


def _merge_by(base: list[dict], extra: list[dict], key: str, *, deep: bool) -> list[dict]:
    out = [dict(x) for x in base]
    where = {x[key]: i for i, x in enumerate(out)}
    for item in extra:
        if item[key] in where:
            i = where[item[key]]
            out[i] = {**out[i], **item} if deep else dict(item)
        else:
            where[item[key]] = len(out)
            out.append(dict(item))
    return out


def _merge(base: dict[str, Any], over: dict[str, Any], path: tuple = ()) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        p = path + (k,)
        if p == ("entities",):
            out[k] = _merge_by(base.get(k, []), v, "type", deep=True)
        elif p == ("custom_recognizers",):
            out[k] = _merge_by(base.get(k, []), v, "name", deep=False)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            out[k] = _merge(base[k], v, p)
        elif isinstance(v, list) and isinstance(base.get(k), list) and all(isinstance(x, str) for x in v):
            out[k] = _union(base[k], v)
        else:
            out[k] = v
    return out


def compose(parent: Policy, child: Policy) -> Policy:
    """``child`` applied on top of ``parent`` by the merge rules in the module docstring."""
    base = parent.model_dump(mode="json")
    over = child.model_dump(mode="json", exclude_unset=True)
    merged = _merge(base, over)
    merged["name"] = child.name
    merged["description"] = child.description
    merged["extends"] = child.extends
    merged["tests"] = over.get("tests", [])
    return Policy.model_validate(merged)


class _Resolver:
    """Parses files on demand and resolves ``extends`` chains, collecting problems."""

    def __init__(self, directory: Path, shown_dir: str, *, parent_dir_too: bool = False) -> None:
        self.directory = directory
        self.shown_dir = shown_dir
        self.parent_dir_too = parent_dir_too
        self.raw: dict[str, _Raw] = {}
        self.done: dict[str, LoadedPolicy | None] = {}
        self.problems: list[Problem] = []
        self.cyclic: set[str] = set()

    def _path_of(self, name: str) -> tuple[Path, str] | None:
        """The file of policy ``name`` and how to show its path."""
        places = [(self.directory, self.shown_dir)]
        if self.parent_dir_too:
            places.append((self.directory.parent, os.path.normpath(os.path.join(self.shown_dir, ".."))))
        for d, shown in places:
            for suf in SUFFIXES:
                p = d / f"{name}{suf}"
                if p.is_file():
                    return p, os.path.join(shown, p.name)
        return None

    def parse(self, path: Path, shown: str) -> _Raw:
        if path.stem not in self.raw:
            r = _parse(path, shown)
            self.raw[path.stem] = r
            self.problems.extend(r.problems)
        return self.raw[path.stem]

    def resolve(self, name: str, stack: tuple[str, ...] = ()) -> LoadedPolicy | None:
        if name in self.done:
            return self.done[name]
        raw = self.raw[name]
        result: LoadedPolicy | None = None
        ext = raw.data.get("extends") if raw.data else None
        if raw.problems and isinstance(ext, str) and ext != name and ext not in self.raw \
                and self._path_of(ext) is None:
            self._missing_parent(raw, ext)
        if raw.policy is not None and not raw.problems:
            parent_name = raw.policy.extends
            if parent_name is None:
                result = LoadedPolicy(raw.policy, policy_version(raw.policy), raw.path, [name],
                                      ((raw.path, _positions(raw.marks)),))
            else:
                result = self._with_parent(raw, parent_name, stack + (name,))
        if result is not None and raw.data is not None:
            problems = name_problems(raw.path, raw.marks, raw.data, result.policy)
            if problems:
                self.problems.extend(problems)
                result = None
        elif raw.data is not None and raw.problems and ext is None:  # report every problem at once
            self.problems.extend(name_problems(raw.path, raw.marks, raw.data, None))
        self.done[name] = result
        return result

    def _missing_parent(self, raw: _Raw, parent_name: str) -> None:
        line, col = raw.marks.find(("extends",))
        known = sorted({f.stem for f in policy_files(self.directory)} - {raw.name})
        hint = suggest(parent_name, known)
        tail = f" (did you mean {hint!r}?)" if hint else ""
        self.problems.append(Problem(
            raw.path, line, col, "extends", f"no policy named {parent_name!r} in {self.shown_dir}{tail}",
            f"no such policy in this folder{tail}"))

    def _with_parent(self, raw: _Raw, parent_name: str, stack: tuple[str, ...]) -> LoadedPolicy | None:
        assert raw.policy is not None
        line, col = raw.marks.find(("extends",))

        def problem(message: str) -> None:
            self.problems.append(Problem(raw.path, line, col, "extends", message))

        if parent_name in stack:
            members = stack[stack.index(parent_name):]
            for i, member in enumerate(members):
                ring = members[i:] + members[:i]
                m = self.raw[member]
                mline, mcol = m.marks.find(("extends",))
                self.problems.append(Problem(m.path, mline, mcol, "extends",
                                             f"cyclic extends: {' -> '.join(ring + (member,))}"))
            self.cyclic.update(members)
            return None
        if parent_name not in self.raw:
            found = self._path_of(parent_name)
            if found is None:
                self._missing_parent(raw, parent_name)
                return None
            self.parse(*found)
        parent = self.resolve(parent_name, stack)
        if parent is None:
            if raw.name not in self.cyclic:
                problem(f"cannot build on {parent_name!r}: it has errors (listed for its file)")
            return None
        try:
            policy = compose(parent.policy, raw.policy)
        except ValidationError as exc:
            self.problems.extend(validation_problems(exc, Policy, raw.path, raw.marks))
            return None
        return LoadedPolicy(policy, policy_version(policy), raw.path, [raw.name, *parent.chain],
                            ((raw.path, _positions(raw.marks)), *parent.sources))


def _errors(problems: list[Problem]) -> PolicyFileError:
    return PolicyFileError(sort_problems(problems))


def load_dir_details(directory: str | os.PathLike[str]) -> tuple[dict[str, LoadedPolicy], list[Problem]]:
    """Every valid policy in ``directory`` and the (structured) problems of the others."""
    d = Path(directory)
    shown_dir = str(directory)
    if not d.is_dir():
        return {}, [Problem(shown_dir, None, None, "", "not a directory")]
    r = _Resolver(d, shown_dir)
    for p in policy_files(d):
        r.parse(p, os.path.join(shown_dir, p.name))
    loaded = {name: lp for name in list(r.raw) if (lp := r.resolve(name)) is not None}
    return dict(sorted(loaded.items())), _errors(r.problems).details


def load_dir_partial(directory: str | os.PathLike[str]) -> tuple[dict[str, LoadedPolicy], list[str]]:
    """Every valid policy in ``directory`` and the problems of the others (for `policy check`)."""
    loaded, problems = load_dir_details(directory)
    return loaded, PolicyFileError(problems).problems


def load_policy_dir(directory: str | os.PathLike[str]) -> dict[str, LoadedPolicy]:
    """All policies in ``directory`` (not its subfolders), resolved; ``PolicyFileError`` listing
    every problem if any file is invalid."""
    loaded, problems = load_dir_details(directory)
    if problems:
        raise PolicyFileError(problems)
    return loaded


def load_loaded_file(path: str | os.PathLike[str]) -> LoadedPolicy:
    """One file, with its ``extends`` chain read from the same directory or, failing that, the
    one above it (so ``policies/examples/acme.yaml`` can extend ``policies/default.yaml``)."""
    p = Path(path)
    shown = str(path)
    r = _Resolver(p.parent, os.path.dirname(shown) or ".", parent_dir_too=True)
    if not p.is_file():
        raise PolicyFileError([Problem(shown, None, None, "", "no such file")])
    r.parse(p, shown)
    lp = r.resolve(p.stem)
    if r.problems or lp is None:
        raise _errors(r.problems or [Problem(shown, None, None, "", "invalid policy")])
    return lp


def load_policy_file(path: str | os.PathLike[str]) -> Policy:
    """One policy file, ``extends`` resolved as in :func:`load_loaded_file`; ``PolicyError``
    if invalid."""
    return load_loaded_file(path).policy
