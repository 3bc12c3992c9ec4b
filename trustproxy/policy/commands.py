"""``trustproxy policy check | test | explain | schema | init``: the compliance officer's tools.

Each returns a process exit code (0 ok, 1 problems or failures, 2 usage). Output goes to
stdout. These run on the officer's own machine with the officer's own examples, so ``explain``
and a failing ``provider_sees`` check may print the example text; the server never does.

    python -m trustproxy.policy.commands check policies/
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from trustproxy.errors import PolicyError
from trustproxy.policy.export import write_schema
from trustproxy.policy.golden import Inspect, findings, run_golden
from trustproxy.policy.loader import LoadedPolicy, load_dir_partial, load_loaded_file
from trustproxy.policy.store import select_policy

DEFAULT_SCHEMA_OUT = "policies/policy.schema.json"


def _inspector() -> Inspect:
    """The real dry run (imported late: it loads Presidio and spaCy)."""
    from trustproxy.pii.masker import inspect_text

    return inspect_text


def _load(paths: Sequence[str]) -> tuple[list[LoadedPolicy], list[str]]:
    """Every valid policy named by ``paths`` (files, or directories: their *.yaml) and the
    problems of the others."""
    loaded: list[LoadedPolicy] = []
    problems: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            ok, probs = load_dir_partial(path)
            loaded.extend(ok.values())
            problems.extend(probs)
        else:
            try:
                loaded.append(load_loaded_file(path))
            except PolicyError as exc:
                problems.extend(exc.problems)
    return loaded, problems


def check(paths: Sequence[str]) -> int:
    """Validate policy files: ``ok <name> <version>`` per valid one, one line per problem."""
    loaded, problems = _load(paths or ["policies"])
    for lp in loaded:
        print(f"ok {lp.name} {lp.version}" + (f" (extends {' -> '.join(lp.chain[1:])})" if lp.chain[1:] else ""))
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) found")
    return 1 if problems else 0


def test(paths: Sequence[str], *, inspect: Inspect | None = None) -> int:
    """Run the golden examples (``tests:``) of each policy: PASS/FAIL per example."""
    loaded, problems = _load(paths or ["policies"])
    for p in problems:
        print(p)
    run = inspect or _inspector()
    passed = failed = 0
    for lp in loaded:
        if not lp.policy.tests:
            print(f"---- {lp.name}: no examples (add some under `tests:`)")
        for r in run_golden(lp, run):
            label = f"{lp.name} #{r.index + 1} {r.name}"
            if r.passed:
                passed += 1
                print(f"PASS {label} [{', '.join(r.detected) or 'nothing detected'}]")
            else:
                failed += 1
                print(f"FAIL {label}")
                for f in r.failures:
                    print(f"     {f}")
    print(f"golden examples: {passed} ok, {failed} failing" + (f", {len(problems)} file problem(s)" if problems else ""))
    return 1 if failed or problems else 0


def explain(policy_name: str, text: str, policy_dir: str = "policies", *,
            inspect: Inspect | None = None, reply: str | None = None) -> int:
    """Dry run one input (``trustproxy.dryrun``, as ``/v1/trust/inspect`` and the playground):
    what is detected (type, score, action, where, which recognizer) and exactly what the
    provider would receive; with ``reply`` (a scripted provider reply), what the user would
    get back. ``text`` may be a whole request body (JSON). ``inspect`` replaces the detector
    (tests)."""
    loaded, problems = load_dir_partial(policy_dir)
    if policy_name not in loaded:
        for p in problems:
            print(p)
        try:
            select_policy(loaded, tenant_policy=policy_name, route_policy=None)
        except PolicyError as exc:
            print("\n".join(exc.problems))
        return 1
    lp = loaded[policy_name]
    run: Any = None
    if inspect is not None:
        result: Any = inspect(lp.policy, text)
    else:
        from trustproxy.dryrun import dry_run_sync

        run = dry_run_sync(lp.policy, lp.version, text, reply=reply, with_reply=reply is not None)
        result = run
    print(f"policy {lp.name} {lp.version}" + (f" (extends {' -> '.join(lp.chain[1:])})" if lp.chain[1:] else ""))
    rows = [(f.entity_type, f.score, f.action, f"chars {f.start}-{f.end}", "input", "") for f in findings(result)] \
        if run is None else [(d.entity_type, d.score, d.action,
                              f"chars {d.start}-{d.end}" if d.start is not None else "a value",
                              d.slot, d.recognizer) for d in run.detected]
    if not rows:
        print("detected: nothing")
    else:
        print("detected:")
        width = max(len(r[0]) for r in rows)
        for etype, score, action, where, slot, rec in rows:
            print(f"  {etype:<{width}}  score {score:.2f}  {action:<9}  {where}"
                  + (f" of {slot}" if slot != "input" else "") + (f"  ({rec})" if rec else ""))
    if result.blocked:
        print(f"blocked: yes ({', '.join(result.blocked_types)}); nothing is sent to the provider")
        return 0
    print("blocked: no")
    print("provider sees:")
    if run is not None and run.input.kind != "text":
        import json

        print(json.dumps(run.input.provider_doc, ensure_ascii=False, indent=2))
    else:
        print(result.provider_text)
    if run is not None and run.reply is not None:
        rep = run.reply
        print("user gets:" + (" (blocked by the toxicity screen)" if rep.blocked else ""))
        print(rep.user_text)
        for o in rep.output_pii:
            print(f"  output {o['entity_type']}: {o['action']} (score {o['score']:.2f})")
        if rep.toxicity is not None:
            scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(rep.toxicity["max_scores"].items()))
            print(f"  toxicity ({rep.toxicity['scorer']}): {rep.toxicity['decision']}" + (f"; {scores}" if scores else ""))
    return 0


def schema(out: str = DEFAULT_SCHEMA_OUT) -> int:
    """Write the policy JSON Schema (for editors) to ``out``."""
    write_schema(out)
    print(f"wrote {out}")
    return 0


def init(dest: str, *, force: bool = False) -> int:
    """Copy the packaged default policies (and their JSON Schema and examples) into ``dest``
    for editing; existing files are kept unless ``force``."""
    import shutil
    from pathlib import Path

    from trustproxy.settings import packaged_policy_dir

    src = packaged_policy_dir()
    out = Path(dest)
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    clash = [str(out / f.relative_to(src)) for f in files if (out / f.relative_to(src)).exists()]
    if clash and not force:
        for c in clash:
            print(f"exists: {c}")
        print(f"{len(clash)} file(s) already exist; nothing written (use --force to overwrite)")
        return 1
    for f in files:
        target = out / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        print(f"wrote {target}")
    print(f"edit them, check with `trustproxy policy check {dest}`, "
          f"serve with `trustproxy serve --policy-dir {dest}`")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trustproxy.policy.commands ...`` is ``trustproxy policy ...`` (one parser)."""
    from trustproxy.cli import main as cli_main

    return cli_main(["policy", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
