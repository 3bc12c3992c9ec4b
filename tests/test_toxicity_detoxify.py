"""The real detoxify loading path, on a tiny BERT checkpoint built here (no download), and the
fallback / unavailable rules of ``load_scorer``; ``models pull`` without network."""

from __future__ import annotations

import io
import os
import urllib.error
from pathlib import Path

import pytest

import trustproxy  # noqa: F401  (offline env first)
from trustproxy.policy.schema import ToxicityConfig
from trustproxy.toxicity import CATEGORIES, DetoxifyScorer, ScorerUnavailable, load_scorer
from trustproxy.toxicity import commands, scorers

trustproxy._offline.allow_torch()  # what the detoxify scorer does before it imports torch
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"you are a an the idiot stupid nice day have good kill i will hate".split(), *"abcdefghijklmnopqrstuvwxyz.,!?"]
# how detoxify's original checkpoint names its classes (load_checkpoint renames toxic -> toxicity ...)
ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def build_tiny_checkpoint(root: Path, classes: list[str] = ORIGINAL_CLASSES) -> tuple[Path, Path]:
    """A tiny BERT saved as a local HF folder, and a checkpoint shaped like detoxify's: ``config``
    (arch.args for ``get_model_and_tokenizer``, dataset.args.classes) + ``state_dict``."""
    base = root / "tiny-bert"
    base.mkdir(parents=True, exist_ok=True)
    (base / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=64, num_labels=len(classes),
                                     initializer_range=0.5)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    config.save_pretrained(base)
    transformers.BertTokenizer(vocab_file=str(base / "vocab.txt"), do_lower_case=True).save_pretrained(base)
    ckpt = {
        "config": {
            "arch": {"args": {"model_type": str(base), "model_name": "BertForSequenceClassification",
                              "tokenizer_name": "BertTokenizer", "num_classes": len(classes)}},
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }
    path = root / "tiny.ckpt"
    torch.save(ckpt, path)
    return path, base


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("detoxify"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    scorers.clear_cache()


def test_offline_env_is_set() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_tiny_checkpoint_loads_through_detoxify(tiny: tuple[Path, Path]) -> None:
    ckpt, base = tiny
    s = DetoxifyScorer("original", checkpoint=str(ckpt), huggingface_config_path=str(base))
    assert s.name == f"detoxify:original@{ckpt}"
    assert s.categories == CATEGORIES
    texts = ["you are a stupid idiot", "have a nice day", "i will kill you"]
    first = s.score_batch(texts)
    assert len(first) == 3
    for r in first:
        assert set(r) == set(CATEGORIES)
        assert all(0.0 <= v <= 1.0 for v in r.values())
    assert s.score_batch(texts) == first  # deterministic
    one = s.score_batch(["have a nice day"])  # detoxify squeezes a single text to floats
    assert one[0] == pytest.approx(first[1], abs=1e-5)
    assert first[0] != first[1]  # the model does look at the text
    assert s.score_batch([]) == []


def test_extra_classes_are_dropped(tmp_path: Path) -> None:
    classes = ["toxicity", "severe_toxicity", "obscene", "identity_attack", "insult", "threat", "sexual_explicit"]
    ckpt, base = build_tiny_checkpoint(tmp_path, classes)
    s = DetoxifyScorer("unbiased", checkpoint=str(ckpt), huggingface_config_path=str(base))
    assert set(s.score_batch(["you are a nice idiot"])[0]) == set(CATEGORIES)


def test_load_scorer_from_config_and_cache(tiny: tuple[Path, Path]) -> None:
    ckpt, _ = tiny
    cfg = ToxicityConfig(scorer="detoxify", checkpoint=str(ckpt))
    s = load_scorer(cfg)
    assert s.name.startswith("detoxify:original@")
    assert load_scorer(cfg) is s  # loaded once per process


def test_hub_cache_path_is_used(tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, _ = tiny
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub_file = scorers.detoxify_hub_path("original")
    assert hub_file == tmp_path / "torch" / "hub" / "checkpoints" / "toxic_original-c1212f89.ckpt"
    with pytest.raises(ScorerUnavailable) as ei:
        DetoxifyScorer("original")
    assert str(hub_file) in ei.value.message and "trustproxy models pull" in ei.value.message
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(ckpt.read_bytes())
    monkeypatch.setattr(scorers, "_base_model_cached", lambda repo: False)
    with pytest.raises(ScorerUnavailable, match="bert-base-uncased"):
        DetoxifyScorer("original")
    monkeypatch.setattr(scorers, "_base_model_cached", lambda repo: True)
    s = DetoxifyScorer("original")  # the tiny checkpoint names a local base folder
    assert s.name == f"detoxify:original@{hub_file}"


def test_missing_checkpoint_raises_without_fallback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(ScorerUnavailable) as ei:
        load_scorer(ToxicityConfig(scorer="detoxify", checkpoint=str(missing)))
    assert str(missing) in ei.value.message
    assert ei.value.reason == "checkpoint missing"
    assert ei.value.code == "guard_failed"


def test_corrupt_checkpoint_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(ScorerUnavailable, match="could not load"):
        DetoxifyScorer(checkpoint=str(bad))


def test_missing_checkpoint_with_fallback_is_visible(tmp_path: Path) -> None:
    cfg = ToxicityConfig(scorer="detoxify", checkpoint=str(tmp_path / "nope.ckpt"), fallback="profanity_check")
    s = load_scorer(cfg)
    assert s.name == "profanity_check (fallback for detoxify:original: checkpoint missing)"
    assert s.categories == ("toxicity", "obscene", "insult")
    assert s.score_batch(["Go fuck yourself."])[0]["toxicity"] > 0.9
    d = commands.describe(cfg)
    assert d["ready"] and d["fallback_active"] and d["scorer"] == s.name
    assert d["unscreened"] == ["identity_attack", "severe_toxicity", "threat"]


def test_describe_unavailable(tmp_path: Path) -> None:
    d = commands.describe(ToxicityConfig(scorer="detoxify", checkpoint=str(tmp_path / "x.ckpt")))
    assert d["ready"] is False and "x.ckpt" in d["error"]


def test_pull_offline_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(url: str, target: Path, out: object) -> None:
        assert os.environ.get("HF_HUB_OFFLINE") is None  # downloads allowed only inside pull
        raise urllib.error.URLError("unreachable")

    monkeypatch.setattr(commands, "_download_checkpoint", no_network)
    buf = io.StringIO()
    assert commands.pull(["original"], str(tmp_path), out=buf) == 1
    assert "needs network access" in buf.getvalue()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert commands.pull(["nope"], None, out=buf) == 2


def test_pull_writes_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_ckpt(url: str, target: Path, out: object) -> None:
        assert url.endswith("/toxic_original-c1212f89.ckpt")
        target.write_bytes(b"x")

    def fake_base(repo: str, dest: str | None) -> str:
        assert repo == "bert-base-uncased"
        return str(Path(dest) / repo) if dest else "/hf-cache"

    monkeypatch.setattr(commands, "_download_checkpoint", fake_ckpt)
    monkeypatch.setattr(commands, "_download_base", fake_base)
    buf = io.StringIO()
    assert commands.pull(["original"], str(tmp_path), out=buf) == 0
    assert (tmp_path / "toxic_original-c1212f89.ckpt").read_bytes() == b"x"
    assert "huggingface_config_path" in buf.getvalue()
    assert os.environ["HF_HUB_OFFLINE"] == "1"


async def test_tiny_detoxify_through_the_window_same_units_streamed(tiny: tuple[Path, Path]) -> None:
    """The detoxify path through the real window: all six categories judged per sentence, the
    same decisions whether the reply arrives whole or split at any point (quoted speech masked
    the same way)."""
    from trustproxy.policy.schema import Threshold
    from trustproxy.toxicity import BatchingScorer, ToxicityFilter

    ckpt, base = tiny
    s = DetoxifyScorer("original", checkpoint=str(ckpt), huggingface_config_path=str(base))
    cfg = ToxicityConfig(scorer="detoxify", checkpoint=str(ckpt),
                         categories={c: Threshold(threshold=0.0, action="flag") for c in CATEGORIES})
    reply = 'Have a nice day. The user wrote "you are a stupid idiot" today. I will kill you.'
    b = BatchingScorer(s, max_wait_ms=0)

    async def run(chunks: list[str]) -> list[tuple[str | None, float | None]]:
        f = ToxicityFilter(b, cfg)
        out = "".join([await f.feed(c) for c in chunks]) + await f.finish()
        assert out == reply  # flag only: passed on unchanged
        return [(d.category, d.score) for d in f.decisions]

    try:
        whole = await run([reply])
        assert len(whole) == 3 * len(CATEGORIES)  # three sentences, six categories each
        for i in range(1, len(reply), 5):
            assert await run([reply[:i], reply[i:]]) == whole, i
    finally:
        b.close()
