"""Personal names found with a name resource, where the NER model misses them (``Ana Ruiz``
in a plain sentence, ``lena fischer`` in lower case, ``LENA FISCHER`` in capitals).

The resource is the US Census Bureau's 1990 name frequency lists (public domain: 5,163 given
names and 88,799 surnames, as shipped by the ``names`` package; we keep the surnames covering
the most frequent 90 %, about 30,000). The census records the names of a population of
immigrants, so it holds most common Spanish, Italian, German, French, Dutch and Portuguese
surnames too. It is independent of any test corpus. To it we add ``data/names/latin_given.txt``
(hand-written: es/pt/it/nl/de/fr given names and names given since 1990), and for the scripts
without an NER model the lists and rules of the second half of this module
(:func:`script_name_spans`); :func:`field_name_spans` and :func:`key_name_spans` read names that
form a field of their own (a lower-case CSV cell, a JSON key in Title Case).

A pair of words is a name when:

- the first is a given name and the second a surname (score 0.8; in lower case 0.65, and only
  after a person cue such as "dear", "patient", "name is");
- the first is a given name and the second a capitalised word that is no ordinary word and no
  product noun (0.6);
- the first is a capitalised word with non-ASCII letters (``Jürgen``, ``José``) and the second a
  surname (0.6).

No word may be an ordinary word (spaCy's stop word lists of en, de, fr, es, it, nl, pt, and a
list of English words that are also names). Particles (``de la``, ``van``, ``dos``) and one middle initial may stand between.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import regex

__all__ = ["name_spans", "load"]

# Ordinary English words that are also given names or surnames: never a name on their own
# account (a capitalised "Will Power" or "Grant Access" is no person).
_COMMON = frozenset("""a an the and or of for to in on at by with from is are was be not no me you
him her them us it this that my your our their his its we they i he she all any some will may
mark bill grant rose june april august summer hope joy faith grace art pat sue don ray gene max
chase page lane dean miles frank earl guy jack drew rich sandy penny ruby crystal amber jade
dawn eve ivy holly iris lily violet autumn river sky angel precious destiny heaven king prince
major royal star rain storm stone hunter forest sage justice honor young white brown green black
gray grey long short little small large big new old good best well hill wood woods field fields
park parks street road lake bank banks bay bell bird bush cash cook cross day dye early east west
north south fox friend gold hall hand hart hay hood house hunt key kind knight lamb land law
love low mann march mason may mills moon moore more morning noble page paris parsons pike pool
post power price rice ring rock rose rush sharp shore snow spring stable steel strong sun sweet
swift taylor temple thomas tower town travel trust turner vale wall ward water waters way wells
west wild will wise wolf wood worth wright york team support sales service services office
desk admin billing help thanks thank please dear hello hi hey regards best cheers today tomorrow
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december christmas easter cloud server data code build test
deploy release version update order account payment invoice customer client patient user
ok okay done status ready fixed open closed pending
""".split())
# words of company names: a client "Acme Corp" is no person
_ORG_WORDS = frozenset("""corp corporation inc ltd llc gmbh ag sa sas sarl srl spa bv nv plc co
company group holding holdings bank banco banque partners associates solutions systems
technologies technology labs industries international consulting logistics media foods
""".split())
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del",
                        "della", "dos", "das", "do", "bin", "al", "el", "ten", "ter", "y",
                        "e", "los", "las", "st", "st."})
_WORD = regex.compile(r"[\p{Latin}][\p{Latin}\p{Mn}'’\-]*\.?")  # the lists are Latin script


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's stop word lists of the Latin-script languages we identify (no model needed)."""
    import importlib

    out: set[str] = set()
    for lang in ("en", "de", "fr", "es", "it", "nl", "pt"):
        try:
            mod = importlib.import_module(f"spacy.lang.{lang}.stop_words")
        except ImportError:  # pragma: no cover - spaCy ships them all
            continue
        out |= {w.casefold() for w in mod.STOP_WORDS}
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def load() -> tuple[frozenset[str], frozenset[str]]:
    """(given names, surnames), case-folded."""
    import names as census

    base = os.path.dirname(census.__file__)

    def read(fname: str, cum_limit: float) -> set[str]:
        out: set[str] = set()
        with open(os.path.join(base, fname), encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and float(parts[2]) <= cum_limit:
                    out.add(parts[0].casefold())
        return out

    first = read("dist.female.first", 100.0) | read("dist.male.first", 100.0)
    first |= script_lists()["latin_given"]
    last = read("dist.all.last", 90.0)
    return frozenset(first), frozenset(last)


def _words(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _WORD.finditer(text):
        yield m.start(), m.end(), m.group(0)


def _fold(w: str) -> str:
    """``w`` without its diacritics (``josé`` -> ``jose``, ``loṃbardo`` -> ``lombardo``)."""
    if w.isascii():
        return w
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))


def _cap(w: str) -> bool:
    return w[:1].isupper() and (w[1:].islower() or w.isupper() or "'" in w or "-" in w
                                or "’" in w or w[1:2].islower())


def name_spans(text: str, product_noun: frozenset[str] = frozenset(),
               lower_ok: "Callable[[int], bool] | None" = None,
               role_cue: "Callable[[int], bool] | None" = None) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` of names in ``text`` (see module docstring). ``lower_ok(start)``
    says whether a lower-case pair at ``start`` has a person cue before it; ``role_cue(start)``
    whether a role or title word stands right before it (``O cliente``, ``Kundin``, ``Dr.``):
    then two capitalised words with one of them listed (as a given name or a surname) are a
    name (0.65), and a listed given name may take an ordinary word as surname (``Lucas Sales``)."""
    first, last = load()
    stops = stop_words()
    ws = list(_words(text))
    out: list[tuple[int, int, float]] = []
    i = 0
    n = len(ws)
    while i < n - 1:
        s0, e0, w0 = ws[i]
        f0 = w0.rstrip(".").casefold()
        if f0 not in first and (not _cap(w0) or (w0.isascii() and role_cue is None)) \
                and _fold(f0) not in first:
            # no score below is possible: each needs a given name first, or a capitalised word
            # (non-ASCII, or after a role word)
            i += 1
            continue
        j = i + 1
        # one middle initial ("Ana M. Ruiz") and particles ("Ana de la Cruz")
        if j < n and len(ws[j][2].rstrip(".")) == 1 and ws[j][2][:1].isupper() and j + 1 < n \
                and text[e0:ws[j][0]] == " ":
            j += 1
        k = j
        p = k
        while p < n - 1 and ws[p][2].casefold() in _PARTICLES:
            p += 1
        if p > k and _cap(ws[p][2]) and p - k <= 3:
            k = p
        s1, e1, w1 = ws[k]
        gap_ok = all(text[ws[x][1]:ws[x + 1][0]] == " " for x in range(i, k)) or (
            k == i + 1 and text[e0:ws[k][0]] in ("\n", "\r\n") and _cap(w0) and _cap(ws[k][2])
            and f0 in first and ws[k][2].rstrip(".").casefold() in last)
        f1 = w1.rstrip(".").casefold()
        if f0 not in first and _fold(f0) in first:
            f0 = _fold(f0)
        if f1 not in last and _fold(f1) in last:
            f1 = _fold(f1)
        score = 0.0
        # a capitalised surname after a given name counts even if it is a stop word of another
        # language ("Benicio Dias": "dias" is Portuguese for "days")
        f1_ok = f1 not in stops or (f0 in first and f1 in last and _cap(w1) and _cap(w0))
        if gap_ok and f0 not in _COMMON and f1 not in _COMMON and f1 not in product_noun \
                and f0 not in stops and f1_ok:
            caps = _cap(w0) and _cap(w1)
            lower = w0.islower() and w1.islower() and len(f0) >= 3 and len(f1) >= 3 \
                and lower_ok is not None and lower_ok(s0)
            if f0 in first and f1 in last:
                score = 0.8 if caps else (0.65 if lower else 0.0)
            elif f0 in first and caps and len(f1) > 2:
                score = 0.6
            elif caps and f1 in last and not w0.isascii() and len(f0) > 2:
                score = 0.6
        if not score and gap_ok and role_cue is not None and _cap(w0) and _cap(w1) \
                and len(f0) >= 2 and len(f1) >= 2 and f0 not in _COMMON and f0 not in stops \
                and f1 not in stops and f1 not in product_noun and f0 not in product_noun \
                and f0 not in _ORG_WORDS and f1 not in _ORG_WORDS \
                and not w0.isupper() and not w1.isupper() \
                and (f0 in first or ((f1 in last or f1 in first or f0 in last) and f1 not in _COMMON)) \
                and role_cue(s0):
            score = 0.65
        if score:
            end = e1 - (1 if w1.endswith(".") else 0)
            # a following surname ("Maria Garcia Lopez")
            if k + 1 < n and text[e1:ws[k + 1][0]] == " " and _cap(ws[k + 1][2]) == _cap(w1) \
                    and ws[k + 1][2].casefold() in last and ws[k + 1][2].casefold() not in _COMMON:
                end = ws[k + 1][1]
                k += 1
            # particles and a capitalised name after them ("Davi Lucas da Rocha", "van der Berg")
            m = k + 1
            while m < n and ws[m][2].casefold() in _PARTICLES and text[ws[m - 1][1]:ws[m][0]] == " ":
                m += 1
            if m > k + 1 and m < n and _cap(ws[m][2]) and text[ws[m - 1][1]:ws[m][0]] == " " \
                    and ws[m][2].casefold() not in _COMMON and ws[m][2].casefold() not in product_noun:
                end = ws[m][1] - (1 if ws[m][2].endswith(".") else 0)
                k = m
            out.append((s0, end, score))
            i = k + 1
            continue
        i += 1
    return out


# --- names in scripts without an NER model (Han, kana, Arabic, Devanagari) ------------------
#
# The resource is ``trustproxy/pii/data/names/`` (hand-written lists with their provenance in
# each file; see its README). A list entry alone never makes a name: it has to come with
# structure, so that ordinary sentences holding a surname character (国王, 周四, 高兴) or a word
# that is also a given name (आशा "hope", أمل "hope") stay unmasked:
#
# - Chinese: surname (compound first) + 1-2 given-name characters, after a cue word (客户,
#   患者, 转给, 联系人 ...) or forming a field of its own (a JSON key or string, a CSV cell, a
#   label's value, a Han run inside Latin-script text); honorifics and labels are in the detector.
# - Japanese: surname from the list (2+ characters, or 1 with a field of its own) + a 1-3 character
#   kanji or 2-4 character kana given name, forming a field of its own or after a cue (患者, 担当).
# - Arabic: a listed given name (or an ``عبد`` + divine-name compound, or ``X الدين``) followed by
#   one to three name words (``بن``/``بنت``/``آل``/``أبو`` + word, ``ال``-words, other words that
#   are no stop words); given names that are ordinary words (أمل, نور, سعيد ...) need a cue.
# - Devanagari: two or three words, neither a stop word, with a listed given name and a listed
#   surname; or one of them listed and a cue (ग्राहक, नाम:, श्री ...), a following postposition
#   (को, ने, से, का, की, के, जी) or a field of its own.

_DATA = os.path.join(os.path.dirname(__file__), "data", "names")


def _read_list(fname: str) -> frozenset[str]:
    out: set[str] = set()
    with open(os.path.join(_DATA, fname), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0]
            out.update(w.casefold() for w in line.split())
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def script_lists() -> dict[str, frozenset[str]]:
    """The hand-written lists of ``data/names`` (loaded once)."""
    out = {k: _read_list(f"{k}.txt") for k in (
        "zh_surnames", "zh_given_chars", "ja_surnames", "ar_given", "hi_given", "hi_surnames",
        "latin_given")}
    # "صدر الدين", "ضيف الله": the second word is built by the detector, never a name alone
    out["ar_given"] = frozenset(_ar_key(w) for w in out["ar_given"] if not w.startswith("ال"))
    return out


_FIELD_START = frozenset("\"'{[,;:|\t\n\r=(：（「『")
_FIELD_END = frozenset("\"'}],;:|\t\n\r)）」』")


def _field(text: str, a: int, b: int, space_ok: bool = False) -> bool:
    """``text[a:b]`` is a field of its own: a JSON key or string, a CSV cell, a label's value,
    a line, or (``space_ok``) a run of another script set off by spaces."""
    i = a
    while i > 0 and text[i - 1] == " ":
        i -= 1
    j = b
    while j < len(text) and text[j] == " ":
        j += 1
    left = i == 0 or text[i - 1] in _FIELD_START or (space_ok and i < a)
    right = j == len(text) or text[j] in _FIELD_END or (space_ok and j > b) \
        or (text[j] == "." and (j + 1 == len(text) or not text[j + 1].isalnum()))
    return left and right


# Chinese --------------------------------------------------------------------------------------

_ZH_CUE = regex.compile(
    r"(?:客户|顾客|用户|患者|病人|员工|同事|同学|经理|主管|联系人|负责人|申请人|收件人|寄件人|经办人|"
    r"转给|交给|发给|寄给|告诉|通知|联系|致电|抄送|感谢|姓名(?:是|为)?|名字(?:是|叫)?|叫做?|我是|"
    r"签名|署名|抄送给|回复给)[:：]?\s?$")
_HAN_RUN = regex.compile(r"[\p{Han}]+")
_ZH_HONORIFIC = regex.compile(r"(?:先生|女士|小姐|老师|医生|大夫|经理|教授|太太|同志|总经理|主任|律师)")
_NOT_GIVEN_AFTER = frozenset("的了是在和与及或也都就又还")


# characters that are in given names but form too many ordinary words (中 大 小 天 全 生 ...):
# never a given-name character here
_ZH_NOT_GIVEN = frozenset("中大天东南西北全本自能行量门非方田米素观知真生留登百益成信义才学正国民新长子心语书"
                          "进运连迎集际路资花安乐可思若时立致理程治法水河石竹简策继续重马金银铁宝高言诚道达远邦"
                          "苏川州帆舟湘粤鲁蒙秦晋豫培基堂士壮夫部")


def zh_names(text: str) -> list[tuple[int, int, float]]:
    lists = script_lists()
    sur, given_all = lists["zh_surnames"], lists["zh_given_chars"]
    given = given_all - _ZH_NOT_GIVEN  # the first given character; the second may be any
    out: list[tuple[int, int, float]] = []
    for m in _HAN_RUN.finditer(text):
        run, base = m.group(0), m.start()
        i = 0
        while i < len(run) - 1:
            s_len = 2 if run[i:i + 2] in sur else (1 if run[i] in sur else 0)
            if not s_len:
                i += 1
                continue
            g = 0
            while g < 2 and i + s_len + g < len(run) and run[i + s_len + g] in (given if g == 0 else given_all):
                g += 1
            if not g:
                i += 1
                continue
            a, b = base + i, base + i + s_len + g
            whole = a == m.start() and b == m.end()
            if whole and (_field(text, a, b) or _latin_around(text, a, b)):
                out.append((a, b, 0.75))
                i += s_len + g
                continue
            if _ZH_HONORIFIC.match(text, b) or (
                    _ZH_CUE.search(text[max(0, a - 6):a]) and (b == m.end() or run[b - base] not in given_all)):
                out.append((a, b, 0.7))
                i += s_len + g
                continue
            i += 1
    return out


def _latin_around(text: str, a: int, b: int) -> bool:
    """A CJK run set off by spaces inside Latin-script text ("loop in 陈静 from")."""
    return (a >= 2 and text[a - 1] == " " and text[a - 2].isascii() and text[a - 2].isalpha()
            and b + 1 < len(text) and text[b] == " " and text[b + 1].isascii() and text[b + 1].isalpha())


# Japanese -------------------------------------------------------------------------------------

_JA_CUE = regex.compile(r"(?:患者|担当者?|お客様|顧客|社員|従業員|氏名|名前|宛先|差出人|申請者|連絡先)[:：は]?\s?$")
_JA_RUN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}ー]+")


def ja_names(text: str) -> list[tuple[int, int, float]]:
    sur = script_lists()["ja_surnames"]
    out: list[tuple[int, int, float]] = []
    for m in _JA_RUN.finditer(text):
        run = m.group(0)
        for n in (3, 2, 1):
            s = run[:n]
            if len(s) < n or s not in sur:
                continue
            rest = run[n:]
            ok = (1 <= len(rest) <= 3 and regex.fullmatch(r"\p{Han}+", rest) is not None) or (
                2 <= len(rest) <= 4 and regex.fullmatch(r"[\p{Hiragana}\p{Katakana}ー]+", rest) is not None)
            if not ok:
                continue
            field = _field(text, m.start(), m.end(), space_ok=True)
            cue = _JA_CUE.search(text[max(0, m.start() - 6):m.start()]) is not None
            if field or (cue and n >= 2):
                out.append((m.start(), m.end(), 0.75 if n >= 2 else 0.7))
            break
    return out


# Arabic ---------------------------------------------------------------------------------------

_AR_MARKS = regex.compile(r"[\u064B-\u065F\u0670\u0640\p{Mn}]")
_AR_WORD = regex.compile(r"[\p{Arabic}\p{Mn}]+")
_AR_PARTICLES = frozenset({"بن", "ابن", "بنت", "آل", "ال", "أبو", "ابو", "أم", "ولد"})
_AR_DIVINE_PREFIX = frozenset({"عبد", "عبدال"})
# words that follow a given name in set phrases, never a family name (محمد صلى الله عليه وسلم)
_AR_NOT_NAME = frozenset("صلى عليه وسلم رضي عنه عنها رحمه جدا شكرا يرجى قال قالت".split())
# given names that are ordinary words too: a name only with a cue or a name particle after
_AR_AMBIGUOUS = frozenset("""أمل نور سعيد كريم جميل جميلة هدى وفاء إيمان حياة أمين عادل صالح هادي
منير عزيز سالم فارس بدر مالك سلطان ملك حامد شريف راشد غالية عالية ندى عيد ضيف حبيب رضا علا مي لين
جود فرح شهد شروق سحر دعاء بشرى بسمة رحاب سناء صفاء وعد خليل ماجد نبيل زكي حسن جمال كمال منى""".split())
_AR_CUE = regex.compile(r"(?:العميل|العميلة|المريض|المريضة|الموظف|الموظفة|السيد|السيدة|الأستاذ|الأستاذة|"
                        r"الدكتور|الدكتورة|د\.|اسم|الاسم|إلى|الى|الزميل|الزميلة|المهندس|المهندسة)\s*[:：]?\s*$")


_AR_LABEL = regex.compile(r"(?:الاسم|اسم\s+\p{Arabic}+|الاسم\s+الكامل)\s*[:：]\s*$")


def _ar_key(w: str) -> str:
    w = _AR_MARKS.sub("", w)
    return w.replace("أ", "ا").replace("إ", "ا").replace("آ", "ا") if w not in ("آل",) else w


@functools.lru_cache(maxsize=1)
def _ar_stops() -> frozenset[str]:
    try:
        from spacy.lang.ar.stop_words import STOP_WORDS
    except ImportError:  # pragma: no cover
        return frozenset()
    return frozenset(_ar_key(w) for w in STOP_WORDS)


_GAP = regex.compile(r"[ \t]{1,2}|\r?\n")


def _script_words(text: str, word_rx: Any) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in word_rx.finditer(text)]


def ar_names(text: str) -> list[tuple[int, int, float]]:
    given = script_lists()["ar_given"]
    amb = frozenset(_ar_key(w) for w in _AR_AMBIGUOUS)
    stops = _ar_stops()
    ws = _script_words(text, _AR_WORD)
    keys = [_ar_key(w) for _, _, w in ws]
    out: list[tuple[int, int, float]] = []

    def joined(i: int, j: int) -> bool:
        return _GAP.fullmatch(text[ws[i][1]:ws[j][0]]) is not None

    i = 0
    while i < len(ws):
        k = keys[i]
        j = i  # last word of the given name
        if k in _AR_DIVINE_PREFIX and i + 1 < len(ws) and joined(i, i + 1) and keys[i + 1].startswith("ال"):
            j = i + 1  # عبد الرحمن
            is_given = True
        else:
            is_given = k in given
            if is_given and i + 1 < len(ws) and joined(i, i + 1) and keys[i + 1] in ("الدين", "الله"):
                j = i + 1  # صدر الدين, ضيف الله
        if not is_given:
            # no listed given name: a name by its structure alone -- a word, then a family
            # particle and a name word ("X آل Y", "X بن Y"), or two or three name words after a
            # label ("الاسم: X Y")
            if k not in stops and len(k) >= 2 and k not in _AR_PARTICLES and i + 2 < len(ws) \
                    and keys[i + 1] in ("آل", "بن", "بنت", "ابن") and joined(i, i + 1) \
                    and joined(i + 1, i + 2) and keys[i + 2] not in stops:
                end = i + 2
                while end + 2 < len(ws) and keys[end + 1] in _AR_PARTICLES and joined(end, end + 1) \
                        and joined(end + 1, end + 2) and keys[end + 2] not in stops:
                    end += 2
                if end + 1 < len(ws) and keys[end] in _AR_PARTICLES and keys[end + 1] not in stops:
                    end += 1
                out.append((ws[i][0], ws[end][1], 0.75))
                i = end + 1
                continue
            if _AR_LABEL.search(text[max(0, ws[i][0] - 12):ws[i][0]]) and k not in stops:
                end = i
                while end + 1 < len(ws) and end - i < 2 and joined(end, end + 1) \
                        and keys[end + 1] not in stops:
                    end += 1
                if end > i:
                    out.append((ws[i][0], ws[end][1], 0.75))
                    i = end + 1
                    continue
            i += 1
            continue
        # name words after the given name
        end = j
        particle = False
        n = 0
        while end + 1 < len(ws) and n < 3 and joined(end, end + 1):
            nk = keys[end + 1]
            if nk in _AR_PARTICLES and end + 2 < len(ws) and joined(end + 1, end + 2) \
                    and (keys[end + 2] not in stops or nk != "ال"):
                end += 2
                particle = True
            elif nk not in stops and len(nk) >= 2 and nk not in _AR_PARTICLES and nk not in _AR_NOT_NAME:
                end += 1
            else:
                break
            n += 1
            if not (end + 1 < len(ws) and (keys[end + 1] in _AR_PARTICLES or keys[end + 1] in given)):
                break
        if end == j:
            i = j + 1
            continue
        a, b = ws[i][0], ws[end][1]
        cue = _AR_CUE.search(text[max(0, a - 16):a]) is not None or _field(text, a, b)
        if (k in amb or k in stops) and j == i and not (particle or cue):
            i += 1
            continue
        out.append((a, b, 0.8 if (particle or cue) else 0.7))
        i = end + 1
    return out


# Devanagari -----------------------------------------------------------------------------------

_HI_WORD = regex.compile(r"\p{Devanagari}[\p{Devanagari}\u200c\u200d\p{Mn}]*")
_HI_CUE = regex.compile(r"(?:ग्राहक|मरीज़?|रोगी|कर्मचारी|उपयोगकर्ता|संपर्क|नाम|श्री|श्रीमती|सुश्री|कुमारी|डॉ\.?|डॉक्टर|प्रिय|"
                        r"आदरणीय|सहकर्मी|प्रबंधक)\s*[:：]?\s*$")
_HI_LABEL = regex.compile(r"(?:नाम|पूरा\s+नाम)\s*[:：]\s*$")
_HI_AFTER = frozenset({"को", "ने", "से", "का", "की", "के", "जी", "द्वारा", "और"})
_HI_COMMON = frozenset("""है हैं था थे थी हो गया गई गए कर करें करना किया दिया लिया भेज भेजें दें
आज कल सुबह शाम फिर बार टीम समस्या अपडेट हफ़्ते हफ्ते माइग्रेशन तरफ़ कुछ नहीं बदला कृपया इसे पहले
शुक्रवार गुरुवार बुधवार मंगलवार सोमवार शनिवार रविवार फ़ोन फोन ईमेल पता नया नई तीन बिंदुओं सारांश
सेवा सहायता केंद्र विभाग प्रतिनिधि खाता शिकायत अनुरोध भुगतान ऑर्डर टिकट प्रबंधक कंपनी बैंक""".split())


@functools.lru_cache(maxsize=1)
def _hi_stops() -> frozenset[str]:
    try:
        from spacy.lang.hi.stop_words import STOP_WORDS
    except ImportError:  # pragma: no cover
        return _HI_COMMON
    return frozenset(STOP_WORDS) | _HI_COMMON


def hi_names(text: str) -> list[tuple[int, int, float]]:
    lists = script_lists()
    given, sur = lists["hi_given"], lists["hi_surnames"]
    stops = _hi_stops()
    ws = _script_words(text, _HI_WORD)
    keys = [regex.sub(r"[\u200c\u200d]|(?!\p{Devanagari})\p{Mn}", "", w) for _, _, w in ws]
    out: list[tuple[int, int, float]] = []
    i = 0
    while i < len(ws) - 1:
        k0, k1 = keys[i], keys[i + 1]
        if k0 in stops or k1 in stops or _GAP.fullmatch(text[ws[i][1]:ws[i + 1][0]]) is None:
            i += 1
            continue
        end = i + 1
        # a third word: a second surname ("सचिन कुमार दासगुप्ता")
        if end + 1 < len(ws) and keys[end + 1] in sur and keys[end + 1] not in stops \
                and _GAP.fullmatch(text[ws[end][1]:ws[end + 1][0]]):
            end += 1
        a, b = ws[i][0], ws[end][1]
        if _HI_LABEL.search(text[max(0, a - 8):a]) and keys[end] not in stops:
            out.append((a, b, 0.75))  # "नाम: X Y": a name whatever the lists say
            i = end + 1
            continue
        strong = k0 in given and keys[end] in sur
        weak = k0 in given or keys[end] in sur
        if strong:
            out.append((a, b, 0.8))
            i = end + 1
            continue
        if not weak and end == i + 1 and end + 1 < len(ws) and ws[end + 1][2] in _HI_AFTER \
                and regex.fullmatch(r"[ \t]{1,2}|[ \t]?\r?\n", text[ws[end][1]:ws[end + 1][0]]) \
                and _HI_CUE.search(text[max(0, a - 16):a]) and len(k0) >= 2 and len(k1) >= 2:
            # no listed word, but a cue before and a postposition after: "ग्राहक X Y ने ..."
            out.append((a, b, 0.7))
            i = end + 1
            continue
        if weak:
            after = ws[end + 1][2] if end + 1 < len(ws) else ""
            cue = _HI_CUE.search(text[max(0, a - 16):a]) is not None
            if cue or _field(text, a, b) or (after in _HI_AFTER and text[ws[end][1]:ws[end + 1][0]] == " "
                                             and (k0 in given or _HI_CUE.search(text[max(0, a - 16):a]))):
                out.append((a, b, 0.7))
                i = end + 1
                continue
        i += 1
    return out


_SCRIPT_PROBE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Arabic}\p{Devanagari}]")


def script_name_spans(text: str) -> list[tuple[int, int, float]]:
    """Names in Han, kana, Arabic and Devanagari script (see the notes above)."""
    if not _SCRIPT_PROBE.search(text):
        return []
    out: list[tuple[int, int, float]] = []
    if regex.search(r"\p{Han}", text):
        out += ja_names(text)
        out += zh_names(text)
    if regex.search(r"\p{Arabic}", text):
        out += ar_names(text)
    if regex.search(r"\p{Devanagari}", text):
        out += hi_names(text)
    return out


def field_name_spans(text: str) -> list[tuple[int, int, float]]:
    """Latin-script names written in lower case that form a field of their own (a JSON key or
    string, a CSV cell, a label's value): two to four words, the first a listed given name, the
    last a listed surname or a word after a particle, none an ordinary word
    (``{"jesse blaak": ...}``, ``Naam\njasper de groot``)."""
    first, last = load()
    stops = stop_words()
    out: list[tuple[int, int, float]] = []
    for m in _LOWER_FIELD.finditer(text):
        a, b = m.span(1)
        words = m.group(1).split(" ")
        if not _field(text, a, b):
            continue
        w0, wl = words[0], words[-1]
        if w0 not in first or w0 in _COMMON or w0 in stops:
            continue
        mid = words[1:-1]
        if any(w not in _PARTICLES for w in mid):
            continue
        if wl in _COMMON or wl in _PARTICLES or (wl in stops and not mid):
            continue
        if wl in last or mid or len(wl) >= 4:
            out.append((a, b, 0.65 if (wl in last or mid) else 0.55))
    return out


# JSON keys that are names (``{"contacts": {"Alejo Carnero": {...}}}``): keys are identifiers or
# labels; one in Title Case with a space, a listed name word and no label word is a value
_KEY_NAME = regex.compile(r'"(\p{Lu}[\p{L}\'’\-]+(?: (?:(?:van|von|de|der|den|da|di|du|del|della|dos|das|do|la|le) )*\p{Lu}[\p{L}\'’\-]+){1,2})"\s*:')
_LABEL_WORDS = frozenset("""name names status date time number no address total amount price code id type account
manager method message error order product customer phone email mail city state country zip postal street
first last full middle given family company department title description notes note created updated due
start end unit quantity item items sales rep owner contact contacts payment billing shipping grand sub tax
discount balance currency region zone level score rate count value key label group role user users team
project task issue ticket case report summary details info data record records field column row
""".split())


# place-name and adjective words that open keys which are no names ("San Francisco", "Red Hat")
_KEY_NOT_NAME = frozenset("""san santa saint sankt port fort mount red blue hello world great united
upper lower central general global public private open hot cold happy merry new old""".split())


def key_name_spans(text: str) -> list[tuple[int, int, float]]:
    """Names written as JSON keys (see ``_KEY_NAME``)."""
    if '":' not in text and '" :' not in text:
        return []
    first, last = load()
    out: list[tuple[int, int, float]] = []
    for m in _KEY_NAME.finditer(text):
        words = [w.casefold() for w in m.group(1).split(" ") if w.casefold() not in _PARTICLES]
        if any(w in _LABEL_WORDS or w in _KEY_NOT_NAME for w in words) or words[0] in _COMMON:
            continue
        if any(w in first or w in last or _fold(w) in first or _fold(w) in last for w in words):
            out.append((m.start(1), m.end(1), 0.6))
    return out


_LOWER_FIELD = regex.compile(r"(?<![\p{L}\p{N}_\-.@/])(\p{Ll}[\p{Ll}'’\-]{1,}(?: \p{Ll}[\p{Ll}'’\-]*){1,3})(?![\p{L}\p{N}_\-@/])")


def script_stop_words() -> None:
    """Load the Arabic and Hindi stop word lists now (start-up), not on a request."""
    _ar_stops()
    _hi_stops()


def starts_with_surname(v: str) -> bool:
    """``v`` opens with a listed Chinese or Japanese surname (katakana names always count)."""
    if v[:1] and regex.match(r"\p{Katakana}", v):
        return True
    lists = script_lists()
    if any(v[:n] in lists["ja_surnames"] for n in (1, 2, 3) if len(v) > n):
        return True
    given = lists["zh_given_chars"] - _ZH_NOT_GIVEN
    return any(v[:n] in lists["zh_surnames"] and len(v) > n and v[n] in given for n in (1, 2))
