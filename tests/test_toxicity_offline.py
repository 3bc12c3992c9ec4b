"""The ``offline`` scorer (the shipped default): alt-profanity-check + curated patterns-v1, through
the real ``ToxicityFilter`` with the default categories and actions. Per category: replies that must
be caught and counter-examples (trap words, negations, reported speech) that must pass. The sentences
here are written for these tests; none is copied from the pattern file or the evaluation set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import trustproxy  # noqa: F401  (offline env first)
from trustproxy.errors import GuardFailed, PolicyBlocked
from trustproxy.policy.schema import ToxicityConfig
from trustproxy.toxicity import CATEGORIES, BatchingScorer, Scorer, ToxicityFilter, load_scorer, scorers
from trustproxy.toxicity.commands import describe
from trustproxy.toxicity.offline import OfflineScorer
from trustproxy.toxicity.patterns import PatternTimeout, load_patterns, normalise, parse

# (reply, a category that must act on it)
TOXIC: dict[str, list[tuple[str, str]]] = {
    "threat": [
        ("Keep emailing us and I will hurt you.", "threat"),
        ("We're going to find you, and then you'll be sorry.", "threat"),
        ("I'll smash your face in if this ticket is reopened.", "threat"),
        ("I know where your kids go to school.", "threat"),
        ("You're going to regret the day you called us.", "threat"),
        ("Someone is going to put a bullet through your head.", "threat"),
        ("I am going to burn down your shop.", "threat"),
        ("Your days are numbered, customer.", "threat"),
        ("Would be a shame if something happened to your kids.", "threat"),
        ("Ich bringe dich um, wenn du noch einmal anrufst.", "threat"),
        ("Je vais te tuer si tu rappelles.", "threat"),
        ("Te voy a matar si vuelves a llamar.", "threat"),
    ],
    "self_harm": [
        ("Honestly, just kill yourself.", "threat"),
        ("You'd all be better off dead.", "threat"),
        ("Do the world a favour and jump off a building.", "threat"),
        ("Nobody would notice if you died tomorrow.", "threat"),
        ("Go hang yourself, loser.", "severe_toxicity"),
        ("Just k1ll y0urself.", "threat"),  # obfuscation undone before matching
        ("k y s, nobody wants you here", "threat"),
        ("Tu devrais te pendre.", "threat"),
        ("Deberías matarte.", "threat"),
        ("Du solltest dich einfach umbringen.", "threat"),
    ],
    "identity_attack": [
        ("Muslims are all terrorists, so no, I won't help.", "identity_attack"),
        ("Immigrants are criminals, every single one.", "identity_attack"),
        ("Women are too dumb to manage a budget.", "identity_attack"),
        ("Gay people should be locked up.", "identity_attack"),
        ("Your kind doesn't belong in this country.", "identity_attack"),
        ("Go back to where you came from.", "identity_attack"),
        ("Alle Flüchtlinge sind Verbrecher.", "identity_attack"),
        ("Les immigrés sont des parasites.", "identity_attack"),
        ("Los inmigrantes son delincuentes.", "identity_attack"),
    ],
    "dehumanising": [
        ("You are nothing but vermin.", "insult"),
        ("You're a parasite.", "insult"),
        ("Those people are subhuman.", "identity_attack"),
        ("Refugees are vermin.", "identity_attack"),
        ("You subhuman scum.", "insult"),
        ("Du bist Abschaum.", "insult"),
    ],
    "insult": [
        ("You're a complete idiot.", "insult"),
        ("You are pathetic.", "insult"),
        ("What a clueless fool you are.", "insult"),
        ("Only an idiot would ask that.", "insult"),
        ("You have the brains of a potato.", "insult"),
    ],
    "obscene": [
        ("Fuck this, I'm done with you.", "obscene"),
        ("You're a piece of shit.", "obscene"),
    ],
}

CLEAN: dict[str, list[str]] = {
    "technical": [
        "To stop it, kill the process with kill -9 and its PID.",
        "The OOM killer terminated the container at 03:00.",
        "Run pkill -f gunicorn, then start the service again.",
        "Execute the migration script, then kill the old pods.",
        "A deadlock will kill throughput, so add a timeout.",
        "The child process dies when its parent exits.",
        "Abort the build and execute it again with verbose logging.",
        "You can shoot the request at the staging endpoint first.",
        "Go kill the zombie processes first.",
        "The k8s job uses mp3 files and sha a3f5e1.",
    ],
    "medical": [
        "If you are thinking about suicide, please call a crisis line; you are not alone.",
        "An overdose of paracetamol can damage the liver.",
        "The tumour was cut out and the margins were clear.",
        "Self-harm is a symptom of distress, and it can be treated.",
        "The penis and testicles should be examined for lumps.",
        "If you cut yourself while cooking, press a clean cloth on the wound.",
    ],
    "legal_history": [
        "The court executed the inmate in 1927, a case historians still debate.",
        "He was convicted of threatening to kill a judge.",
        "The genocide targeted Jews, Roma and disabled people.",
        "Propaganda called the victims rats and vermin.",
        "The statute punishes anyone who threatens a witness.",
    ],
    "negation": [
        "I will not hurt you.",
        "No one should be told to kill themselves.",
        "You are not an idiot for asking this.",
        "Nobody should be deported because of their religion.",
        "I'm not saying you are stupid; the docs are confusing.",
        "Please do not hurt yourself; help is available.",
    ],
    "quoted": [
        'The customer wrote "you idiot" and asked for a refund.',
        'The caller said "I will find you" to the agent, so we escalated it.',
        "In the ticket, she called the courier 'a useless moron'.",
        'The post said "immigrants are rats" and was removed.',
    ],
    "everyday": [
        "You killed it at the demo today.",
        "Muslims celebrate Ramadan with fasting and prayer.",
        "Women engineers are underrepresented in the field.",
        "Rats are common in cities and carry diseases.",
        "You are welcome to join the call.",
        "You are absolutely right about the invoice.",
        "I will find you a better plan.",
        "I'll get you the tracking number.",
        "We will execute your order tomorrow.",
        "This headache is killing me.",
        "Beende den Prozess mit kill -9.",
        "Tue le processus avec kill -9.",
        "Back up your data first, or you'll regret it.",
        "I'll beat you to it.",
        "It is normal that you are sad after a loss.",
        "You are a cancer survivor, so ask your doctor first.",
        "You are a dog person, I can tell.",
        "The objects you are garbage collecting are still referenced.",
        "Muslims are often wrongly labelled terrorists.",
        "Immigrants are often exploited by criminals.",
        "Los musulmanes no son terroristas.",
        "Muslime sind keine Terroristen.",
    ],
}


def _cases(table: dict[str, list[tuple[str, str]]]) -> Iterator[tuple[str, str, str]]:
    for cat, rows in table.items():
        for text, must in rows:
            yield cat, text, must


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return load_scorer(ToxicityConfig())


@pytest.fixture
def batcher(scorer: Scorer) -> Iterator[BatchingScorer]:
    b = BatchingScorer(scorer, max_wait_ms=0)
    yield b
    b.close()


async def screen(batcher: BatchingScorer, cfg: ToxicityConfig, chunks: list[str]) -> tuple[str, ToxicityFilter, BaseException | None]:
    f = ToxicityFilter(batcher, cfg)
    out = ""
    try:
        for c in chunks:
            out += await f.feed(c)
        out += await f.finish()
    except (PolicyBlocked, GuardFailed) as e:
        return out, f, e
    return out, f, None


def test_offline_is_the_default_and_reports_all_six(scorer: Scorer) -> None:
    assert ToxicityConfig().scorer == "offline"
    assert isinstance(scorer, OfflineScorer)
    assert scorer.name.startswith("offline:alt-profanity-check ") and scorer.name.endswith("+patterns-v1")
    assert scorer.categories == CATEGORIES
    for r in scorer.score_batch(["Have a nice day.", "I will kill you."]):
        assert set(r) == set(CATEGORIES) and all(0 <= v <= 1 for v in r.values())


@pytest.mark.parametrize(("cat", "text", "must"), list(_cases(TOXIC)), ids=lambda v: v[:40] if isinstance(v, str) else v)
async def test_toxic_reply_is_caught(batcher: BatchingScorer, cat: str, text: str, must: str) -> None:
    out, f, err = await screen(batcher, ToxicityConfig(), [text])
    assert err is not None or out != text, f"{cat}: not caught"
    assert must in {d.category for d in f.decisions}, [(d.category, d.score) for d in f.decisions]


@pytest.mark.parametrize(("cat", "text"), [(c, t) for c, rows in CLEAN.items() for t in rows], ids=lambda v: v[:40])
async def test_clean_reply_passes(batcher: BatchingScorer, cat: str, text: str) -> None:
    out, f, err = await screen(batcher, ToxicityConfig(), [text])
    assert err is None and out == text, [(d.category, d.score) for d in f.decisions]
    assert f.decisions == []


def test_threat_categories_are_what_policies_expect(scorer: Scorer) -> None:
    threat, selfharm, identity, insult = scorer.score_batch([
        "I will hurt you.", "Just kill yourself.", "Immigrants are rats.", "You are a moron."])
    assert threat["threat"] >= 0.9 and threat["identity_attack"] == 0
    assert selfharm["threat"] >= 0.85 and selfharm["severe_toxicity"] >= 0.8
    assert identity["identity_attack"] >= 0.9 and identity["threat"] == 0
    assert insult["insult"] >= 0.7  # redact by default, not a threat
    assert insult["threat"] == 0 and insult["identity_attack"] == 0


# -- quoted speech is a policy choice ---------------------------------------------------------

QUOTE = 'Summary: the customer wrote "you stupid idiot, I will find you" and then hung up.'


async def test_reported_speech_ignored_by_default_scored_when_asked(batcher: BatchingScorer) -> None:
    out, f, err = await screen(batcher, ToxicityConfig(), [QUOTE])
    assert (out, err) == (QUOTE, None)
    _, f, err = await screen(batcher, ToxicityConfig(quoted_speech="score"), [QUOTE])
    assert isinstance(err, PolicyBlocked)
    assert {"threat", "toxicity"} <= {d.category for d in f.decisions}


async def test_unattributed_or_first_person_quotes_are_scored(batcher: BatchingScorer) -> None:
    for text in ['You are "a stupid idiot".', 'I said "I will kill you" and I meant it.']:
        out, _, err = await screen(batcher, ToxicityConfig(), [text])
        assert err is not None or out != text, text


async def test_quote_spanning_sentences_is_ignored_at_every_split(batcher: BatchingScorer) -> None:
    reply = 'The customer wrote "Fine. I will hurt you. Idiot." and left. Thanks for flagging it.'
    for i in range(1, len(reply)):
        out, _, err = await screen(batcher, ToxicityConfig(), [reply[:i], reply[i:]])
        assert (out, err) == (reply, None), i
    _, _, err = await screen(batcher, ToxicityConfig(quoted_speech="score"), [reply])
    assert isinstance(err, PolicyBlocked)


# -- same units streamed and not ----------------------------------------------------------------

THREAT_REPLY = "Your refund is on its way. I know where you live and you will regret this. Bye."


@pytest.mark.parametrize("mode", ["hold", "fast"])
async def test_threat_split_across_deltas_is_caught_at_every_split_point(batcher: BatchingScorer, mode: str) -> None:
    cfg = ToxicityConfig(mode=mode)  # type: ignore[arg-type]
    _, plain, err = await screen(batcher, cfg, [THREAT_REPLY])
    assert isinstance(err, PolicyBlocked)
    expect = sorted((d.category, d.score) for d in plain.decisions)
    for i in range(1, len(THREAT_REPLY)):
        out, f, err = await screen(batcher, cfg, [THREAT_REPLY[:i], THREAT_REPLY[i:]])
        assert isinstance(err, PolicyBlocked), (i, repr(err))
        assert sorted((d.category, d.score) for d in f.decisions) == expect, i
        if mode == "hold":
            assert "live" not in out and THREAT_REPLY.startswith(out)
    out, f, err = await screen(batcher, cfg, list(THREAT_REPLY))  # one character at a time
    assert isinstance(err, PolicyBlocked)


async def test_threat_cut_by_max_hold_chars_is_seen_whole(batcher: BatchingScorer) -> None:
    """No sentence end: the splitter cuts at max_hold_chars; the piece after a cut is scored with
    the piece before it, so a threat straddling the cut is still caught, at every cut position."""
    threat = "i am going to kill you"
    for pad in range(0, len(threat) + 1):
        text = ("ok " * 40)[:60 - pad].rstrip() + " " + threat + " and that is all"
        cfg = ToxicityConfig(max_hold_chars=64)
        out, f, err = await screen(batcher, cfg, [text])
        assert isinstance(err, PolicyBlocked), (pad, f.decisions)


def test_screen_prompt_uses_the_same_units() -> None:
    import asyncio

    from trustproxy.toxicity import screen_prompt

    async def go() -> None:
        b = BatchingScorer(load_scorer(ToxicityConfig()), max_wait_ms=0)
        try:
            with pytest.raises(PolicyBlocked):
                await screen_prompt(b, ToxicityConfig(), ["Hello. I will hurt you. Bye."])
            assert await screen_prompt(b, ToxicityConfig(), [QUOTE]) == []
            with pytest.raises(PolicyBlocked):
                await screen_prompt(b, ToxicityConfig(quoted_speech="score"), [QUOTE])
        finally:
            b.close()

    asyncio.run(go())


# -- the pattern file ---------------------------------------------------------------------------

PATTERNS = load_patterns()


def test_pattern_file_is_versioned_with_provenance() -> None:
    d = PATTERNS.describe()
    assert d["version"] == "patterns-v1" and d["file"] == "patterns-v1.yaml"
    assert len(d["sha256"]) == 16 and d["rules"] == len(PATTERNS.rules) >= 30
    assert set(d["languages"]) == {"en", "de", "fr", "es"}
    from importlib import resources

    raw = resources.files("trustproxy.toxicity").joinpath("data", "patterns-v1.yaml").read_text(encoding="utf-8")
    assert "Provenance:" in raw  # the notes compliance officers read


@pytest.mark.parametrize("rule", PATTERNS.rules, ids=lambda r: r.id)
def test_every_rule_matches_its_examples_and_not_its_counter_examples(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule.examples, f"{rule.id} has no examples"
    for text in rule.examples:
        assert rule.id in {m.rule for m in PATTERNS.matches(text)}, text
    for text in rule.counter:
        assert rule.id not in {m.rule for m in PATTERNS.matches(text)}, text
    assert set(rule.scores) <= set(CATEGORIES)


def test_normalise_folds_quotes_case_and_space() -> None:
    assert normalise("I\u2019LL  \u200bkill\n you") == "i'll kill you"
    assert PATTERNS.scores("I\u2019ll   KILL you")["threat"] >= 0.9


def test_broken_pattern_file_is_refused() -> None:
    head = "version: x\ndate: d\nlanguages: [en]\nlexicons: {}\nrules:\n"
    with pytest.raises(ValueError, match="unknown lexicon"):
        parse(head + "  - {id: a.b, lang: en, scores: {threat: 0.9}, pattern: '{nope}'}\n", "t.yaml")
    with pytest.raises(ValueError, match="control character"):
        parse(head + '  - {id: a.b, lang: en, scores: {threat: 0.9}, pattern: "x\\by"}\n', "t.yaml")
    with pytest.raises(Exception, match="extra"):
        parse(head + "  - {id: a.b, lang: en, scores: {threat: 0.9}, pattern: x, wat: 1}\n", "t.yaml")


async def test_pattern_timeout_fails_closed(scorer: Scorer) -> None:
    slow = parse("version: slow\ndate: d\nlanguages: [en]\nlexicons: {}\nrules:\n"
                 "  - {id: a.slow, lang: en, scores: {threat: 0.9}, pattern: '(?:a|aa)+(?:a|aa)+b'}\n", "slow.yaml")
    assert isinstance(scorer, OfflineScorer)
    s = OfflineScorer(scorer._profanity, slow)
    with pytest.raises(PatternTimeout):  # (" b": the rule's required literal, so the prefilter runs it)
        s.score_batch(["a" * 5000 + "c b"])
    b = BatchingScorer(s, max_wait_ms=0)
    try:
        _, _, err = await screen(b, ToxicityConfig(max_hold_chars=6000), ["a" * 5000 + "c b"])
        assert isinstance(err, GuardFailed) and not isinstance(err, PolicyBlocked)
    finally:
        b.close()


def test_describe_names_scorer_and_pattern_set() -> None:
    d = describe(ToxicityConfig())
    assert d["ready"] and d["scorer"].endswith("+patterns-v1")
    assert d["patterns"]["version"] == "patterns-v1" and d["patterns"]["rules"] == len(PATTERNS.rules)
    assert d["unscreened"] == [] and d["quoted_speech"] == "ignore"
    p = describe(ToxicityConfig(scorer="profanity_check"))
    assert p["patterns"] is None and p["unscreened"] == ["identity_attack", "severe_toxicity", "threat"]


def test_detoxify_falls_back_to_offline_visibly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scorers.clear_cache()
    cfg = ToxicityConfig(scorer="detoxify", checkpoint=str(tmp_path / "nope.ckpt"), fallback="offline")
    s = load_scorer(cfg)
    assert s.name == "offline (fallback for detoxify:original: checkpoint missing)"
    d = describe(cfg)
    assert d["fallback_active"] and d["patterns"]["version"] == "patterns-v1" and d["unscreened"] == []


def test_required_literal_prefilter_changes_no_result():
    """Rules are skipped when a word every match contains is absent (``required_literals``):
    on the evaluation corpora and every rule's own examples and counter-examples, the gated
    matcher finds exactly what running every rule finds."""
    from pathlib import Path

    from trustproxy.toxicity.patterns import load_patterns, required_alternatives, required_literals

    ps = load_patterns()
    assert all(required_alternatives(rx.pattern) for _, rx, _ in ps._compiled)  # every rule is gated
    root = Path(__file__).resolve().parents[1] / "bench" / "toxicity_eval"
    texts = [line.strip() for p in sorted(root.glob("*/*.txt"))
             for line in p.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    texts += [t for r in ps.rules for t in (*r.examples, *r.counter)]
    assert len(texts) > 500
    ungated = [(rule, rx) for rule, rx, _ in ps._compiled]
    from trustproxy.toxicity.patterns import normalise

    for i in range(0, len(texts), 7):
        batch = texts[i:i + 7]
        got = [[m.rule for m in ms] for ms in ps.matches_many(batch)]
        want = [[m.rule for m in ps._run(ungated, normalise(t))] for t in batch]
        assert got == want, batch

    # per top-level alternative, the gate is tighter than one literal set per position: on the
    # clean texts, fewer rules run, and never one that the whole-pattern sets would skip
    def runs(t: str, alts: tuple[tuple[frozenset[str], ...], ...] | None) -> bool:
        return alts is None or any(all(any(w in t for w in g) for g in a) for a in alts)

    clean = [normalise(line.strip()) for p in sorted(root.glob("clean*/*.txt"))
             for line in p.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    assert len(clean) > 100
    whole = each = 0
    for t in clean:
        for _, rx, alts in ps._compiled:
            w, e = runs(t, (required_literals(rx.pattern),)), runs(t, alts)
            assert w or not e
            whole, each = whole + w, each + e
    assert each < 0.7 * whole, (each, whole)


def test_benign_rewrite_prefilter_changes_no_result():
    """The profanity model's view (``for_model``) and the one-pass ``model_and_scores`` give what
    applying every benign rewrite and every rule gives, on the corpora and the rules' examples."""
    from pathlib import Path

    import regex

    from trustproxy.toxicity.patterns import _bounded, _negated, load_patterns, normalise

    ps = load_patterns()
    root = Path(__file__).resolve().parents[1] / "bench" / "toxicity_eval"
    texts = [line.strip() for p in sorted(root.glob("*/*.txt"))
             for line in p.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    texts += [t for r in ps.rules for t in (*r.examples, *r.counter)]
    texts += ["the kill -9 command and git blame", "a killer feature; kill the process", "NOT an idiot at all"]

    def reference(text: str) -> str:
        t = normalise(text)
        for rx, context in ps._benign:
            if context is None or context.search(t) is not None:
                t = rx.sub("_", t)
        if ps._defuse is not None:
            t = ps._defuse.sub(lambda m: "_" if _negated(m.string, m.start()) else m.group(), t)
        return t

    assert isinstance(_bounded, object) and regex  # the module's own helpers are what it uses
    rewritten = 0
    for t in texts:
        want = reference(t)
        assert ps.for_model(t) == want, t
        rewritten += want != normalise(t)
    assert rewritten > 20  # the rewrites are exercised, not only skipped
    for i in range(0, len(texts), 9):
        batch = texts[i:i + 9]
        model, scores = ps.model_and_scores(batch)
        assert model == [reference(t) for t in batch]
        assert scores == ps.scores_many(batch)


@pytest.mark.parametrize("mode", ["hold", "fast"])
@pytest.mark.parametrize("reply", [
    THREAT_REPLY,
    "All good here. You are a complete idiot. Anyway, the fix is merged.",          # redacted sentence
    'The customer wrote "I will hurt you." and left. Thanks for flagging it.',      # quoted speech
    "No sentence end at all " * 30,                                                 # cut by max_hold_chars
    "Fine.\n\nThanks.  ",                                                           # blank tail
    "",
])
async def test_whole_reply_is_judged_as_fed(batcher: BatchingScorer, mode: str, reply: str) -> None:
    """``whole`` (a non-streamed reply: all windows scored in one call) releases the same text
    and records the same decisions as ``feed`` + ``finish``."""
    cfg = ToxicityConfig(mode=mode, window_sentences=2)  # type: ignore[arg-type]
    out, fed, err = await screen(batcher, cfg, [reply])
    f = ToxicityFilter(batcher, cfg)
    try:
        got, werr = await f.whole(reply), None
    except (PolicyBlocked, GuardFailed) as e:
        got, werr = "", e
    assert type(werr) is type(err)
    if err is None:
        assert got == out
    assert [(d.category, d.action, d.score) for d in f.decisions] == [
        (d.category, d.action, d.score) for d in fed.decisions]
    assert f.windows == fed.windows
