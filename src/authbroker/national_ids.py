"""Validation and normalization of Nordic and Baltic national identity numbers.

Providers hand us identity numbers in whatever form their protocol uses (a Finnish
HETU with a 2023 century sign, a 10-digit Swedish number with ``-``, a Norwegian
D-number...). :class:`authbroker.identity.NationalId` keeps one canonical form per
country so that the same person always compares equal, whatever the provider.

python-stdnum does the well-trodden parts (check characters, the Estonian date and
check digit). It has gaps that matter here, all listed in
this module's tests (``tests/test_national_ids.py``): it rejects Swedish coordination
numbers and Norwegian synthetic test numbers, it accepts Unicode digits and trailing
newlines in its ``compact`` step, and it checks Norwegian future birth dates against
the real clock. So the structure (characters, lengths, dates, century) is checked
here with strict ASCII patterns and an injectable ``today``; stdnum is only asked
about check characters of numbers that already have the right shape.

Errors are :class:`authbroker.errors.InvalidInput` with a stable ``code``; messages
are fixed sentences that never repeat the number (identity numbers are personal data
and messages end up in logs).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from .errors import InvalidInput

__all__ = ["KINDS", "MAX_INPUT_LENGTH", "birthdate", "mask", "parse", "sex"]

#: Anything longer is rejected before any other work: the longest accepted form
#: (``YYYYMMDD-NNNC`` plus some surrounding/embedded spaces) is far shorter, and a
#: bound keeps hostile megabyte inputs cheap.
MAX_INPUT_LENGTH = 32

#: Every ``kind`` :func:`parse` can return, per country.
KINDS: dict[str, frozenset[str]] = {
    "FI": frozenset({"hetu"}),
    "EE": frozenset({"isikukood"}),
    "SE": frozenset({"personnummer", "samordningsnummer"}),
    "NO": frozenset({"fodselsnummer", "d-nummer", "h-nummer", "synthetic"}),
}

_COUNTRY_NAMES = {"FI": "Finnish", "EE": "Estonian", "SE": "Swedish", "NO": "Norwegian"}

# Explicit [0-9] (never \d, which matches any Unicode digit) and fullmatch (``$``
# would accept a trailing newline).
# FI: DDMMYY C NNN K; century signs per §3.2 (Valtioneuvoston asetus, in force
# 1.1.2023): 1800s "+", 1900s "-" and "YXWVU", 2000s "A" and "BCDEF". The check
# character alphabet omits G, I, O, Q and Z.
_FI_RE = re.compile(
    r"(?P<dd>[0-9]{2})(?P<mm>[0-9]{2})(?P<yy>[0-9]{2})"
    r"(?P<sign>[-+ABCDEFYXWVU])(?P<nnn>[0-9]{3})(?P<check>[0-9ABCDEFHJKLMNPRSTUVWXY])"
)
_FI_CENTURY = {"+": 1800, "-": 1900, "A": 2000}
_FI_CENTURY.update(dict.fromkeys("YXWVU", 1900))
_FI_CENTURY.update(dict.fromkeys("BCDEF", 2000))

_DIGITS_11 = re.compile(r"[0-9]{11}")
# SE: YYMMDD[-+]NNNC, YYMMDDNNNC, YYYYMMDD[-+]NNNC or YYYYMMDDNNNC (§3.4).
_SE_RE = re.compile(r"(?P<cc>[0-9]{2})?(?P<yymmdd>[0-9]{6})(?P<sep>[-+])?(?P<nnnc>[0-9]{4})")

# EE first digit: sex and century (§3.3; riigiteataja.ee/akt/106032012004 via stdnum).
_EE_CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}
_EE_CENTURY.update({"7": 2100, "8": 2100})


def _fail(country: str, reason: str, code: str) -> InvalidInput:
    """Build the error; the message is fixed text, so it cannot echo the input."""
    name = _COUNTRY_NAMES.get(country, "national")
    return InvalidInput(f"invalid {name} identity number: {reason}", code=code)


def _country(country: object) -> str:
    if isinstance(country, str) and country.isascii():  # "ﬁ".upper() == "FI"
        c = country.strip().upper()
        if c in _COUNTRY_NAMES:
            return c
    raise InvalidInput("unsupported country for national identity numbers", code="country")


def _date(year: int, month: int, day: int, country: str, today: date) -> date:
    """The encoded birth date; a date after ``today`` cannot be in an issued number."""
    try:
        born = date(year, month, day)
    except ValueError:
        raise _fail(country, "the birth date does not exist", "bad_date") from None
    if born > today:
        raise _fail(country, "the birth date is in the future", "bad_date")
    return born


def parse(
    value: str,
    country: str,
    *,
    allow_synthetic: bool = False,
    today: date | None = None,
) -> tuple[str, str]:
    """Validate ``value`` as an identity number of ``country``; return (canonical, kind).

    Surrounding whitespace is ignored everywhere and inner spaces for the all-digit
    forms (EE, SE, NO are printed in groups); anything else that is not part of the
    number's grammar is an error rather than being cleaned away, so a number that
    reached us mangled is noticed.
    """
    canonical, kind, _ = _parse(value, country, allow_synthetic=allow_synthetic, today=today)
    return canonical, kind


def _parse(
    value: str, country: str, *, allow_synthetic: bool, today: date | None
) -> tuple[str, str, date]:
    c = _country(country)
    if not isinstance(value, str):
        raise _fail(c, "not a string", "bad_format")
    if len(value) > MAX_INPUT_LENGTH:
        raise _fail(c, "too long", "bad_length")
    text = value.strip()
    # Before any case folding: "ſ".upper() is "S", a valid Finnish check character.
    if not text.isascii():
        raise _fail(c, "wrong characters", "bad_format")
    if today is None:
        today = date.today()
    elif isinstance(today, datetime):  # a datetime does not compare with a date
        today = today.date()
    if c == "FI":
        return _parse_fi(text.upper(), today)
    text = text.replace(" ", "")
    if c == "EE":
        return _parse_ee(text, today)
    if c == "SE":
        return _parse_se(text, today)
    return _parse_no(text, today, allow_synthetic=allow_synthetic)


def _parse_fi(text: str, today: date) -> tuple[str, str, date]:
    if len(text) != 11:
        raise _fail("FI", "wrong length", "bad_length")
    m = _FI_RE.fullmatch(text)
    if m is None:
        raise _fail("FI", "wrong characters", "bad_format")
    century = _FI_CENTURY[m["sign"]]
    born = _date(century + int(m["yy"]), int(m["mm"]), int(m["dd"]), "FI", today)
    # Individual numbers start at 002 (§3.2, stdnum); 900-999 are temporary numbers,
    # which the DVV and Suomi.fi test persons use, so they are accepted (§3.2 table).
    if int(m["nnn"]) < 2:
        raise _fail("FI", "individual number out of range", "bad_individual")
    from stdnum.exceptions import ValidationError as StdnumError
    from stdnum.fi import hetu

    try:
        # The century sign is not covered by the check character (§3.2), and it is
        # identity-bearing since 2023, so it is kept exactly as given.
        hetu.validate(text, allow_temporary=True)
    except StdnumError as exc:
        raise _fail("FI", "check character does not match", "bad_checksum") from exc
    return text, "hetu", born


def _parse_ee(text: str, today: date) -> tuple[str, str, date]:
    if len(text) != 11:
        raise _fail("EE", "wrong length", "bad_length")
    if _DIGITS_11.fullmatch(text) is None:
        raise _fail("EE", "wrong characters", "bad_format")
    century = _EE_CENTURY.get(text[0])
    if century is None:
        raise _fail("EE", "unknown century digit", "bad_date")
    born = _date(century + int(text[1:3]), int(text[3:5]), int(text[5:7]), "EE", today)
    # Two-pass weighted mod 11 check digit (§3.3).
    from stdnum.ee import ik

    if ik.calc_check_digit(text) != text[-1]:
        raise _fail("EE", "check digit does not match", "bad_checksum")
    return text, "isikukood", born


def _parse_se(text: str, today: date) -> tuple[str, str, date]:
    if len(text) not in (10, 11, 12, 13):
        raise _fail("SE", "wrong length", "bad_length")
    m = _SE_RE.fullmatch(text)
    if m is None:
        raise _fail("SE", "wrong characters", "bad_format")
    yymmdd, nnnc = m["yymmdd"], m["nnnc"]
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    if m["cc"] is not None:
        # The 12-digit form carries its century; the separator is then informational
        # (stdnum does the same), so it is not checked against the age.
        year = int(m["cc"]) * 100 + yy
        if year < 1800:  # plausibility bound, not a rule of the register
            raise _fail("SE", "the birth year is implausible", "bad_date")
    else:
        # "-" until the year the person turns 100, "+" from then on (§3.4,
        # Folkbokföringslagen 18 §): so "-" means born in the 100 years up to this
        # year, "+" the 100 years before those.
        year = today.year - (today.year - yy) % 100
        if m["sep"] == "+":
            year -= 100
    # Samordningsnummer: day of month + 60 (§3.4; stdnum rejects these).
    kind = "personnummer"
    if dd > 60:
        kind = "samordningsnummer"
        dd -= 60
    born = _date(year, mm, dd, "SE", today)
    if nnnc[:3] == "000":  # NNN is 001-999 (§3.4)
        raise _fail("SE", "individual number out of range", "bad_individual")
    # Luhn over YYMMDDNNNC, the century is not covered (§3.4, Skatteverket 330245).
    from stdnum import luhn

    if not luhn.is_valid(yymmdd + nnnc):
        raise _fail("SE", "check digit does not match", "bad_checksum")
    return f"{year:04d}{yymmdd[2:]}{nnnc}", kind, born


def _no_century(yy: int, individual: int) -> int:
    """Century from the individual number (§3.5, stdnum, Digdir generator)."""
    if individual < 500:
        return 1900
    if individual < 750 and yy >= 54:
        return 1800
    if yy < 40:
        return 2000
    if individual >= 900:
        return 1900
    raise _fail("NO", "no century matches the individual number", "bad_date")


def _parse_no(text: str, today: date, *, allow_synthetic: bool) -> tuple[str, str, date]:
    if len(text) != 11:
        raise _fail("NO", "wrong length", "bad_length")
    if _DIGITS_11.fullmatch(text) is None:
        raise _fail("NO", "wrong characters", "bad_format")
    # K1 and K2 (weights 3 7 6 1 8 9 4 5 2 and 5 4 3 2 7 6 5 4 3 2; remainder 10
    # makes the number invalid: stdnum returns "10" then, which never matches).
    # Only the classic rule: the rule for numbers issued from 2032 (remainders 0-3
    # accepted) is not published in enough detail to implement (§3.5).
    from stdnum.no import fodselsnummer

    if (
        fodselsnummer.calc_check_digit1(text[:9]) != text[9]
        or fodselsnummer.calc_check_digit2(text[:10]) != text[10]
    ):
        raise _fail("NO", "check digits do not match", "bad_checksum")
    dd, mm, yy, individual = int(text[:2]), int(text[2:4]), int(text[4:6]), int(text[6:9])
    if dd >= 80:
        # FH-numbers (health sector, first digit 8 or 9) encode no person data and
        # are not issued to anyone who could authenticate (§3.5).
        raise _fail("NO", "FH-numbers are not accepted", "unsupported_kind")
    kind = "fodselsnummer"
    if mm > 80:
        # Synthetic Tenor / Test-Norge persons: month + 80 (§3.5, Skatteetaten
        # testmiljø; Digdir SyntheticFodselsnummerGenerator adds 8000 to DDMMYY).
        # They may be D-numbers too (day + 40).
        kind = "synthetic"
        mm -= 80
    elif mm > 40:
        # H-number: month + 40 (§3.5, fnrinfo.no, stdnum).
        kind = "h-nummer"
        mm -= 40
    if dd > 40:
        # D-number: day + 40 (§3.5). A number cannot be both an H- and a D-number.
        if kind == "h-nummer":
            raise _fail("NO", "the birth date does not exist", "bad_date")
        if kind == "fodselsnummer":
            kind = "d-nummer"
        dd -= 40
    born = _date(_no_century(yy, individual) + yy, mm, dd, "NO", today)
    # Checked last so the code means "a valid synthetic number", not "garbage".
    if kind == "synthetic" and not allow_synthetic:
        raise _fail("NO", "synthetic test numbers are not accepted", "synthetic_not_allowed")
    return text, kind, born


def _decode(value: str, country: str, kind: str) -> date:
    """Re-validate a canonical value and return its birth date.

    Re-validating is cheap and means a hand-built ``NationalId`` cannot yield a date
    or sex from a malformed value. ``date.max`` as "today": a value accepted
    yesterday must not fail here.
    """
    c = _country(country)
    if kind not in KINDS[c]:
        raise InvalidInput("unknown kind of national identity number", code="kind")
    canonical, parsed_kind, born = _parse(value, c, allow_synthetic=True, today=date.max)
    if canonical != value or parsed_kind != kind:
        raise InvalidInput("not a canonical national identity number", code="not_canonical")
    return born


def birthdate(value: str, country: str, kind: str) -> date | None:
    """Birth date encoded in a canonical number (as returned by :func:`parse`).

    Every kind accepted today encodes one (synthetic Norwegian numbers: the test
    person's); ``None`` is kept in the signature for kinds that will not (Norwegian
    FH-numbers, should they ever be accepted).
    """
    return _decode(value, country, kind)


def sex(value: str, country: str, kind: str) -> Literal["female", "male"] | None:
    """Legal sex encoded in a canonical number, None where the number does not say.

    Finnish codes issued from 2027 and Norwegian numbers issued from 2032 stop
    encoding sex (DVV's and Skatteetaten's rules); nothing in those numbers tells them
    apart yet, so this
    answers from the digit as every current number does.
    """
    _decode(value, country, kind)
    c = country.strip().upper()
    if c == "FI":
        digit = value[9]  # individual number NNN: odd = male, even = female (§3.2)
    elif c == "EE":
        digit = value[0]  # sex-and-century digit: odd = male, even = female (§3.3)
    elif c == "SE":
        digit = value[10]  # last digit of NNN: odd = male, even = female (§3.4)
    else:
        if kind == "h-nummer":
            # Help numbers assigned by health services; whether their individual
            # digits follow the sex rule is not documented (§3.5): don't guess.
            return None
        digit = value[8]  # third individual digit: odd = male, even = female (§3.5)
    return "male" if int(digit) % 2 else "female"


def mask(value: str) -> str:
    """A loggable stand-in for any identifier: at most two leading characters.

    Two characters are never enough to single out a person (for the identity numbers
    here they are the day of birth, the century or the sex/decade digit), and the
    number of stars is fixed so that even the length is not revealed. Only ASCII
    letters and digits are shown, so the result cannot inject into a log line.
    """
    if not isinstance(value, str):
        return "*" * 8
    text = value.strip()
    if len(text) < 8:
        return "*" * 8
    head = "".join(ch if ch.isascii() and ch.isalnum() else "*" for ch in text[:2])
    return head + "*" * 6
