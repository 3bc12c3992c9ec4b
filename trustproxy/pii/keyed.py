"""Values typed by their key: ``"dob": "1981-07-22"``, ``MRN=...``, a CSV column ``ssn``.

A key is the strongest context a value has. :func:`keyed_spans` takes the labelled values of
:func:`trustproxy.pii.structure.fields` and reports a value as the key's entity type when the
value has that type's shape (a date for a birth date, a Luhn-valid number for a card ...): the
key alone never turns ``"password": null`` or ``"name": "nginx"`` into a finding.

Keys compare in a folded form (lower case, letters and digits only: ``Date-of-Birth``,
``dateOfBirth`` and ``date_of_birth`` are one key), exactly or by a listed suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex

from trustproxy.pii.structure import Field

__all__ = ["KeyedSpan", "keyed_spans", "key_type", "SCORE"]

SCORE = 0.9


@dataclass(frozen=True)
class KeyedSpan:
    start: int
    end: int
    entity_type: str


def fold_key(key: str) -> str:
    """Lower case, letters and digits only, accents dropped (``Numéro de compte`` is
    ``numero_de_compte``)."""
    import unicodedata

    k = key.casefold()
    if not k.isascii():
        k = "".join(c for c in unicodedata.normalize("NFKD", k) if not unicodedata.combining(c))
    return "".join(c for c in k if c.isalnum())


# exact folded keys -> type
_EXACT: dict[str, str] = {}
# folded key suffixes -> type (checked longest first)
_SUFFIX: dict[str, str] = {}


def _add(etype: str, exact: Iterable[str] = (), suffix: Iterable[str] = ()) -> None:
    for k in exact:
        _EXACT[fold_key(k)] = etype
    for k in suffix:
        _SUFFIX[fold_key(k)] = etype


_add("PERSON", exact=[
    "full_name", "fullname", "first_name", "last_name", "given_name", "family_name",
    "middle_name", "maiden_name", "surname", "forename", "patient", "patient_name", "customer",
    "customer_name", "client_name", "contact_name", "employee_name", "account_holder",
    "cardholder", "card_holder", "cardholder_name", "holder_name", "guardian", "next_of_kin",
    "emergency_contact", "recipient_name", "sender_name", "spouse", "beneficiary",
    "nombre", "apellido", "apellidos", "nombre_completo", "nom", "prénom", "prenom",
    "nom_complet", "vorname", "nachname", "familienname", "cognome", "nome", "nome_completo",
    "naam", "voornaam", "achternaam", "氏名", "名前", "姓名", "名字", "患者", "患者名"],
    suffix=["patientname", "customername", "fullname", "firstname", "lastname", "holdername",
            "contactname", "employeename"])
_add("DATE_OF_BIRTH", exact=[
    "dob", "date_of_birth", "birth_date", "birthdate", "birthday", "born", "geburtsdatum",
    "geboren", "fecha_de_nacimiento", "fecha_nacimiento", "date_de_naissance",
    "data_di_nascita", "data_de_nascimento", "geboortedatum", "生年月日", "出生日期"],
    suffix=["dob", "dateofbirth", "birthdate"])
_add("DATE_OF_BIRTH", exact=["जन्म तिथि", "जन्मतिथि", "تاريخ الميلاد", "geboortedatum", "誕生日"])
_add("US_BANK_NUMBER", exact=["खाता संख्या", "口座番号", "رقم الحساب", "银行账号", "账号", "iban_account",
                              "numero_de_compte", "numero di conto", "rekeningnummer", "conta"])
_add("MEDICAL_RECORD_NUMBER", exact=["n° de dossier patient", "numero de dossier", "dossier_patient",
                                     "رقم الملف الطبي", "カルテ番号", "病历号", "patiëntnummer",
                                     "patientennummer", "numero_cartella", "prontuario",
                                     "historia_clinica"])
_add("PHONE_NUMBER", exact=["電話番号", "电话号码", "फ़ोन", "फोन", "رقم الهاتف", "هاتف", "الهاتف",
                            "telefone", "telefoon", "teléfono", "téléphone", "rufnummer", "携帯番号",
                            "मोबाइल", "جوال"])
_add("US_BANK_NUMBER", exact=["numéro de compte", "número de cuenta", "número da conta",
                              "numero di conto", "kontonummer", "konto", "conto", "compte", "cuenta",
                              "rekening", "口座", "银行账号", "खाता नंबर"])
_add("MEDICAL_RECORD_NUMBER", exact=["मेडिकल रिकॉर्ड नंबर", "मरीज़ का रिकॉर्ड नंबर", "historia clínica",
                                     "cartella clinica", "numero di cartella clinica", "cartella clinica n.",
                                     "número do prontuário", "numéro de dossier patient", "カルテ"])
_add("US_DRIVER_LICENSE", exact=["führerscheinnummer", "führerschein", "permis de conduire",
                                 "permiso de conducir", "patente", "patente n.", "rijbewijsnummer",
                                 "rijbewijs", "cnh", "運転免許証番号", "驾驶证号", "ड्राइविंग लाइसेंस",
                                 "رخصة القيادة", "dl#"])
_add("EMAIL_ADDRESS", exact=["メールアドレス", "电子邮件", "邮箱", "ईमेल", "البريد الإلكتروني"])
_add("PERSON", exact=["नाम", "الاسم", "姓名", "氏名", "お名前"])
_add("IN_AADHAAR", exact=["आधार", "आधार नंबर", "aadhaar", "aadhaar_number", "aadhar"])
_add("IN_PAN", exact=["pan", "pan_number", "pan_no", "pan_card", "permanent_account_number", "पैन", "पैन नंबर",
                      "पैन कार्ड"])
_add("MEDICAL_RECORD_NUMBER", exact=[
    "mrn", "medical_record_number", "medical_record", "patient_id", "patient_number",
    "chart_number", "health_record_number"], suffix=["mrn"])
_add("PASSWORD", exact=["password", "passwd", "pwd", "pass", "passphrase", "passcode",
                        "contraseña", "passwort", "mot_de_passe", "パスワード", "密码"],
     suffix=["password", "passwd", "passphrase"])
_add("US_BANK_NUMBER", exact=[
    "account_number", "account_no", "acct_no", "acct_number", "acct", "bank_account",
    "bank_account_number", "checking_account", "savings_account", "kontonummer",
    "numero_de_cuenta"], suffix=["accountnumber", "acctnumber", "acctno", "accountno"])
_add("ABA_ROUTING_NUMBER", exact=["routing_number", "routing", "aba", "rtn", "aba_number"],
     suffix=["routingnumber"])
_add("US_SSN", exact=["ssn", "social_security_number", "social_security", "socialsecurityno"],
     suffix=["ssn"])
_add("CREDIT_CARD", exact=["card", "card_number", "cc", "cc_number", "credit_card", "pan",
                           "card_no", "kreditkarte", "tarjeta", "carte"],
     suffix=["cardnumber", "creditcard", "ccnumber", "cardno"])
_add("PHONE_NUMBER", exact=["phone", "tel", "telephone", "mobile", "cell", "fax", "telefon",
                            "telefono", "téléphone", "telephone_number", "handy", "movil",
                            "portable", "cellulare", "電話", "电话", "手机"],
     suffix=["phone", "phonenumber", "mobile", "telephone", "tel"])
_add("EMAIL_ADDRESS", exact=["email", "e_mail", "mail", "correo"], suffix=["email"])
_add("STREET_ADDRESS", exact=[
    "address", "street", "street_address", "address1", "address_line1", "address_line_1",
    "addr", "home_address", "mailing_address", "billing_address", "shipping_address",
    "adresse", "anschrift", "direccion", "dirección", "indirizzo", "adres", "endereco",
    "endereço", "住所", "地址"], suffix=["streetaddress", "homeaddress", "mailingaddress",
                                        "billingaddress", "shippingaddress", "addressline1"])
_add("US_DRIVER_LICENSE", exact=["dl", "dl_number", "drivers_license", "driver_license",
                                 "driving_licence", "drivers_licence", "license_number",
                                 "licence_number", "dln"],
     suffix=["driverslicense", "driverlicense", "drivinglicence", "driverslicence"])
_add("US_PASSPORT", exact=["passport", "passport_number", "passport_no"],
     suffix=["passportnumber", "passportno"])
_add("IBAN_CODE", exact=["iban"], suffix=["iban"])
_add("AWS_SECRET_KEY", exact=["aws_secret_access_key", "secret_access_key", "aws_secret_key"],
     suffix=["secretaccesskey"])
_add("GENERIC_SECRET", exact=[
    "api_key", "apikey", "secret", "secret_key", "client_secret", "access_token", "auth_token",
    "refresh_token", "token", "bearer", "private_token", "x_api_key", "session_token",
    "webhook_secret", "signing_secret", "app_secret", "consumer_secret"],
    suffix=["apikey", "secret", "token", "secretkey", "accesskey", "authkey", "privatekey"])
_add("DE_TAX_ID", exact=["steuer_id", "steueridentifikationsnummer", "idnr", "tax_id_de"])
_add("ES_NIF", exact=["dni", "nif"])
_add("ES_NIE", exact=["nie"])
_add("FR_NIR", exact=["nir", "numero_de_securite_sociale", "numéro_de_sécurité_sociale",
                      "insee"])
_add("IT_FISCAL_CODE", exact=["codice_fiscale", "cf", "codicefiscale"])
_add("NL_BSN", exact=["bsn", "burgerservicenummer"])
_add("UK_NHS", exact=["nhs", "nhs_number", "nhs_no"])
_add("JP_MY_NUMBER", exact=["my_number", "mynumber", "マイナンバー", "個人番号"])
_add("BR_CPF", exact=["cpf"])
_add("SA_NATIONAL_ID", exact=["iqama", "iqama_number", "saudi_id", "national_id", "national_id_number",
                              "رقم الهوية", "رقم الهوية الوطنية", "الهوية الوطنية", "رقم الإقامة"])
_add("CN_RESIDENT_ID", exact=["身份证", "身份证号", "身份证号码", "resident_id", "id_card"])
_add("UK_NINO", exact=["nino", "ni_number", "national_insurance_number",
                       "national_insurance"])

# a bare "name" names services and steps as often as people: see _person(specific=False)
_BARE_NAME_KEYS = frozenset({"name", "displayname", "contact", "owner", "assignee", "reporter",
                             "author", "requester", "user_full_name", "signedby", "from", "to"})
# keys of a map whose member names are people or their numbers and addresses
# (``"contacts": {"+44 ...": {...}, "Ana Ruiz": {...}}``)
_CONTACT_MAPS = frozenset(fold_key(k) for k in (
    "contacts", "contact_list", "phonebook", "phone_book", "address_book", "addressbook",
    "phones", "phone_numbers", "recipients", "participants", "attendees", "guests",
    "emergency_contacts", "next_of_kin", "customers", "clients", "patients", "employees",
    "people", "persons", "kontakte", "contactos", "contatos", "contatti", "contacten",
    "連絡先", "联系人", "संपर्क", "جهات الاتصال"))
_CONTACT_MAP_SUFFIXES = tuple(fold_key(k) for k in ("contacts", "phones", "phonenumbers", "recipients"))
# GIT_AUTHOR_NAME, committer_name: a person as often as a bot (read like a bare "name")
_BARE_NAME_SUFFIXES = ("authorname", "committername", "ownername", "assigneename", "reportername")
_SUFFIXES = sorted(_SUFFIX.items(), key=lambda kv: -len(kv[0]))
# suffix matches that are no such key ("hostname" is no name, "tokenizer" no token)
_NOT_KEYS = frozenset(fold_key(k) for k in (
    "max_tokens", "tokens", "num_tokens", "token_count", "token_type", "token_url",
    "token_endpoint", "secret_name", "secret_ref", "secretref", "passwordless", "password_policy",
    "password_hint", "mobile_app"))


def key_type(key: str) -> str | None:
    """The entity type a key announces, or None."""
    k = fold_key(key)
    if not k or k in _NOT_KEYS:
        return None
    t = _EXACT.get(k)
    if t is not None:
        return t
    for suf, etype in _SUFFIXES:
        if k.endswith(suf) and len(k) - len(suf) <= 24:
            return etype
    return None


# --- value shapes ---------------------------------------------------------------------------

_PLACEHOLDER = regex.compile(
    r"""(?ix)^(?:[$%{<\[(].*|\*+|x+|\.+|-+|_+|none|null|nil|true|false|undefined|n/?a|tbd|todo
        |changeme|redacted|hidden|secret|password|example|\?+|
        (?:[a-z_][a-z_]*\.)*[a-z_]+[(\[]?)$""")
_DATE = regex.compile(
    r"(?i)^(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)?\d{2}|(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}"
    r"|(?:19|20)\d{2}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"
    r"|\d{1,2}\.?\s+\p{L}{3,12}\.?\s+(?:19|20)\d{2}|\p{L}{3,12}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+"
    r"(?:19|20)\d{2}|\d{1,2}\s+de\s+\p{L}{3,12}\s+de\s+(?:19|20)\d{2})(?:T[\d:.Z+\-]*)?$")
_NAME_WORD = regex.compile(r"^\p{L}[\p{L}\p{M}'’.\-]*$")  # marks: Devanagari vowel signs
_TECH_WORDS = frozenset("""a an the and or of for to in on at by with from up down run build test
tests deploy install setup set check checkout lint release publish upload cache job jobs step
steps service server app api web worker main default config prod staging dev local database db
cluster node pod container image task tasks workflow pipeline push pull merge update create
delete get list start stop restart backend frontend admin root user users guest system bot
""".split())


_CODE = regex.compile(r"^(?:self\.|os\.|env\.|process\.env|None\)?$|str$|int$|bool$)"
                      r"|[A-Za-z_]\w*\(|\s=\s|^\$\{")


def _digits(v: str) -> str:
    return "".join(c for c in v if c.isdigit())


def _person(v: str, specific: bool) -> bool:
    words = v.split()
    if not 1 <= len(words) <= 5 or len(v) > 80:
        return False
    if not all(_NAME_WORD.match(w.strip(",")) for w in words):
        return False
    if any(w.lower() in _TECH_WORDS for w in words):
        return False
    if specific:
        return True
    # a bare "name" key names services and steps as often as people: two or more words,
    # none of them code-like; or a name in a script without spaces (高橋淳, 王红梅)
    if len(words) == 1 and regex.fullmatch(r"[\p{Han}\p{Hiragana}\p{Katakana}ー・]{2,6}", v.strip()):
        return True
    return len(words) >= 2 and not any("-" in w and w.islower() for w in words)


def _not_placeholder(v: str) -> bool:
    from trustproxy.pii.recognizers import sigil_random

    v = v.strip()
    return bool(v) and (not _PLACEHOLDER.match(v) or (v[:1] in "$%{<[(" and sigil_random(v)))


def _secret(v: str) -> bool:
    v = v.strip()
    if len(v) < 8 or " " in v or not _not_placeholder(v):
        return False
    has_digit = any(c.isdigit() for c in v)
    has_upper = any(c.isupper() for c in v)
    has_lower = any(c.islower() for c in v)
    return (has_digit and (has_upper or has_lower)) or (has_upper and has_lower and len(v) >= 16)


def _luhn(v: str) -> bool:
    from trustproxy.pii.recognizers import luhn_valid
    d = _digits(v)
    return 12 <= len(d) <= 19 and luhn_valid(d) and regex.fullmatch(r"[\d \-]+", v) is not None


def _stdnum(module: str) -> Callable[[str], bool]:
    def check(v: str) -> bool:
        import importlib
        try:
            mod = importlib.import_module(f"stdnum.{module}")
            return bool(mod.is_valid(v))
        except Exception:  # noqa: BLE001 - malformed input
            return False
    return check


def _nino(v: str) -> bool:
    from trustproxy.pii.recognizers import nino_valid
    return nino_valid(v)


def _iban(v: str) -> bool:
    from trustproxy.pii.recognizers import iban_valid
    return iban_valid(v)


def _aba(v: str) -> bool:
    d = _digits(v)
    return len(d) == 9 and sum(int(x) * w for x, w in zip(d, (3, 7, 1) * 3)) % 10 == 0


def _id_like(min_digits: int, max_len: int = 24) -> Callable[[str], bool]:
    def check(v: str) -> bool:
        v = v.strip()
        return (len(v) <= max_len and " " not in v.strip()
                and sum(c.isdigit() for c in v) >= min_digits
                and regex.fullmatch(r"[A-Za-z0-9#\-/.]+", v) is not None)
    return check


_SHAPES: dict[str, Callable[[str], bool]] = {
    "DATE_OF_BIRTH": lambda v: _DATE.match(v.strip()) is not None,
    "MEDICAL_RECORD_NUMBER": _id_like(4),
    "PASSWORD": lambda v: _not_placeholder(v) and len(v.strip()) >= 4,
    "US_BANK_NUMBER": lambda v: 6 <= len(_digits(v)) <= 17
    and regex.fullmatch(r"[\d \-]+", v.strip()) is not None,
    "ABA_ROUTING_NUMBER": _aba,
    "US_SSN": lambda v: regex.fullmatch(r"\d{3}[ \-.]?\d{2}[ \-.]?\d{4}", v.strip()) is not None,
    "CREDIT_CARD": lambda v: _luhn(v.strip()),
    "PHONE_NUMBER": lambda v: 7 <= len(_digits(v)) <= 15
    and regex.fullmatch(r"[+(]?[\d][\d ().\-/]{5,24}\d(?:\s*(?:x|ext\.?)\s*\d{1,5})?", v.strip())
    is not None,
    "EMAIL_ADDRESS": lambda v: regex.fullmatch(r"[^\s@]+@[^\s@]+\.[^\s@]+", v.strip()) is not None,
    "STREET_ADDRESS": lambda v: any(c.isdigit() for c in v) and len(v.split()) >= 2
    and any(c.isalpha() for c in v) and len(v) <= 160,
    "US_DRIVER_LICENSE": _id_like(4, 20),
    "US_PASSPORT": _id_like(5, 12),
    "IBAN_CODE": _iban,
    "AWS_SECRET_KEY": lambda v: regex.fullmatch(r"[A-Za-z0-9/+]{40}", v.strip()) is not None,
    "GENERIC_SECRET": _secret,
    "DE_TAX_ID": _stdnum("de.idnr"),
    "ES_NIF": _stdnum("es.dni"),
    "ES_NIE": _stdnum("es.nie"),
    "FR_NIR": _stdnum("fr.nir"),
    "IT_FISCAL_CODE": _stdnum("it.codicefiscale"),
    "NL_BSN": _stdnum("nl.bsn"),
    "UK_NINO": _nino,
    "IN_AADHAAR": _stdnum("in_.aadhaar"),
    "IN_PAN": lambda v: __import__("trustproxy.pii.recognizers", fromlist=["x"]).pan_valid(v),
    "UK_NHS": _stdnum("gb.nhs"),
    "BR_CPF": _stdnum("br.cpf"),
    "CN_RESIDENT_ID": _stdnum("cn.ric"),
    "SA_NATIONAL_ID": lambda v: __import__("trustproxy.pii.recognizers", fromlist=["x"]).sa_national_id_valid(v),
    "JP_MY_NUMBER": lambda v: __import__("trustproxy.pii.recognizers", fromlist=["x"]).my_number_valid(v),
}


# A value of a ``key: value`` / ``KEY=value`` line that goes on on the next line: one token
# alone on it, no key of its own (YAML folds such a line into the value; a .env file has no
# line without "="), e.g. a token re-flowed by a terminal: ``TOKEN=cf4155\n402fab...``.
_CONTINUATION = regex.compile(r"(?:\r\n|\r|\n)([^\s=:\"'{}\[\],]{1,200})(?=[ \t]*(?:\r\n|\r|\n|$|[\"']))")
_BROKEN_TYPES = frozenset({"PASSWORD", "GENERIC_SECRET", "AWS_SECRET_KEY"})


def _continuation(text: str, end: int) -> int | None:
    m = _CONTINUATION.match(text, end)
    if m is None:
        return None
    tok = m.group(1)
    # a token piece (a digit, or mixed case), not a word or a heredoc end ("EOF", "done")
    if any(c.isdigit() for c in tok) or (any(c.isupper() for c in tok) and any(c.islower() for c in tok)) \
            or (len(tok) <= 2 and tok.isalnum()):
        return m.end(1)
    return None


def _contact_map(key: str) -> bool:
    k = fold_key(key)
    return k in _CONTACT_MAPS or k.endswith(_CONTACT_MAP_SUFFIXES)


def _decoded(value: str) -> str:
    """A JSON string's content as it reads (escapes decoded, also one level of escaped JSON
    down); as written if it does not decode."""
    from trustproxy.pii.structure import decode_json_string

    for _ in range(3):
        if "\\" not in value:
            break
        dec = decode_json_string(value)
        if dec is None:
            break
        value = dec
    return value


def _member_type(value: str) -> str | None:
    """The type of a member name of a contact map: a phone number, an address or a name."""
    from trustproxy.pii.normalize import normalize

    v = normalize(_decoded(value))[0].strip()
    for etype in ("PHONE_NUMBER", "EMAIL_ADDRESS"):
        if _SHAPES[etype](v):
            return etype
    # a full name; one word only in a script without case (a word "Active" counts contacts)
    if not _person(v, specific=True) or v.islower():
        return None
    return "PERSON" if len(v.split()) >= 2 or not any(c.isupper() or c.islower() for c in v) else None


# the rest of a name on the next line ("Naam: Lotte\nvan Dijk"): particles and a capitalised
# word, and nothing else on the line
_NAME_REST = regex.compile(
    r"(?:\r\n|\r|\n)[ \t]*((?:(?:van|von|de|der|den|da|di|du|del|della|dos|das|do|le|la|ten|ter)[ \t]+){0,3}"
    r"\p{Lu}[\p{Ll}'’\-]+)[ \t]*(?=\r?\n|$)")
_NAME_PARTICLE = regex.compile(r"(?:van|von|de|der|den|da|di|du|del|della|dos|das|do|le|la|ten|ter)\s")


def _name_rest(text: str, end: int) -> int | None:
    m = _NAME_REST.match(text, end)
    return m.end(1) if m is not None and _NAME_PARTICLE.match(m.group(1)) else None


_GLUED_LABEL = regex.compile(r"([A-Za-z][A-Za-z_#]{1,15})(?=\d)")
_BROKEN_DIGITS = regex.compile(r"(?<=\d)[ \t]+(?=\d)")


def keyed_spans(text: str, found: Iterable[Field], wanted: set[str]) -> list[KeyedSpan]:
    """Values of ``found`` whose key announces a wanted type and whose shape fits it; member
    names of a contact map (``"contacts": {...}``) that are numbers, addresses or names."""
    out: list[KeyedSpan] = []
    for f in found:
        if f.kind == "member":
            mtype = _member_type(text[f.start:f.end]) if _contact_map(f.key) else None
            if mtype is not None and mtype in wanted:
                out.append(KeyedSpan(f.start, f.end, mtype))
            continue
        etype = key_type(f.key)
        bare_name = etype is None and (fold_key(f.key) in _BARE_NAME_KEYS
                                       or fold_key(f.key).endswith(_BARE_NAME_SUFFIXES))
        if bare_name:
            etype = "PERSON"
        if etype is None or etype not in wanted:
            continue
        if f.kind == "column" and (bare_name or etype in _BROKEN_TYPES):
            continue  # a line under a lone "Name" / "Password" line: prose as often as a value
        value = text[f.start:f.end]
        if not value.strip():
            continue
        if etype in ("PASSWORD", "GENERIC_SECRET", "AWS_SECRET_KEY") and (
                (f.kind in ("bare", "column") and " " in value.strip()) or _CODE.search(value.strip())):
            continue  # code (password=password, password: str = Field(...)), not a secret
        from trustproxy.pii.normalize import normalize

        f_end = f.end
        one_token = etype in _BROKEN_TYPES and not any(c.isspace() for c in value.strip(" \t"))
        if one_token and f.kind == "bare":
            cont = _continuation(text, f.end)
            if cont is not None:
                f_end = cont
                value = text[f.start:f_end]
        if f.kind == "string":
            value = _decoded(value)  # a JSON string reads decoded ("\\b" is a control character)
        if etype == "PERSON" and not bare_name and f.kind == "bare" and len(value.split()) <= 2:
            rest = _name_rest(text, f.end)
            if rest is not None:
                f_end = rest
                value = text[f.start:f_end]
        value = normalize(value)[0]  # shapes are judged without the evasions
        if one_token:
            # one token as written (broken lines joined): spaces are the normaliser's own
            # ("cf41556884" reads "cf 41556884" there)
            value = "".join(value.split())
        glued = 0
        if etype == "PERSON":
            ok = _person(value, specific=not bare_name)
        else:
            shape = _SHAPES.get(etype)
            ok = shape is not None and shape(value)
            if not ok and shape is not None:
                raw = text[f.start:f_end]
                m = _GLUED_LABEL.match(value)
                if m is not None and key_type(m.group(1)) == etype and shape(value[m.end(1):]):
                    ok = True  # the value glued to a label of its own type ("dob07/11/1962")
                    glued = len(raw) - len(raw.lstrip()) + len(m.group(1)) \
                        if raw.lstrip().startswith(m.group(1)) else 0
                elif ("\n" in raw or "\r" in raw) and shape(_BROKEN_DIGITS.sub("", value)):
                    ok = True  # a number or date cut by a line break ("11/01/19\n91")
        if ok:
            s, e = f.start + glued, f_end
            while s < e and (text[s].isspace() or (one_token and text[s] in "\"'")):
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            out.append(KeyedSpan(s, e, etype))
    return out


