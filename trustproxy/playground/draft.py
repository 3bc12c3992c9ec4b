"""A policy draft from the page: validated exactly as ``trustproxy policy check`` validates a
file (the same loader, the same ``file:line:col field: message`` lines), composed on the live
policies it may extend, and never swapped in.

The loader reads files, so the draft is written, for the length of one validation, to a
private temporary directory (mode 0700, removed at once) beside copies of the live policies
the caller may extend (their resolved content, so ``extends`` composes on what is live).
Paths in messages are shown as ``<name>.yaml``. When the loader grows a text entry point,
:func:`load_draft` is the one place to change.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trustproxy.errors import PolicyError
from trustproxy.policy.loader import LoadedPolicy, load_loaded_file
from trustproxy.policy.schema import EntityAction, Policy

MAX_DRAFT_CHARS = 256 * 1024
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class DraftCheck:
    """``loaded`` is None when the draft has problems (lines as ``policy check`` prints)."""

    name: str
    loaded: LoadedPolicy | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.loaded is not None and not self.problems


def _parent_yaml(policy: Policy) -> str:
    data = policy.model_dump(mode="json")
    data.pop("extends", None)
    data.pop("tests", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_draft(text: str, name: str, parents: Mapping[str, LoadedPolicy]) -> DraftCheck:
    """Validate ``text`` as the file ``<name>.yaml``; ``extends`` may name any of ``parents``."""
    if not _FILE_NAME.match(name):
        return DraftCheck(name="draft", loaded=None, problems=["draft: the policy name must be 1-64 letters, "
                                                               "digits and _ . - (it is the file name)"])
    shown = f"{name}.yaml"
    if len(text) > MAX_DRAFT_CHARS:
        return DraftCheck(name, None, [f"{shown}: the draft is longer than {MAX_DRAFT_CHARS} characters"])
    with tempfile.TemporaryDirectory(prefix="trustproxy-draft-") as tmp:
        root = Path(tmp)
        drafts = root / "d"  # the loader also looks one directory up: there, and only there, are the parents
        drafts.mkdir()
        for pname, lp in parents.items():
            if pname != name and _FILE_NAME.match(pname):
                (root / f"{pname}.yaml").write_text(_parent_yaml(lp.policy), encoding="utf-8")
        path = drafts / shown
        path.write_text(text, encoding="utf-8")
        try:
            loaded = load_loaded_file(path)
        except PolicyError as exc:
            return DraftCheck(name, None, [_shown(p, tmp) for p in exc.problems])
    return DraftCheck(name, loaded, [])


def _shown(problem: str, tmp: str) -> str:
    return (problem.replace(os.path.join(tmp, "d") + os.sep, "").replace(tmp + os.sep, "")
            .replace(os.path.join(tmp, "d"), "the draft folder").replace(tmp, "the live policies"))


def runtime_problems(check: DraftCheck, live: Mapping[str, LoadedPolicy], *, hash_key: bool) -> list[str]:
    """What this running proxy cannot dry-run without loading something new (requests never
    load models): a spaCy model or a toxicity scorer no live policy uses, or the hash action
    without a hash key."""
    if check.loaded is None:
        return []
    p = check.loaded.policy
    shown = f"{check.name}.yaml"
    out = []
    models = {(lp.policy.nlp_model, lp.policy.language) for lp in live.values()}
    if (p.nlp_model, p.language) not in models:
        known = ", ".join(sorted(f"{m}/{lang}" for m, lang in models))
        out.append(f"{shown} nlp_model: {p.nlp_model}/{p.language} is not loaded in this proxy (loaded: {known}); "
                   "try this draft with `trustproxy policy explain`")
    tox = p.output.toxicity
    if tox.enabled or tox.screen_prompts:
        keys = {_scorer_key(lp.policy) for lp in live.values()
                if lp.policy.output.toxicity.enabled or lp.policy.output.toxicity.screen_prompts}
        if _scorer_key(p) not in keys:
            out.append(f"{shown} output.toxicity: this scorer is not loaded in this proxy; "
                       "try this draft with `trustproxy policy explain`")
    if not hash_key and any(r.action == EntityAction.hash for r in p.entities):
        out.append(f"{shown} entities: the hash action needs a hash key (TRUSTPROXY_HASH_KEY), "
                   "which this proxy does not have")
    return out


def _scorer_key(policy: Policy) -> str:
    return policy.output.toxicity.model_dump_json(include={"scorer", "detoxify_variant", "checkpoint",
                                                          "huggingface_config_path", "fallback"})
