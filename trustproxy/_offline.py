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
