"""Switch off every phone-home of the libraries we use, before they are imported.

- litellm fetches its model-cost map from GitHub at import unless LITELLM_LOCAL_MODEL_COST_MAP.
- tldextract (used by Presidio's URL/email recognizers) downloads the public-suffix list unless
  told to use the snapshot it ships (``suffix_list_urls=()``); we patch its default extractor.
- Hugging Face hub / transformers (detoxify) must never download at run time.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
}
for _k, _v in _DEFAULTS.items():
    os.environ.setdefault(_k, _v)


def patch_tldextract() -> None:
    """Make tldextract use its bundled suffix-list snapshot and never fetch one."""
    try:
        import tldextract
        import tldextract.tldextract as _tx
    except ImportError:  # pragma: no cover
        return
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    _tx.TLD_EXTRACTOR = offline
    tldextract.extract = offline  # type: ignore[assignment]
    _tx.extract = offline  # type: ignore[assignment]
    # Presidio imports ``tldextract`` and calls ``tldextract.extract`` at call time.


# ---- torch and transformers: imported only by the detoxify scorer -------------------------------
# thinc (spaCy) imports torch at import time when it is installed, and Presidio imports
# transformers for its Hugging Face pipe: ~5 s of start-up and ~320 MB of RSS per worker that
# the default policies (spaCy NER + the offline toxicity scorer) never use. Until something asks
# for them (``allow_torch``: the detoxify scorer, ``trustproxy models pull``), importing them
# raises ImportError, which both libraries handle ("not installed"). TRUSTPROXY_IMPORT_TORCH=1
# turns the gate off.
_DEFERRED = ("torch", "transformers")


class _DeferredImports:
    """A meta-path finder that refuses ``torch`` / ``transformers`` while the gate is closed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in _DEFERRED:
            raise ModuleNotFoundError(
                f"{name} is deferred by trustproxy until a detoxify scorer needs it "
                "(set TRUSTPROXY_IMPORT_TORCH=1 to import it eagerly)", name=name)
        return None


_GATE = _DeferredImports()


def _close_gate() -> None:
    import sys

    if os.environ.get("TRUSTPROXY_IMPORT_TORCH", "").lower() in ("1", "true", "yes"):
        return
    if any(m in sys.modules for m in _DEFERRED):  # already imported by the host program
        return
    if _GATE not in sys.meta_path:
        sys.meta_path.insert(0, _GATE)


def allow_torch() -> None:
    """Open the gate (idempotent): the next ``import torch`` / ``import transformers`` loads them."""
    import sys

    while _GATE in sys.meta_path:
        sys.meta_path.remove(_GATE)


def torch_deferred() -> bool:
    import sys

    return _GATE in sys.meta_path


_close_gate()
