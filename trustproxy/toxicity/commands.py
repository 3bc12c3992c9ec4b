"""``trustproxy models pull`` (build time, needs network) and ``describe`` (for /readyz)."""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from trustproxy._offline import allow_torch
from trustproxy.policy.schema import ToxicityConfig
from trustproxy.toxicity.scorers import (
    DETOXIFY_BASE_MODELS, ScorerUnavailable, _Fallback, detoxify_checkpoint_file, load_scorer,
)
from trustproxy.toxicity.window import effective_categories, unscreened_categories

# Config and tokenizer files of the base models (no weights: detoxify's checkpoint has them).
BASE_MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                    "vocab.json", "merges.txt", "special_tokens_map.json", "sentencepiece.bpe.model",
                    "spiece.model"]
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@contextlib.contextmanager
def allow_downloads() -> Iterator[None]:
    """Lift the process-wide offline switches for the duration (pull only)."""
    from huggingface_hub import constants

    saved_env = {k: os.environ.pop(k, None) for k in _OFFLINE_VARS}
    saved_const = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_const
        for k, v in saved_env.items():
            if v is not None:
                os.environ[k] = v


def _download_checkpoint(url: str, target: Path, out: TextIO) -> None:
    allow_torch()
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    torch.hub.download_url_to_file(url, str(tmp), progress=out.isatty())
    tmp.replace(target)


def _download_base(repo_id: str, dest: str | None) -> str:
    from huggingface_hub import snapshot_download

    local_dir = str(Path(dest) / repo_id) if dest else None
    return snapshot_download(repo_id=repo_id, allow_patterns=BASE_MODEL_FILES, local_dir=local_dir)


def pull(variants: list[str], dest: str | None = None, *, out: TextIO | None = None) -> int:
    """Download detoxify checkpoints (detoxify's own URLs) into the torch hub cache, or ``dest``,
    and their base model's config/tokenizer files into the Hugging Face cache (and ``dest/<name>``
    when ``dest`` is set). Needs the network: meant for container builds. Returns an exit code."""
    allow_torch()
    from detoxify.detoxify import MODEL_URLS

    out = out or sys.stdout
    err = sys.stderr if out is sys.stdout else out
    variants = variants or ["original"]
    unknown = [v for v in variants if v not in MODEL_URLS]
    if unknown:
        print(f"error: unknown detoxify variant(s) {unknown}; known: {sorted(MODEL_URLS)}", file=err)
        return 2
    import torch

    ckpt_dir = Path(dest) if dest else Path(torch.hub.get_dir()) / "checkpoints"
    with allow_downloads():
        for v in variants:
            target = ckpt_dir / detoxify_checkpoint_file(v)
            base = DETOXIFY_BASE_MODELS[v]
            try:
                if target.is_file():
                    print(f"detoxify:{v}: checkpoint present at {target}", file=out)
                else:
                    print(f"detoxify:{v}: downloading checkpoint to {target}", file=out)
                    _download_checkpoint(MODEL_URLS[v], target, out)
                _download_base(base, None)  # detoxify resolves the base model by name: HF cache
                if dest:
                    cfg_dir = _download_base(base, dest)
                    print(f"detoxify:{v}: set checkpoint: {target} and huggingface_config_path: {cfg_dir}",
                          file=out)
            except (OSError, urllib.error.URLError, ConnectionError) as e:
                print(f"error: could not download detoxify:{v} ({type(e).__name__}); `models pull` needs "
                      "network access: run it in the container build or on a connected machine, "
                      "then copy the torch hub cache (or --dest) and the Hugging Face cache", file=err)
                return 1
            except Exception as e:  # huggingface_hub raises its own HTTP/offline errors
                print(f"error: could not fetch the files of {base} for detoxify:{v} ({type(e).__name__}); "
                      "`models pull` needs network access", file=err)
                return 1
    print("done", file=out)
    return 0


def describe(cfg: ToxicityConfig) -> dict[str, Any]:
    """What screens replies under ``cfg`` (for /readyz): scorer name, pattern set (version, date,
    hash, rule count) when the scorer uses one, categories, mode, quoted-speech choice. Loads the
    scorer (cached); if it cannot load, ``ready`` is False and ``error`` says why (paths only)."""
    info: dict[str, Any] = {"enabled": cfg.enabled, "requested": cfg.scorer, "mode": cfg.mode,
                            "window_sentences": cfg.window_sentences, "quoted_speech": cfg.quoted_speech}
    if not cfg.enabled:
        return info | {"ready": True, "scorer": None}
    try:
        scorer = load_scorer(cfg)
    except ScorerUnavailable as e:
        return info | {"ready": False, "scorer": None, "error": e.message}
    cats = effective_categories(cfg, scorer.categories)
    inner = scorer.inner if isinstance(scorer, _Fallback) else scorer
    patterns = getattr(inner, "patterns", None)
    return info | {
        "ready": True,
        "scorer": scorer.name,
        "patterns": patterns.describe() if patterns is not None else None,
        "fallback_active": isinstance(scorer, _Fallback),
        "categories": {c: {"threshold": t.threshold, "action": t.action} for c, t in cats.items()},
        "unscreened": unscreened_categories(cfg, scorer.categories),
    }
