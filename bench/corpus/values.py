"""Planted values: locale-appropriate personal data (Faker) and secrets in their real formats.

Identifiers carry valid checksums (the test checks them with python-stdnum): a detector that
validates checksums must still find them, and one that does not gains nothing. Secrets are
random but shaped as the issuers shape them (prefixes, lengths, alphabets, GitHub's CRC32 tail).
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from dataclasses import dataclass, field
from datetime import date

from faker import Faker

from bench.corpus.lang import LOCALE_LANG

PERSONAL = ("PERSON", "EMAIL", "PHONE", "ADDRESS", "DATE_OF_BIRTH", "NATIONAL_ID", "IBAN",
            "CREDIT_CARD", "BANK_ACCOUNT", "MEDICAL_RECORD", "DRIVER_LICENSE", "IP_ADDRESS")
SECRETS = ("AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "NPM_TOKEN", "HF_TOKEN", "TWILIO_KEY",
           "SENDGRID_KEY", "SLACK_TOKEN", "STRIPE_KEY", "OPENAI_KEY", "API_KEY_LINE", "PASSWORD",
           "BASIC_AUTH", "URL_PASSWORD", "JWT", "PRIVATE_KEY")
#: Categories whose value is mostly digits (spaced digits, JSON numbers apply).
DIGITS = frozenset({"PHONE", "CREDIT_CARD", "BANK_ACCOUNT", "MEDICAL_RECORD", "NATIONAL_ID", "IBAN"})

B62 = string.digits + string.ascii_letters


@dataclass(frozen=True)
class Value:
    """One value before it is embedded: its canonical text and how it is labelled."""

    category: str
    subtype: str
    text: str
    key: str                      # a JSON key / CSV column a developer would use
    glue: str = ""                # a short label that users glue to the value ("ssn", "tel")
    scheme: str = ""              # national id scheme label ("SSN", "Steuer-ID", ...)
    surname: str = ""             # PERSON: the family name (a probe of its own)
    number: int | None = None     # a JSON-number form, when the value is a plain number
    extra_probes: tuple[str, ...] = field(default=())


# ---- personal data ----------------------------------------------------------------------------

def person(f: Faker, locale: str) -> Value:
    first, last = f.first_name(), f.last_name()
    if locale == "zh_CN":
        text = last + first
    elif locale == "ja_JP":
        text = last + first
    else:
        text = f"{first} {last}"
    return Value("PERSON", locale, text, "name", surname=last if locale not in ("ja_JP", "zh_CN") else "")


def email(f: Faker, locale: str) -> Value:
    text = random.Random(f.random.random()).choice([f.email, f.free_email, f.company_email])()
    local = text.split("@", 1)[0]
    return Value("EMAIL", locale, text, "email", glue="mail", extra_probes=(local,) if len(local) >= 6 else ())


def _us_phone(r: random.Random) -> str:
    area = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}"
    ex = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}"
    line = f"{r.randint(0, 9999):04d}"
    return r.choice([f"({area}) {ex}-{line}", f"{area}-{ex}-{line}", f"{area}.{ex}.{line}",
                     f"+1 {area} {ex} {line}", f"+1-{area}-{ex}-{line}"])


def phone(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    number = None
    if locale == "ar_SA":  # Faker's ar_SA phones are US-shaped; Saudi mobiles are 05X XXX XXXX
        sub = f"5{r.randint(0, 9)}{r.randint(0, 9999999):07d}"
        text = r.choice([f"+966 {sub[:2]} {sub[2:5]} {sub[5:]}", f"0{sub}", f"+966{sub}"])
    elif locale == "en_US":
        text = _us_phone(r)
        digits = "".join(ch for ch in text if ch.isdigit())
        number = int(digits) if len(digits) == 10 else None  # a CRM column typed as a number
    else:
        text = f.phone_number().split("x")[0].strip()
    return Value("PHONE", locale, text, r.choice(["phone", "phone_number", "mobile"]), glue="tel", number=number)


def address(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    if locale == "ja_JP":
        street = f"{f.town()}{f.chome()}{f.ban()}{f.gou()}"
        text = f"{f.prefecture()}{f.city()}{street}"
    elif locale == "zh_CN":
        street = f"{f.street_name()}{r.randint(1, 999)}号"
        text = f"{f.province()}{f.city()}{f.district()}{street}"
    else:
        street = f.street_address().replace("\n", ", ")
        if locale == "en_US":
            tail = r.choice([f", {f.city()}, {f.state_abbr()} {f.zipcode()}", ""])
        elif locale in ("en_GB", "hi_IN"):
            tail = f", {f.city()} {f.postcode()}"
        elif locale == "pt_BR":
            tail = f", {f.city()} - {f.estado_sigla()}, {f.postcode()}"
        else:
            tail = f", {f.postcode()} {f.city()}"
        text = street + tail
    return Value("ADDRESS", locale, text, r.choice(["address", "street_address", "home_address"]),
                 extra_probes=(street,) if street != text else ())


_DOB_FORMATS = {
    "en_US": "%m/%d/%Y", "en_GB": "%d/%m/%Y", "de_DE": "%d.%m.%Y", "fr_FR": "%d/%m/%Y",
    "es_ES": "%d/%m/%Y", "it_IT": "%d/%m/%Y", "nl_NL": "%d-%m-%Y", "pt_BR": "%d/%m/%Y",
    "hi_IN": "%d/%m/%Y", "ar_SA": "%d/%m/%Y",
}


def dob(f: Faker, locale: str) -> Value:
    d: date = f.date_of_birth(minimum_age=18, maximum_age=90)
    if locale in ("ja_JP", "zh_CN"):
        text = f"{d.year}年{d.month}月{d.day}日"
    else:
        text = d.strftime(_DOB_FORMATS[locale])
    return Value("DATE_OF_BIRTH", locale, text, random.Random(f.random.random()).choice(
        ["dob", "date_of_birth", "birthdate"]), glue="dob")


def iso_dob(f: Faker, locale: str) -> Value:
    """A date of birth as a JSON API writes it."""
    d: date = f.date_of_birth(minimum_age=18, maximum_age=90)
    return Value("DATE_OF_BIRTH", locale, d.isoformat(), "dob", glue="dob")


# -- national identifiers (valid check digits) --

def _idnr(r: random.Random) -> str:
    """German Steuer-ID: 11 digits, one digit twice (or thrice) in the first ten, ISO 7064 check."""
    while True:
        digits = [r.randint(1, 9)] + [r.randint(0, 9) for _ in range(9)]
        counts = sorted((digits.count(d) for d in set(digits)), reverse=True)
        if counts[0] in (2, 3) and counts[1:].count(1) == len(counts) - 1:
            break
    product = 10
    for d in digits:
        s = (d + product) % 10 or 10
        product = (s * 2) % 11
    check = (11 - product) % 10
    return "".join(map(str, digits)) + str(check)


def _nino(r: random.Random) -> str:
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        pre = r.choice(first) + r.choice(second)
        if pre not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = f"{r.randint(0, 999999):06d}"
    return r.choice([f"{pre} {d[:2]} {d[2:4]} {d[4:]} {r.choice('ABCD')}", f"{pre}{d}{r.choice('ABCD')}"])


def _nhs(r: random.Random) -> str:
    while True:
        d = [r.randint(0, 9) for _ in range(9)]
        check = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, d)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def _my_number(r: random.Random) -> str:
    d = [r.randint(0, 9) for _ in range(11)]
    # weights from the right: 2..7 then 2..6
    total = sum(x * ((i % 6) + 2) for i, x in enumerate(reversed(d)))
    check = 0 if total % 11 <= 1 else 11 - total % 11
    s = "".join(map(str, d)) + str(check)
    return r.choice([s, f"{s[:4]} {s[4:8]} {s[8:]}"])


#: County codes (Beijing, Shanghai, Tianjin districts) that existed for every birth year drawn.
_CN_AREAS = ("110101", "110105", "110108", "310101", "310104", "120101", "120103")
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _ric(f: Faker, r: random.Random) -> str:
    """Chinese resident identity card number: area, birth date, sequence, ISO 7064 MOD 11-2."""
    born: date = f.date_of_birth(minimum_age=18, maximum_age=80)
    body = f"{r.choice(_CN_AREAS)}{born:%Y%m%d}{r.randint(0, 999):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _RIC_WEIGHTS)) % 11]


def _aadhaar(r: random.Random) -> str:
    """Indian Aadhaar: 12 digits, the first 2-9, a Verhoeff check digit."""
    from stdnum import verhoeff  # the check-digit algorithm only (no data)
    body = str(r.randint(2, 9)) + "".join(str(r.randint(0, 9)) for _ in range(10))
    s = body + verhoeff.calc_check_digit(body)
    return r.choice([s, f"{s[:4]} {s[4:8]} {s[8:]}"])


def national_id(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    if locale == "hi_IN":
        if r.random() < 0.6:
            return Value("NATIONAL_ID", "in.aadhaar", _aadhaar(r), "aadhaar", glue="UID", scheme="आधार नंबर")
        pan = ("".join(r.choice(string.ascii_uppercase) for _ in range(3)) + r.choice("PCHFATBLJG")
               + r.choice(string.ascii_uppercase) + f"{r.randint(0, 9999):04d}" + r.choice(string.ascii_uppercase))
        return Value("NATIONAL_ID", "in.pan", pan, "pan", glue="PAN", scheme="PAN")
    if locale == "ar_SA":  # Saudi national / resident id: 10 digits, 1 or 2 first, Luhn check
        text = _luhn_complete(r.choice("12"), 10, r)
        return Value("NATIONAL_ID", "sa.nid", text, "national_id", glue="ID", scheme="رقم الهوية الوطنية",
                     number=int(text))
    if locale == "en_US":
        text = f.ssn()
        return Value("NATIONAL_ID", "us.ssn", text, "ssn", glue="ssn", scheme="SSN")
    if locale == "en_GB":
        if r.random() < 0.5:
            return Value("NATIONAL_ID", "gb.nino", _nino(r), "nino", glue="NI", scheme="National Insurance number")
        return Value("NATIONAL_ID", "gb.nhs", _nhs(r), "nhs_number", glue="NHS", scheme="NHS number")
    if locale == "de_DE":
        text = _idnr(r)
        return Value("NATIONAL_ID", "de.idnr", text, "steuer_id", glue="IdNr", scheme="Steuer-ID",
                     number=int(text))
    if locale == "fr_FR":
        text = f.ssn()
        return Value("NATIONAL_ID", "fr.nir", text, "nir", glue="NIR", scheme="numéro de sécurité sociale",
                     number=int(text) if text.isdigit() else None)
    if locale == "es_ES":
        if r.random() < 0.6:
            return Value("NATIONAL_ID", "es.dni", f.nif(), "dni", glue="DNI", scheme="DNI")
        return Value("NATIONAL_ID", "es.nie", f.nie(), "nie", glue="NIE", scheme="NIE")
    if locale == "it_IT":
        return Value("NATIONAL_ID", "it.codicefiscale", f.ssn(), "codice_fiscale", glue="CF",
                     scheme="codice fiscale")
    if locale == "nl_NL":
        text = f.ssn()
        return Value("NATIONAL_ID", "nl.bsn", text, "bsn", glue="BSN", scheme="BSN", number=int(text))
    if locale == "pt_BR":
        text = f.cpf()
        return Value("NATIONAL_ID", "br.cpf", text, "cpf", glue="CPF", scheme="CPF")
    if locale == "ja_JP":
        text = _my_number(r)
        return Value("NATIONAL_ID", "jp.in", text, "my_number", glue="マイナンバー", scheme="マイナンバー")
    if locale == "zh_CN":
        text = _ric(f, r)
        return Value("NATIONAL_ID", "cn.ric", text, "id_card", glue="身份证", scheme="身份证号")
    raise ValueError(locale)


_IBAN_LOCALES = {"en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR"}


def _sa_iban(r: random.Random) -> str:
    bban = f"{r.choice(['10', '20', '45', '55', '60', '80'])}" + "".join(str(r.randint(0, 9)) for _ in range(18))
    check = 98 - int(bban + "281000") % 97  # "SA" -> 28 10, then "00"
    return f"SA{check:02d}{bban}"


def iban(f: Faker, locale: str, fakers: dict[str, Faker]) -> Value:
    r = random.Random(f.random.random())
    if locale == "ar_SA":
        compact = _sa_iban(r)
        text = compact if r.random() < 0.5 else " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
        return Value("IBAN", "SA", text, "iban", glue="IBAN")
    src = f
    if locale not in _IBAN_LOCALES:
        src = fakers[r.choice(sorted(_IBAN_LOCALES - {"pt_BR"}))]
        src.seed_instance(r.getrandbits(64))
    compact = src.iban()
    text = compact if r.random() < 0.5 else " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return Value("IBAN", compact[:2], text, r.choice(["iban", "account_iban"]), glue="IBAN")


def _luhn_complete(prefix: str, length: int, r: random.Random) -> str:
    body = prefix + "".join(str(r.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def card(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    brand = r.choice(["visa", "mastercard2", "mastercard5", "amex", "discover", "jcb", "unionpay"])
    if brand == "visa":
        digits = _luhn_complete("4", 16, r)
    elif brand == "mastercard2":
        digits = _luhn_complete(str(r.randint(222100, 272099)), 16, r)
    elif brand == "mastercard5":
        digits = _luhn_complete(str(r.randint(51, 55)), 16, r)
    elif brand == "amex":
        digits = _luhn_complete(r.choice(["34", "37"]), 15, r)
    elif brand == "discover":
        digits = _luhn_complete(r.choice(["6011", "65", "644"]), 16, r)
    elif brand == "jcb":
        digits = _luhn_complete(str(r.randint(3528, 3589)), 16, r)
    else:
        digits = _luhn_complete("62" + str(r.randint(2126, 9925)).zfill(4)[:4], 16, r)
    sep = r.choice([" ", "-", ""])
    if len(digits) == 15:
        text = sep.join([digits[:4], digits[4:10], digits[10:]]) if sep else digits
    else:
        text = sep.join(digits[i:i + 4] for i in range(0, 16, 4)) if sep else digits
    return Value("CREDIT_CARD", brand, text, r.choice(["card", "card_number", "pan"]), glue="card",
                 number=int(digits))


def bank_account(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    n = r.randint(8, 12)
    text = str(r.randint(1, 9)) + "".join(str(r.randint(0, 9)) for _ in range(n - 1))
    return Value("BANK_ACCOUNT", locale, text, r.choice(["account_number", "acct_no", "bank_account"]),
                 glue="acct", number=int(text))


def medical_record(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    text = str(r.randint(1, 9)) + "".join(str(r.randint(0, 9)) for _ in range(r.randint(6, 9)))
    return Value("MEDICAL_RECORD", locale, text, r.choice(["mrn", "patient_id", "medical_record_number"]),
                 glue="MRN", number=int(text))


def driver_license(f: Faker, locale: str) -> Value:
    r = random.Random(f.random.random())
    if locale == "en_GB":  # DVLA: 5 of surname, decade, month, day, year, initials, check, 2 letters
        sur = (f.last_name().upper() + "99999")[:5]
        text = (f"{sur}{r.randint(0, 9)}{r.choice(['0', '1', '5', '6'])}{r.randint(1, 9)}"
                f"{r.randint(10, 28)}{r.randint(0, 9)}{r.choice(string.ascii_uppercase)}"
                f"{r.choice(string.ascii_uppercase)}9{r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)}")
    else:  # a few US state formats
        text = r.choice([
            r.choice(string.ascii_uppercase) + "".join(str(r.randint(0, 9)) for _ in range(7)),      # CA
            r.choice(string.ascii_uppercase) + "".join(str(r.randint(0, 9)) for _ in range(12)),     # FL
            "".join(str(r.randint(0, 9)) for _ in range(9)),                                        # NY
            f"{r.choice(string.ascii_uppercase)}{r.randint(100, 999)}-{r.randint(1000, 9999)}-{r.randint(1000, 9999)}",  # IL
        ])
    return Value("DRIVER_LICENSE", locale, text, r.choice(["dl_number", "drivers_license"]), glue="DL")


def ip_address(f: Faker, locale: str) -> Value:
    return Value("IP_ADDRESS", "v4", f.ipv4_public(), "client_ip", glue="ip")


# ---- secrets ----------------------------------------------------------------------------------

def _rand(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = B62[d] + out
    return out.rjust(width, "0")


def _checksummed(prefix: str, r: random.Random, n: int = 30) -> str:
    body = _rand(r, B62, n)
    return prefix + body + _b62(zlib.crc32(body.encode()), 6)


def _password(f: Faker, r: random.Random, special: bool = True) -> str:
    while True:
        p = f.password(length=r.randint(10, 16), special_chars=special)
        if special:
            p = p.replace("{", "!").replace("}", "#").replace("\\", "%")
        if any(c.isdigit() for c in p) and any(c.isalpha() for c in p):
            return p


def secret(f: Faker, category: str) -> Value:
    r = random.Random(f.random.random())
    if category == "AWS_ACCESS_KEY":
        return Value(category, "akia", r.choice(["AKIA", "ASIA"]) + _rand(r, string.ascii_uppercase + "234567", 16),
                     "aws_access_key_id", glue="key")
    if category == "AWS_SECRET_KEY":
        return Value(category, "aws", _rand(r, string.ascii_letters + string.digits + "/+", 40),
                     "aws_secret_access_key", glue="secret")
    if category == "GITHUB_TOKEN":
        kind = r.choice(["ghp_", "gho_", "ghs_", "github_pat_"])
        if kind == "github_pat_":
            text = "github_pat_" + _rand(r, B62, 22) + "_" + _rand(r, B62, 59)
        else:
            text = _checksummed(kind, r)
        return Value(category, kind.rstrip("_"), text, "github_token", glue="token")
    if category == "NPM_TOKEN":
        return Value(category, "npm", _checksummed("npm_", r), "npm_token", glue="token")
    if category == "HF_TOKEN":
        return Value(category, "hf", "hf_" + _rand(r, string.ascii_letters, 34), "hf_token", glue="token")
    if category == "TWILIO_KEY":
        if r.random() < 0.6:
            return Value(category, "sid", "SK" + _rand(r, "0123456789abcdef", 32), "twilio_api_key", glue="SID")
        return Value(category, "auth_token", _rand(r, "0123456789abcdef", 32), "twilio_auth_token", glue="token")
    if category == "SENDGRID_KEY":
        url = string.ascii_letters + string.digits + "-_"
        return Value(category, "sg", "SG." + _rand(r, url, 22) + "." + _rand(r, url, 43), "sendgrid_api_key",
                     glue="key")
    if category == "SLACK_TOKEN":
        text = (f"{r.choice(['xoxb', 'xoxp'])}-{r.randint(10**10, 10**12)}-{r.randint(10**10, 10**12)}-"
                + _rand(r, B62, 24))
        return Value(category, text[:4], text, "slack_token", glue="token")
    if category == "STRIPE_KEY":
        return Value(category, "sk_live", r.choice(["sk_live_", "rk_live_"]) + _rand(r, B62, r.choice([24, 99])),
                     "stripe_secret_key", glue="key")
    if category == "OPENAI_KEY":
        return Value(category, "sk-proj", "sk-proj-" + _rand(r, B62 + "-_", 64) + "T3BlbkFJ" + _rand(r, B62 + "-_", 64),
                     "openai_api_key", glue="key")
    if category == "API_KEY_LINE":
        text = r.choice([_rand(r, "0123456789abcdef", 32), _rand(r, B62, r.randint(24, 40)),
                         _rand(r, string.ascii_letters + string.digits + "-_", 43)])
        return Value(category, "generic", text, r.choice(["api_key", "apiKey", "x_api_key", "client_secret"]),
                     glue="apikey")
    if category == "PASSWORD":
        return Value(category, "prose", _password(f, r), "password", glue="pw")
    if category == "BASIC_AUTH":
        user = f.user_name()
        pw = _password(f, r, special=False)
        token = base64.b64encode(f"{user}:{pw}".encode()).decode()
        return Value(category, "basic", token, "authorization", glue="Basic",
                     extra_probes=(pw,))
    if category == "URL_PASSWORD":
        return Value(category, "url", _password(f, r, special=False), "password", glue="pw")
    if category == "JWT":
        def seg(obj: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
        text = (seg({"alg": "HS256", "typ": "JWT"}) + "." +
                seg({"sub": str(r.randint(10**6, 10**9)), "iat": r.randint(1.6e9, 1.8e9), "scope": "read write"})
                + "." + _rand(r, string.ascii_letters + string.digits + "-_", 43))
        return Value(category, "hs256", text, "access_token", glue="Bearer")
    if category == "PRIVATE_KEY":
        body = base64.b64encode(bytes(r.getrandbits(8) for _ in range(121))).decode()
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        text = "-----BEGIN EC PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END EC PRIVATE KEY-----"
        return Value(category, "ec", text, "private_key", extra_probes=tuple(line for line in lines if len(line) >= 16))
    raise ValueError(category)


def make_value(category: str, f: Faker, locale: str, fakers: dict[str, Faker]) -> Value:
    makers = {
        "PERSON": person, "EMAIL": email, "PHONE": phone, "ADDRESS": address, "DATE_OF_BIRTH": dob,
        "NATIONAL_ID": national_id, "CREDIT_CARD": card, "BANK_ACCOUNT": bank_account,
        "MEDICAL_RECORD": medical_record, "DRIVER_LICENSE": driver_license, "IP_ADDRESS": ip_address,
    }
    if category == "IBAN":
        return iban(f, locale, fakers)
    if category in makers:
        return makers[category](f, locale)
    return secret(f, category)


def language(locale: str) -> str:
    return LOCALE_LANG[locale]
