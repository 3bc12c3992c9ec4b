"""Selection precedence and hot reload (plain files and a ConfigMap-style symlink swap)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

import trustproxy  # noqa: F401
from trustproxy.errors import PolicyError
from trustproxy.policy.loader import load_policy_dir
from trustproxy.policy.store import PolicyStore, select_policy

BASE = "name: default\nentities: [{type: PERSON}]\n"


def test_select_precedence(tmp_path: Path) -> None:
    for n in ("default", "tenant", "route"):
        (tmp_path / f"{n}.yaml").write_text(f"name: {n}\n")
    pols = load_policy_dir(tmp_path)
    assert select_policy(pols, tenant_policy="tenant", route_policy="route").name == "tenant"
    assert select_policy(pols, tenant_policy=None, route_policy="route").name == "route"
    assert select_policy(pols, tenant_policy=None, route_policy=None).name == "default"
    assert select_policy(pols, tenant_policy=None, route_policy=None, default="route").name == "route"
    with pytest.raises(PolicyError) as ei:
        select_policy(pols, tenant_policy="nope", route_policy="route")
    assert ei.value.problems == [
        "the tenant asks for policy 'nope', which is not loaded (loaded: default, route, tenant)"]


def test_start_up_refuses_invalid_or_missing(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("name: default\nthreshold: 2\n")
    with pytest.raises(PolicyError):
        PolicyStore(tmp_path)
    (tmp_path / "default.yaml").write_text(BASE)
    with pytest.raises(PolicyError) as ei:
        PolicyStore(tmp_path, required=["pci"])
    assert "required policy 'pci' is missing" in ei.value.problems[0]


def test_reload_and_invalid_edit_keeps_previous(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "default.yaml").write_text(BASE)
    calls: list[bool] = []
    store = PolicyStore(tmp_path, on_reload=calls.append)
    v1 = store.versions()["default"]
    assert store.status()["ok"] and not store.changed()

    (tmp_path / "pci.yaml").write_text("name: pci\nextends: default\n")
    assert store.changed() and store.reload() is True
    assert set(store.versions()) == {"default", "pci"}
    assert store.get("pci").chain == ["pci", "default"]

    secret_word = "Falcon-Secret"
    (tmp_path / "default.yaml").write_text(f"name: default\nentities: [{{type: PERSON, action: nuke}}]\n"
                                           f"allow_list: [{secret_word}]\n")
    with caplog.at_level(logging.WARNING, logger="trustproxy.policy"):
        assert store.reload() is False
    assert store.versions()["default"] == v1  # the previous set stays in force
    st = store.status()
    assert st["ok"] is False and st["policies"]["default"] == v1
    # file names, lines, fields: neither the directory's path nor any value from the file
    assert st["last_error"] == [
        "default.yaml:2:35 entities[0].action: not one of mask, redact, hash, synthetic, block, allow",
        "pci.yaml:2:10 extends: cannot build on 'default': it has errors (listed for its file)"]
    assert secret_word not in caplog.text and "nuke" not in caplog.text and str(tmp_path) not in caplog.text
    assert "policy problem: default.yaml:2:35 entities[0].action" in caplog.text
    assert "policy reload failed: 2 problem(s)" in caplog.text
    assert not store.changed()  # the failed content is remembered, not retried every tick

    (tmp_path / "default.yaml").write_text(BASE + "threshold: 0.6\n")
    assert store.reload() is True
    assert store.status()["ok"] and store.versions()["default"] != v1
    assert calls == [True, False, True]


def test_deleting_a_required_policy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(BASE)
    (tmp_path / "pci.yaml").write_text("name: pci\n")
    store = PolicyStore(tmp_path, required=["pci"])
    (tmp_path / "pci.yaml").unlink()
    assert store.reload() is False and "pci" in store.versions()


def test_select_via_store(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(BASE)
    (tmp_path / "hipaa.yaml").write_text("name: hipaa\n")
    store = PolicyStore(tmp_path)
    assert store.select(tenant_policy=None, route_policy="hipaa").name == "hipaa"
    assert store.select().name == "default"
    with pytest.raises(PolicyError):
        store.get("nope")


def _configmap(root: Path, version: str, files: dict[str, str]) -> None:
    """Lay out files like a Kubernetes ConfigMap volume: ..<ts>/ dir, ..data symlink, file links."""
    ts = root / f"..2026_{version}"
    ts.mkdir()
    for name, body in files.items():
        (ts / name).write_text(body)
        link = root / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    tmp = root / "..data_tmp"
    tmp.symlink_to(ts.name)
    os.replace(tmp, root / "..data")  # the atomic swap kubelet does


async def test_watch_notices_configmap_symlink_swap(tmp_path: Path) -> None:
    _configmap(tmp_path, "01", {"default.yaml": BASE})
    store = PolicyStore(tmp_path)
    v1 = store.versions()["default"]
    assert await store.check_once() is None  # nothing changed

    # same size, same names, same link targets: only the ..data target differs
    _configmap(tmp_path, "02", {"default.yaml": BASE.replace("PERSON", "US_SSN")})
    assert store.changed()
    task = asyncio.create_task(store.watch(interval=0.01))
    try:
        for _ in range(500):
            if store.versions()["default"] != v1:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert store.versions()["default"] != v1
    assert store.get("default").policy.entities[0].type == "US_SSN"


async def test_watch_keeps_previous_on_invalid_swap(tmp_path: Path) -> None:
    _configmap(tmp_path, "01", {"default.yaml": BASE})
    seen: list[bool] = []
    store = PolicyStore(tmp_path, on_reload=seen.append)
    _configmap(tmp_path, "02", {"default.yaml": "name: default\nentities: [\n"})
    assert await store.check_once() is False
    assert seen == [False] and store.status()["ok"] is False
    assert store.get("default").policy.entities[0].type == "PERSON"
    assert await store.check_once() is None
