"""Seeded generator of labelled chat requests (OpenAI chat-completions bodies).

``generate(seed, n)`` returns ``n`` cases; case ``i`` depends only on ``(seed, i)``, so a larger
``n`` extends a corpus without changing its start. About a quarter are clean texts that must
reach the provider unaltered; the rest plant one to six values, each recorded with its
category, placement, locale, evasion and format (see ``model.Planted``).

    python -m bench.corpus --seed 1 --n 20 > corpus.jsonl
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import random
import sys
from dataclasses import dataclass
from typing import Any

from faker import Faker

from bench.corpus import clean
from bench.corpus.evasions import SPLITTING, apply, fragments
from bench.corpus.lang import ACK, ASK, DOMAINS, FILLER, FRAME, INTRO, LABEL, LOCALE_LANG, LOCALES, SYSTEM
from bench.corpus.model import Case, Planted, fold, folded_request
from bench.corpus.values import SECRETS, Value, iso_dob, make_value

PLACEMENTS = ("system", "user", "history", "tool_call_args", "tool_result", "content_parts", "name")
TEXT_PLACEMENTS = ("system", "user", "history", "content_parts")
EVASION_NAMES = ("line_break", "crlf", "tab", "control_char", "combining_mark", "variation_selector",
                 "zero_width", "underscore", "spaced_digits", "glued", "lower_case", "upper_case")

#: Which evasions happen where: emphasis, glued labels and spaced digits in typed prose; copy-paste
#: damage (wrapped lines, stray control and invisible characters, re-cased text) anywhere; in
#: developer output only what terminals and editors do (wrapping, ANSI escapes, tabs).
JSON_EVASIONS = ("line_break", "crlf", "tab", "control_char", "combining_mark", "variation_selector",
                 "zero_width", "lower_case", "upper_case")
DEV_EVASIONS = ("line_break", "crlf", "tab", "control_char", "zero_width")
FORMAT_EVASIONS: dict[str, tuple[str, ...]] = {
    "prose": EVASION_NAMES, "line": EVASION_NAMES, "csv": EVASION_NAMES, "json_prose": EVASION_NAMES,
    "env": DEV_EVASIONS, "log": DEV_EVASIONS, "yaml": DEV_EVASIONS, "http": DEV_EVASIONS,
    "traceback": DEV_EVASIONS, "name_field": ("lower_case", "upper_case"),
}

DOMAIN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "support": ("PERSON", "EMAIL", "PHONE", "ADDRESS", "CREDIT_CARD", "IBAN", "DRIVER_LICENSE"),
    "hr": ("PERSON", "EMAIL", "PHONE", "ADDRESS", "DATE_OF_BIRTH", "NATIONAL_ID", "IBAN", "BANK_ACCOUNT"),
    "medical": ("PERSON", "DATE_OF_BIRTH", "PHONE", "ADDRESS", "MEDICAL_RECORD", "NATIONAL_ID", "EMAIL"),
    "sales": ("PERSON", "EMAIL", "PHONE", "ADDRESS"),
    "finance": ("PERSON", "IBAN", "CREDIT_CARD", "BANK_ACCOUNT", "NATIONAL_ID", "EMAIL", "DRIVER_LICENSE"),
    "dev": SECRETS + ("EMAIL", "IP_ADDRESS", "PERSON", "CREDIT_CARD"),
}
TOOLS = {"support": "create_ticket", "hr": "update_employee", "medical": "register_patient",
         "sales": "crm_upsert_contact", "finance": "issue_refund", "dev": "run_shell"}
ENV_NAMES: dict[str, list[str]] = {
    "AWS_ACCESS_KEY": ["AWS_ACCESS_KEY_ID"], "AWS_SECRET_KEY": ["AWS_SECRET_ACCESS_KEY"],
    "GITHUB_TOKEN": ["GITHUB_TOKEN", "GH_TOKEN"], "NPM_TOKEN": ["NPM_TOKEN"],
    "HF_TOKEN": ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"], "TWILIO_KEY": ["TWILIO_API_KEY", "TWILIO_AUTH_TOKEN"],
    "SENDGRID_KEY": ["SENDGRID_API_KEY"], "SLACK_TOKEN": ["SLACK_BOT_TOKEN"], "STRIPE_KEY": ["STRIPE_SECRET_KEY"],
    "OPENAI_KEY": ["OPENAI_API_KEY"], "API_KEY_LINE": ["API_KEY", "MAPS_API_KEY", "PAYMENTS_API_KEY",
                                                        "INTERNAL_API_TOKEN", "CLIENT_SECRET"],
    "PASSWORD": ["DB_PASSWORD", "SMTP_PASSWORD"], "JWT": ["SESSION_TOKEN"], "PRIVATE_KEY": ["JWT_SIGNING_KEY"],
    "EMAIL": ["ADMIN_EMAIL", "ALERT_EMAIL"], "IP_ADDRESS": ["ALLOWED_IP"], "PERSON": ["GIT_AUTHOR_NAME"],
    "CREDIT_CARD": ["TEST_CARD"],
}
CLEAN_ENV = ["LOG_LEVEL=debug", "PORT=8080", "REGION=eu-west-1", "WORKERS=4", "FEATURE_FLAGS=beta,search",
             "NODE_ENV=production", "TZ=UTC"]


@dataclass
class _Item:
    """A value as it will be embedded: the value, its evasion, format and final surface."""

    value: Value
    evasion: str
    format: str
    surface: str       # decoded surface (the value part, as the user wrote it)
    embedded: str      # what goes into the text (glue + surface) or a JSON number

    @property
    def json_value(self) -> Any:
        return int(self.surface) if self.format == "json_number" else self.embedded


class _Builder:
    """Everything random about one case, from one ``random.Random``."""

    def __init__(self, r: random.Random, fakers: dict[str, Faker], locale: str, domain: str) -> None:
        self.r = r
        self.fakers = fakers
        self.locale = locale
        self.lang = LOCALE_LANG[locale]
        self.domain = domain
        self.f = fakers[locale]
        self.f.seed_instance(r.getrandbits(64))

    # ---- values ---------------------------------------------------------------------------

    def value(self, category: str, iso: bool = False) -> Value:
        if category == "DATE_OF_BIRTH" and iso:
            return iso_dob(self.f, self.locale)
        return make_value(category, self.f, self.locale, self.fakers)

    def item(self, v: Value, fmt: str, evasions: tuple[str, ...] | None = None) -> _Item:
        r = self.r
        evasion, surface = "none", v.text
        evasions = evasions or FORMAT_EVASIONS.get(fmt, JSON_EVASIONS)
        if fmt == "json_number":
            assert v.number is not None
            return _Item(v, "none", fmt, str(v.number), str(v.number))
        if r.random() < 0.55:
            for _ in range(6):
                name = r.choice(evasions)
                out = apply(name, v.text, v.category, r)
                if out is not None and out != v.text or (out is not None and name == "glued"):
                    evasion, surface = name, out
                    break
        embedded = (v.glue + surface) if evasion == "glued" else surface
        return _Item(v, evasion, fmt, surface, embedded)

    def label(self, v: Value, upper: bool = False) -> str:
        text = v.scheme if v.category == "NATIONAL_ID" else LABEL[self.lang].get(v.category, v.key)
        return text.upper() if upper else text

    def sentence(self, it: _Item) -> str:
        cat = it.value.category
        if cat in FRAME[self.lang]:
            frame = self.r.choice(FRAME[self.lang][cat])
            return frame.replace("{label}", it.value.scheme).replace("{v}", it.embedded)
        return self.dev_prose(it)

    def dev_prose(self, it: _Item) -> str:
        return self.r.choice([
            f"I accidentally pasted {it.embedded} into the channel, how do I rotate it?",
            f"Why does the API return 401 with {it.embedded}?",
            f"The credential {it.embedded} shows up in our build output.",
        ])

    # ---- developer traffic ---------------------------------------------------------------------

    def env_name(self, it: _Item) -> str:
        v = it.value
        names = ENV_NAMES.get(v.category, [v.key.upper()])
        if v.category == "TWILIO_KEY":
            return names[0] if v.subtype == "sid" else names[1]
        return self.r.choice(names)

    def dev_line(self, it: _Item, fmt: str) -> str:
        r, v, e = self.r, it.value, it.embedded
        if v.category == "URL_PASSWORD":
            user = self.f.user_name()
            url = r.choice([f"postgres://{user}:{e}@db.internal:5432/orders", f"redis://:{e}@cache-1:6379/0",
                            f"https://{user}:{e}@git.internal.example/acme/app.git",
                            f"amqp://{user}:{e}@mq.internal:5672/%2f"])
            return {"env": f"DATABASE_URL={url}", "yaml": f"  url: {url}",
                    "log": f"{clean._ts(r)} ERROR [db] could not connect to {url}: timeout",
                    "http": f"git clone {url}", "traceback": f"sqlalchemy.exc.OperationalError: connection to {url} refused",
                    }.get(fmt, f"connection string: {url}")
        if v.category == "BASIC_AUTH":
            return {"env": f"UPSTREAM_AUTH=\"Basic {e}\"", "yaml": f"  authorization: Basic {e}",
                    "log": f"{clean._ts(r)} DEBUG [http] > GET /v2/catalog Authorization: Basic {e}",
                    "http": f"curl -H 'Authorization: Basic {e}' https://registry.internal.example/v2/_catalog",
                    }.get(fmt, f"the header was Authorization: Basic {e}")
        if v.category == "JWT" and fmt in ("http", "log"):
            return (f"curl -H \"Authorization: Bearer {e}\" https://api.internal.example/v1/me" if fmt == "http"
                    else f"{clean._ts(r)} WARN [auth] rejected bearer {e} (expired)")
        name = self.env_name(it)
        if fmt == "env":
            return f"{name}={e}" if r.random() < 0.7 else f"export {name}=\"{e}\""
        if fmt == "yaml":
            return f"  {v.key}: {e}"
        if fmt == "log":
            if v.category == "EMAIL":
                return f"{clean._ts(r)} INFO [auth-service] login failed user={e} attempts={r.randint(2, 9)}"
            if v.category == "IP_ADDRESS":
                return f"{clean._ts(r)} WARN [api-gateway] rate limited client={e} path=/v1/orders"
            if v.category == "PERSON":
                return f"{clean._ts(r)} INFO [deploy] triggered by {e}"
            if v.category == "CREDIT_CARD":
                return f"{clean._ts(r)} ERROR [billing-worker] charge declined card={e} code=05"
            return f"{clean._ts(r)} DEBUG [config] loaded {name}={e}"
        if fmt == "http":
            if v.category in ("GITHUB_TOKEN",):
                return f"curl -H \"Authorization: token {e}\" https://api.github.com/repos/acme/app/actions/runs"
            if v.category == "NPM_TOKEN":
                return f"//registry.npmjs.org/:_authToken={e}"
            return f"curl -H \"X-Api-Key: {e}\" https://api.internal.example/v1/export"
        if fmt == "traceback":
            return (f"Traceback (most recent call last):\n  File \"/app/worker.py\", line {r.randint(10, 300)}, in main\n"
                    f"    client = connect(settings)\nRuntimeError: authentication failed for credential {e}")
        return self.dev_prose(it)

    # ---- filler ----------------------------------------------------------------------------

    def join(self, parts: list[str]) -> str:
        return ("" if self.lang in ("ja", "zh") else " ").join(p for p in parts if p)

    def filler(self, k: int) -> list[str]:
        pool = FILLER[self.lang]
        out = self.r.sample(pool, min(k, len(pool)))
        return out + [self.r.choice(pool) for _ in range(k - len(out))]

    def intro(self) -> str:
        return self.r.choice(INTRO[self.lang][self.domain])

    def ask(self) -> str:
        return self.r.choice(ASK[self.lang])


def _table(b: _Builder, items: list[_Item], cols: int) -> str:
    """CSV: a header row and one row per ``cols`` values."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([b.label(it.value) for it in items[:cols]])
    for i in range(0, len(items), cols):
        w.writerow([it.embedded for it in items[i:i + cols]])
    return buf.getvalue().rstrip("\n")


def _json_obj(b: _Builder, items: list[_Item]) -> dict[str, Any]:
    obj: dict[str, Any] = {"ref": f"{b.domain[:3].upper()}-{b.r.randint(10000, 99999)}"}
    for it in items:
        if it.format == "json_key_is_value":
            obj.setdefault("contacts", {})[it.embedded] = {"status": b.r.choice(["open", "active"]),
                                                           "priority": b.r.randint(1, 4)}
        elif it.format == "json_prose":
            obj.setdefault("notes", []).append(b.sentence(it))
        else:
            key = it.value.key
            while key in obj:
                key += "_2"
            obj[key] = it.json_value
    return obj


def _json_format(b: _Builder, v: Value, allow_key: bool = True) -> str:
    r = b.r.random()
    if v.number is not None and not v.text.startswith("0") and r < 0.6:
        return "json_number"
    if allow_key and v.category in ("EMAIL", "PHONE", "PERSON", "CREDIT_CARD", "IBAN") and r < 0.55:
        return "json_key_is_value"
    return "json_prose" if r > 0.8 else "json_key_label"


@functools.cache
def _fakers() -> dict[str, Faker]:
    """One Faker per locale for the process (creating them is slow); every use re-seeds first."""
    fakers = {loc: Faker(loc) for loc in LOCALES}
    # Faker's it_IT address provider builds its city list from a set, so its order (and the city
    # a seed draws) changes with the interpreter's hash seed: sort it so that a seed is a seed.
    for f in fakers.values():
        for provider in f.get_providers():
            cities = getattr(type(provider), "cities", None)
            if isinstance(cities, list):
                provider.cities = sorted(cities)  # type: ignore[attr-defined]
    return fakers


class CaseFactory:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.fakers = _fakers()

    def case(self, i: int) -> Case:
        for attempt in range(20):
            r = random.Random(f"{self.seed}:{i}:{attempt}")
            # Some Faker providers (es_ES NIE/NIF/NUSS, ...) draw from the module-level ``random``
            # instead of their instance's: seed it too, and put the caller's state back.
            saved = random.getstate()
            random.seed(f"{self.seed}:{i}:{attempt}:module")
            try:
                case = self._clean(r, i) if r.random() < 0.25 else self._pii(r, i)
            finally:
                random.setstate(saved)
            if case is not None:
                return case
        raise RuntimeError(f"could not build case {i}")  # pragma: no cover - 20 unlucky draws

    # ---- planted cases -------------------------------------------------------------------

    def _pii(self, r: random.Random, i: int) -> Case | None:
        locale = r.choice(LOCALES)
        domain = r.choices(DOMAINS, weights=[14, 14, 14, 14, 14, 30])[0]
        placement = r.choice(PLACEMENTS)
        b = _Builder(r, self.fakers, locale, domain)
        cats = [c for c in DOMAIN_CATEGORIES[domain]
                if (c != "DRIVER_LICENSE" or locale in ("en_US", "en_GB"))
                and (c != "ADDRESS" or locale != "ar_SA")]  # Faker has no Saudi street addresses
        body: dict[str, Any] = {"model": "m", "messages": []}
        msgs: list[dict[str, Any]] = body["messages"]
        system = SYSTEM[domain]
        if placement == "name":
            v = b.value("PERSON")
            it = b.item(v, "name_field")
            it.embedded = it.surface = it.surface.replace(" ", "_") if r.random() < 0.5 else it.surface
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "name": it.embedded,
                      "content": b.join([b.intro()] + b.filler(r.randint(2, 5)) + [b.ask()])}]
            return self._finish(b, i, placement, body, [it])

        k = r.choice([1, 2, 2, 3])
        chosen = r.sample(cats, min(k, len(cats)))
        numeric = [c for c in cats if c in ("CREDIT_CARD", "BANK_ACCOUNT", "MEDICAL_RECORD", "NATIONAL_ID", "PHONE")]
        if placement in ("tool_call_args", "tool_result") and numeric and r.random() < 0.4 \
                and not set(chosen) & set(numeric):
            chosen[-1] = r.choice(numeric)  # tool traffic: numbers typed as JSON numbers are common
        if placement in ("tool_call_args", "tool_result"):
            items, payload = self._json_payload(b, chosen, placement)
            tool = TOOLS[domain]
            call_id = f"call_{r.getrandbits(48):012x}"
            clean_args = json.dumps({"ref": f"{domain[:3].upper()}-{r.randint(10000, 99999)}"})
            args = payload if placement == "tool_call_args" else clean_args
            result = payload if placement == "tool_result" else json.dumps({"status": "ok"})
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "content": b.join([b.intro()] + b.filler(r.randint(1, 3)))},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": call_id, "type": "function", "function": {"name": tool, "arguments": args}}]},
                     {"role": "tool", "tool_call_id": call_id, "content": result},
                     {"role": "user", "content": b.ask()}]
            body["tools"] = [{"type": "function", "function": {
                "name": tool, "description": f"The {domain} team's {tool.replace('_', ' ')} tool.",
                "parameters": {"type": "object", "properties": {}}}}]
            return self._finish(b, i, placement, body, items)

        items, text = self._text_payload(b, chosen, placement)
        head = b.intro()
        pad = b.filler(r.randint(2, 8))
        if placement == "system":
            msgs += [{"role": "system", "content": system + "\n\nCase context:\n" + text},
                     {"role": "user", "content": b.join(pad + [b.ask()])}]
        elif placement == "user":
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "content": b.join([head] + pad) + "\n\n" + text + "\n\n" + b.ask()}]
        elif placement == "history":
            earlier = {"role": "assistant", "content": ACK[b.lang] + "\n" + text}
            if r.random() < 0.3:
                earlier = {"role": "user", "content": head + "\n\n" + text}
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "content": b.join([head] + pad[:2])},
                     earlier,
                     {"role": "user", "content": b.join(pad[2:] + [b.ask()])}]
        else:  # content_parts
            full = b.join([head] + pad[:2]) + "\n" + text + "\n" + b.join(pad[2:] + [b.ask()])
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "content": [{"type": "text", "text": t} for t in _parts(r, full, items)]}]
        return self._finish(b, i, placement, body, items)

    def _text_payload(self, b: _Builder, chosen: list[str], placement: str) -> tuple[list[_Item], str]:
        r = b.r
        if b.domain == "dev":
            fmts = ["env", "log", "yaml", "http", "traceback", "prose"]
            if placement != "content_parts":
                fmts.append("json_in_text")
            fmt = r.choice(fmts)
            if fmt == "json_in_text":
                items = []
                for c in chosen:
                    v = b.value(c)
                    items.append(b.item(v, _json_format(b, v, False)))
                return items, "Config dump:\n```json\n" + json.dumps(_json_obj(b, items), ensure_ascii=False, indent=2) + "\n```"
            items = [b.item(b.value(c), fmt) for c in chosen]
            if fmt == "prose":
                lines = [b.sentence(it) if it.value.category == "PASSWORD" else b.dev_prose(it) for it in items]
                return items, b.join(lines)
            lines = [b.dev_line(it, fmt) for it in items]
            if fmt == "env":
                lines = r.sample(CLEAN_ENV, 2) + lines + r.sample(CLEAN_ENV, 1)
                return items, "Here is the .env from the failing box:\n\n" + "\n".join(lines)
            if fmt == "yaml":
                return items, "config/production.yaml:\n\nservice:\n  name: billing-worker\n  replicas: 3\n" + "\n".join(lines)
            return items, "\n".join(lines)
        fmts = ["prose", "prose", "line", "line", "csv"]
        if placement != "content_parts":
            fmts += ["json_in_text", "json_escaped"]
        fmt = r.choice(fmts)
        if fmt == "csv":
            rows = r.choice([1, 1, 2])
            items = [b.item(b.value(c), "csv") for _ in range(rows) for c in chosen]
            return items, _table(b, items, len(chosen))
        if fmt in ("json_in_text", "json_escaped"):
            items = []
            for c in chosen:
                v = b.value(c, iso=r.random() < 0.5)
                jf = _json_format(b, v)
                items.append(b.item(v, jf if jf in ("json_number", "json_key_is_value") else fmt))
            obj = _json_obj(b, items)
            if fmt == "json_in_text":
                return items, "Record from the system:\n" + json.dumps(obj, ensure_ascii=False, indent=r.choice([None, 2]))
            inner = json.dumps(obj, ensure_ascii=False)
            event = json.dumps({"type": f"{b.domain}.record.updated", "payload": inner}, ensure_ascii=False)
            return items, "Webhook body we received:\n" + event
        items = [b.item(b.value(c), fmt) for c in chosen]
        if fmt == "line":
            upper = any(it.evasion == "upper_case" for it in items)
            return items, "\n".join(f"{b.label(it.value, upper)}: {it.embedded}" for it in items)
        return items, b.join([b.sentence(it) for it in items])

    def _json_payload(self, b: _Builder, chosen: list[str], placement: str) -> tuple[list[_Item], str]:
        r = b.r
        if b.domain == "dev" and r.random() < 0.6:
            fmt = r.choice(["env", "log", "http"])
            items = [b.item(b.value(c), fmt) for c in chosen]
            text = "\n".join(b.dev_line(it, fmt) for it in items)
            for it in items:
                it.format = "json_prose" if placement == "tool_call_args" else fmt
            if placement == "tool_call_args":
                return items, json.dumps({"command": text if fmt == "http" else f"cat <<'EOF' > .env\n{text}\nEOF",
                                          "cwd": "/srv/app", "timeout_s": 30}, ensure_ascii=False)
            if r.random() < 0.5:
                return items, text  # plain command output
            return items, json.dumps({"exit_code": 1, "stdout": text, "stderr": ""}, ensure_ascii=False)
        items = []
        for c in chosen:
            v = b.value(c, iso=r.random() < 0.6)
            items.append(b.item(v, _json_format(b, v)))
        obj = _json_obj(b, items)
        if placement == "tool_result" and r.random() < 0.3:
            for it in items:
                if it.format != "json_number":
                    it.format = "json_escaped"
            return items, json.dumps({"status": 200, "body": json.dumps(obj, ensure_ascii=False)}, ensure_ascii=False)
        return items, json.dumps(obj, ensure_ascii=False)

    # ---- clean cases ------------------------------------------------------------------------

    def _clean(self, r: random.Random, i: int) -> Case:
        locale = r.choice(LOCALES)
        lang = LOCALE_LANG[locale]
        placement = r.choice([p for p in PLACEMENTS if p != "name"])
        if r.random() < 0.3:
            kind, text = "prose", clean.prose(r, lang)
        else:
            kind = r.choice(sorted(clean.TECH))
            text = clean.TECH[kind](r)
        system = SYSTEM["dev" if kind != "prose" else r.choice(DOMAINS[:-1])]
        msgs: list[dict[str, Any]] = []
        body: dict[str, Any] = {"model": "m", "messages": msgs}
        if placement == "system":
            msgs += [{"role": "system", "content": system + "\n\nContext:\n" + text},
                     {"role": "user", "content": r.choice(ASK[lang])}]
        elif placement == "user":
            msgs += [{"role": "system", "content": system}, {"role": "user", "content": text}]
        elif placement == "history":
            msgs += [{"role": "system", "content": system}, {"role": "user", "content": r.choice(ASK[lang])},
                     {"role": "assistant", "content": text}, {"role": "user", "content": r.choice(ASK[lang])}]
        elif placement == "content_parts":
            msgs += [{"role": "system", "content": system},
                     {"role": "user", "content": [{"type": "text", "text": t} for t in _parts(r, text, [])]}]
        else:
            call_id = f"call_{r.getrandbits(48):012x}"
            args = clean.tool_args_clean(r) if placement == "tool_call_args" else json.dumps({"cmd": "make test"})
            result = text if placement == "tool_result" else clean.tool_result_clean(r)
            msgs += [{"role": "system", "content": system}, {"role": "user", "content": r.choice(ASK[lang])},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": call_id, "type": "function", "function": {"name": "query_metrics", "arguments": args}}]},
                     {"role": "tool", "tool_call_id": call_id, "content": result},
                     {"role": "user", "content": r.choice(ASK[lang])}]
            body["tools"] = [{"type": "function", "function": {"name": "query_metrics",
                                                               "description": "Query service metrics.",
                                                               "parameters": {"type": "object", "properties": {}}}}]
        return Case(id=f"c{self.seed}-{i:05d}", kind="clean", domain="dev" if kind != "prose" else "prose",
                    locale=locale, placement=placement, body=body, clean_kind=kind)

    # ---- bookkeeping ------------------------------------------------------------------------

    def _finish(self, b: _Builder, i: int, placement: str, body: dict[str, Any], items: list[_Item]) -> Case | None:
        folded = folded_request(body)
        planted = []
        for j, it in enumerate(items):
            v = it.value
            main = fold(it.surface if it.format == "json_number" else v.text)
            if folded.count(main) != 1 or len(main) < 2:
                return None  # the value is not unique in its request: draw again
            probes = [main]
            extra = [v.surname] if len(v.surname) >= 4 else []
            extra += list(v.extra_probes)
            if v.category in SECRETS and it.evasion in SPLITTING:
                extra += fragments(it.surface)
            for p in (fold(x) for x in extra):
                if len(p) >= 4 and p not in probes and folded.count(p) == 1:
                    probes.append(p)
            planted.append(Planted(
                id=f"p{self.seed}-{i:05d}-{j}", category=v.category, subtype=v.subtype, locale=b.locale,
                domain=b.domain, placement=placement, evasion=it.evasion, format=it.format,
                surface=it.surface, value=v.text, probes=tuple(probes)))
        return Case(id=f"r{self.seed}-{i:05d}", kind="pii", domain=b.domain, locale=b.locale,
                    placement=placement, body=body, planted=planted)


def _parts(r: random.Random, text: str, items: list[_Item]) -> list[str]:
    """Split a text into 2-4 content parts at word boundaries (the space dropped, as clients that
    send one part per paragraph or widget do), never inside a planted value; a cut right after
    a value is preferred."""
    taken: list[tuple[int, int]] = []
    for it in items:
        at = text.find(it.embedded)
        if at >= 0:
            taken.append((at, at + len(it.embedded)))
    spaces = [k for k, ch in enumerate(text) if ch in " \n" and 0 < k < len(text) - 1
              and not any(a <= k < e for a, e in taken)]
    after = [e for _, e in taken if e < len(text) and text[e] in " \n"]
    cuts = set(r.sample(after, min(len(after), 1)))
    if spaces:
        cuts |= set(r.sample(spaces, min(len(spaces), r.randint(1, 3))))
    if not cuts:  # a text without spaces (CJK prose): cut at a character boundary outside values
        spots = [k for k in range(1, len(text)) if not any(a < k < e for a, e in taken)]
        cuts = set(r.sample(spots, min(2, len(spots))))
        out, prev = [], 0
        for c in sorted(cuts):
            out.append(text[prev:c])
            prev = c
        return out + [text[prev:]]
    out, prev = [], 0
    for c in sorted(cuts):
        out.append(text[prev:c])
        prev = c + 1  # drop the separating space / newline
    out.append(text[prev:])
    return [p for p in out if p]


def generate(seed: int, n: int) -> list[Case]:
    factory = CaseFactory(seed)
    return [factory.case(i) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args(argv)
    for case in generate(args.seed, args.n):
        sys.stdout.write(json.dumps(case.to_json(), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
