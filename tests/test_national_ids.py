"""National identity numbers: the examples of the protocol notes, and properties.

Examples are the published ones of each country's number authority (DVV, Estonian
standard EVS 585, Skatteverket, Skatteetaten) and python-stdnum's test data.
The generators below compute check characters with independent implementations of
the rules in those sections, so they cross-check the python-stdnum based module.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from authbroker import national_ids
from authbroker.errors import InvalidInput

TODAY = date(2026, 1, 15)


def parse(value: str, country: str, **kw: object) -> tuple[str, str]:
    kw.setdefault("today", TODAY)
    return national_ids.parse(value, country, **kw)  # type: ignore[arg-type]


def reject(value: str, country: str, code: str, **kw: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(value, country, **kw)
    assert info.value.code == code
    assert_safe(info.value, value)
    return info.value


def assert_safe(exc: InvalidInput, value: str) -> None:
    """The error carries no copy of the number, not even a part of it."""
    for text in (str(exc), repr(exc), exc.message, repr(dict(exc.details))):
        if any(ch.isdigit() for ch in value):
            assert value.strip() not in text
        # Stronger: no digit at all, so no fragment of a number either.
        assert not any(ch.isdigit() for ch in text)


# --- independent check-character implementations (protocol notes §3.2-§3.5) -----

FI_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def fi_check(ddmmyynnn: str) -> str:
    return FI_ALPHABET[int(ddmmyynnn) % 31]


def ee_check(ten: str) -> str:
    s = sum(w * int(d) for w, d in zip([1, 2, 3, 4, 5, 6, 7, 8, 9, 1], ten, strict=True)) % 11
    if s == 10:
        s = sum(w * int(d) for w, d in zip([3, 4, 5, 6, 7, 8, 9, 1, 2, 3], ten, strict=True)) % 11
    return "0" if s == 10 else str(s)


def luhn_check(nine: str) -> str:
    total = 0
    for i, d in enumerate(nine):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def no_checks(nine: str) -> str | None:
    k1 = 11 - sum(w * int(d) for w, d in zip([3, 7, 6, 1, 8, 9, 4, 5, 2], nine, strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10:
        return None
    ten = nine + str(k1)
    k2 = 11 - sum(w * int(d) for w, d in zip([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], ten, strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    if k2 == 10:
        return None
    return ten + str(k2)


def no_number(ddmmyy: str, individual: int) -> str:
    """First valid Norwegian number at or after ``individual`` with this date part."""
    for i in range(individual, 1000):
        n = no_checks(f"{ddmmyy}{i:03d}")
        if n is not None:
            return n
    raise AssertionError("no valid check digits")


def ddmmyy(d: date) -> str:
    return d.strftime("%d%m") + f"{d.year % 100:02d}"


# --- examples from the protocol notes ------------------------------------------

FI_VALID = [
    "131052-308T",
    "010594Y9032",
    "020594X903P",
    "030594W903B",
    "040594V9030",
    "050594U903M",
    "010516B903X",
    "020516C903K",
    "030516D9037",
    "010501E9032",
    "020503F9037",
    "020504A902E",
    "020504B904H",
    "010280-952L",
    "010469-999W",
    "261298-998X",
    "131052Y308T",
    "131052+308T",
]
EE_VALID = [
    "37605030299",
    "36805280109",
    "30303039914",
    "30403039917",
    "30403039983",
    "50001029996",
    "30303039816",
    "50701019992",
    "30303039903",
    "30403039928",
    "51307149560",
    "10101010005",
]
NO_VALID = [
    ("15108695088", "fodselsnummer"),
    ("31129956715", "fodselsnummer"),
    ("27034698436", "fodselsnummer"),
    ("55108695071", "d-nummer"),
    ("15488695042", "h-nummer"),
]


@pytest.mark.parametrize("value", FI_VALID)
def test_fi_valid_examples_keep_their_century_sign(value: str) -> None:
    assert parse(value, "FI") == (value, "hetu")
    assert parse(value.lower(), "fi") == (value, "hetu")


def test_fi_signs_are_identity_bearing() -> None:
    """§3.2: 131052-308T, 131052Y308T, 131052+308T are different people."""
    values = {parse(v, "FI")[0] for v in ("131052-308T", "131052Y308T", "131052+308T")}
    assert len(values) == 3
    # 131052A308T is a 2052 birth date: passes stdnum (§3.2) but is in the future.
    reject("131052A308T", "FI", "bad_date")
    assert parse("131052A308T", "FI", today=date(2053, 1, 1)) == ("131052A308T", "hetu")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("131052-308U", "bad_checksum"),
        ("310252-308Y", "bad_date"),
        ("131052Z308T", "bad_format"),
        ("010101-001R", "bad_individual"),
    ],
)
def test_fi_invalid_examples(value: str, code: str) -> None:
    reject(value, "FI", code)


@pytest.mark.parametrize("value", EE_VALID)
def test_ee_valid_examples(value: str) -> None:
    assert parse(value, "EE") == (value, "isikukood")


@pytest.mark.parametrize(
    ("value", "code"),
    [("36805280108", "bad_checksum"), ("37605030290", "bad_checksum"), ("99999999999", "bad_date")],
)
def test_ee_invalid_examples(value: str, code: str) -> None:
    reject(value, "EE", code)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("880320-0016", "198803200016"),
        ("640823-3234", "196408233234"),
        ("6403273813", "196403273813"),
        ("510818-9167", "195108189167"),
        ("19900101-0017", "199001010017"),
        ("19130401+2931", "191304012931"),
        ("196408233234", "196408233234"),
        ("0001010107", "200001010107"),
        ("200002296127", "200002296127"),
        ("201701012393", "201701012393"),
    ],
)
def test_se_valid_examples_become_12_digits(value: str, canonical: str) -> None:
    assert parse(value, "SE") == (canonical, "personnummer")


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("701063-2391", "197010632391"), ("640883-3231", "196408833231")],
)
def test_se_coordination_numbers(value: str, canonical: str) -> None:
    assert parse(value, "SE") == (canonical, "samordningsnummer")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("900161-0017", "bad_checksum"),
        ("640893-3231", "bad_date"),
        ("880320-0018", "bad_checksum"),
        ("990919-3776", "bad_checksum"),
        ("9913131315", "bad_date"),
    ],
)
def test_se_invalid_examples(value: str, code: str) -> None:
    reject(value, "SE", code)


@pytest.mark.parametrize(("value", "kind"), NO_VALID)
def test_no_valid_examples(value: str, kind: str) -> None:
    assert parse(value, "NO") == (value, kind)


@pytest.mark.parametrize("value", ["16822548834", "11812448848"])
def test_no_synthetic_numbers_need_allow_synthetic(value: str) -> None:
    reject(value, "NO", "synthetic_not_allowed")
    assert parse(value, "NO", allow_synthetic=True) == (value, "synthetic")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("15108695077", "bad_checksum"),
        ("17029012345", "bad_checksum"),
        ("12345678911", "bad_date"),
    ],
)
def test_no_invalid_examples(value: str, code: str) -> None:
    reject(value, "NO", code, allow_synthetic=True)


# --- birth date and sex -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "born", "sex"),
    [
        ("131052-308T", "FI", date(1952, 10, 13), "female"),
        ("131052+308T", "FI", date(1852, 10, 13), "female"),
        ("010594Y9032", "FI", date(1994, 5, 1), "male"),
        ("020504B904H", "FI", date(2004, 5, 2), "female"),
        ("37605030299", "EE", date(1976, 5, 3), "male"),
        ("10101010005", "EE", date(1801, 1, 1), "male"),
        ("510818-9167", "SE", date(1951, 8, 18), "female"),
        ("19130401+2931", "SE", date(1913, 4, 1), "male"),
        ("701063-2391", "SE", date(1970, 10, 3), "male"),
        ("15108695088", "NO", date(1986, 10, 15), "female"),
        ("31129956715", "NO", date(1899, 12, 31), "male"),
        ("55108695071", "NO", date(1986, 10, 15), "female"),
        ("16822548834", "NO", date(1925, 2, 16), "female"),
    ],
)
def test_birthdate_and_sex(value: str, country: str, born: date, sex: str) -> None:
    canonical, kind = parse(value, country, allow_synthetic=True)
    assert national_ids.birthdate(canonical, country, kind) == born
    assert national_ids.sex(canonical, country, kind) == sex


def test_h_number_has_birthdate_but_no_sex() -> None:
    assert national_ids.birthdate("15488695042", "NO", "h-nummer") == date(1986, 8, 15)
    assert national_ids.sex("15488695042", "NO", "h-nummer") is None


@pytest.mark.parametrize(
    ("value", "country", "kind", "code"),
    [
        ("131052-308T", "FI", "isikukood", "kind"),
        ("131052-308t", "FI", "hetu", "not_canonical"),
        ("640823-3234", "SE", "personnummer", "not_canonical"),
        ("196408233234", "SE", "samordningsnummer", "not_canonical"),
        ("15108695077", "NO", "fodselsnummer", "bad_checksum"),
        ("15108695088", "DK", "fodselsnummer", "country"),
    ],
)
def test_birthdate_and_sex_want_a_canonical_value(
    value: str, country: str, kind: str, code: str
) -> None:
    for fn in (national_ids.birthdate, national_ids.sex):
        with pytest.raises(InvalidInput) as info:
            fn(value, country, kind)
        assert info.value.code == code
        assert_safe(info.value, value)


# --- gaps of python-stdnum and edge cases -------------------------------------------


def test_se_century_of_10_digit_forms_follows_today_and_separator() -> None:
    assert parse("0001010107", "SE", today=date(1999, 1, 1))[0] == "190001010107"
    assert parse("000101+0107", "SE")[0] == "190001010107"
    assert parse("130401+2931", "SE")[0] == "191304012931"
    assert parse("130401-2931", "SE")[0] == "201304012931"
    # A 10-digit number whose "-" century puts the birth later this year.
    later = date(2026, 6, 1)
    nine = f"{later:%y%m%d}123"
    ten = nine + luhn_check(nine)
    reject(ten, "SE", "bad_date")
    assert parse(ten, "SE", today=later) == ("20" + ten, "personnummer")
    assert parse(ten[:6] + "+" + ten[6:], "SE", today=later)[0] == "19" + ten


def test_se_individual_000_and_implausible_years() -> None:
    nine = "640823000"
    reject(nine + luhn_check(nine), "SE", "bad_individual")
    reject("07" + "640823" + "3234", "SE", "bad_date")


def test_no_future_birth_dates_follow_today() -> None:
    n = no_number("010130", 500)  # 2030-01-01
    reject(n, "NO", "bad_date")
    assert parse(n, "NO", today=date(2030, 1, 1)) == (n, "fodselsnummer")


def test_no_fh_numbers_and_synthetic_d_numbers() -> None:
    reject(no_number("821086", 950), "NO", "unsupported_kind", allow_synthetic=True)
    synthetic_d = no_number("568225", 488)  # day 16 + 40, month 2 + 80
    reject(synthetic_d, "NO", "synthetic_not_allowed")
    assert parse(synthetic_d, "NO", allow_synthetic=True) == (synthetic_d, "synthetic")
    assert national_ids.birthdate(synthetic_d, "NO", "synthetic") == date(1925, 2, 16)
    # A number cannot be an H-number and a D-number at once.
    reject(no_number("554886", 950), "NO", "bad_date")


def test_synthetic_rejection_only_for_otherwise_valid_numbers() -> None:
    # Month 82 but day 31 of February: a broken number, not a synthetic one.
    reject(no_number("318225", 488), "NO", "bad_date")


@pytest.mark.parametrize(
    ("value", "country", "code"),
    [
        ("١٣١٠٥٢-٣٠٨T", "FI", "bad_format"),  # Arabic-Indic digits
        ("１３１０５２-308T", "FI", "bad_format"),  # fullwidth digits
        ("131052\u2013308T", "FI", "bad_format"),  # en dash, which stdnum folds to "-"
        ("1310\n2-308T", "FI", "bad_format"),
        ("131052-308T0", "FI", "bad_length"),
        ("131052 308T", "FI", "bad_format"),
        ("３７６０５０３０２９９", "EE", "bad_format"),
        ("3760503029X", "EE", "bad_format"),
        ("640823_3234", "SE", "bad_format"),
        ("6408233234\n1", "SE", "bad_format"),
        ("64-0823-3234", "SE", "bad_format"),
        ("151086950881", "NO", "bad_length"),
        ("1510869508a", "NO", "bad_format"),
        ("", "NO", "bad_length"),
        ("1" * 33, "EE", "bad_length"),
        ("9" * 1_000_000, "SE", "bad_length"),
    ],
)
def test_malformed_inputs(value: str, country: str, code: str) -> None:
    reject(value, country, code)


def test_case_folding_cannot_smuggle_non_ascii() -> None:
    """'ſ'.upper() == 'S', a Finnish check character: must not be accepted."""
    for nnn in range(2, 900):
        body = f"131052{nnn:03d}"
        if fi_check(body) == "S":
            break
    valid = f"{body[:6]}-{body[6:]}S"
    assert parse(valid, "FI") == (valid, "hetu")
    reject(valid[:-1] + "ſ", "FI", "bad_format")


def test_whitespace_and_grouping() -> None:
    assert parse("  131052-308T\n", "FI") == ("131052-308T", "hetu")
    assert parse(" 151086 95088 ", "NO") == ("15108695088", "fodselsnummer")
    assert parse("19640823 3234", "SE")[0] == "196408233234"


@pytest.mark.parametrize("country", ["DK", "", "F I", "FIN", "\ufb01", None, 7])
def test_unsupported_country(country: object) -> None:
    with pytest.raises(InvalidInput) as info:
        national_ids.parse("131052-308T", country)  # type: ignore[arg-type]
    assert info.value.code == "country"


def test_country_is_case_insensitive_and_stripped() -> None:
    assert parse("131052-308T", " fi ") == ("131052-308T", "hetu")
    assert parse("15108695088", "No") == ("15108695088", "fodselsnummer")


def test_today_may_be_a_datetime() -> None:
    assert parse("131052A308T", "FI", today=datetime(2053, 1, 1, 12, tzinfo=UTC))[1] == "hetu"
    reject("131052A308T", "FI", "bad_date", today=datetime(2052, 10, 12, 23, 59))


def test_non_string_value() -> None:
    with pytest.raises(InvalidInput) as info:
        national_ids.parse(15108695088, "NO")  # type: ignore[arg-type]
    assert info.value.code == "bad_format"


# --- mask ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("131052-308T", "13******"),
        ("196408233234", "19******"),
        ("15108695088", "15******"),
        ("short", "********"),
        ("", "********"),
        ("\n\x1b[31mevil-log-line", "********"),
        ("a\nbcdefghij", "a*******"),
    ],
)
def test_mask_examples(value: str, masked: str) -> None:
    assert national_ids.mask(value) == masked


@given(st.text(max_size=200))
def test_mask_never_shows_more_than_two_safe_characters(value: str) -> None:
    masked = national_ids.mask(value)
    assert len(masked) == 8
    assert re.fullmatch(r"[A-Za-z0-9*]{2}\*{6}", masked)
    assert masked[:2].replace("*", "") in value


# --- generated valid numbers -------------------------------------------------------

dates = st.dates(min_value=date(1800, 1, 1), max_value=TODAY)


@st.composite
def fi_numbers(draw: st.DrawFn) -> tuple[str, date, str]:
    born = draw(dates)
    signs = {18: "+", 19: "-YXWVU", 20: "ABCDEF"}[born.year // 100]
    sign = draw(st.sampled_from(signs))
    nnn = draw(st.integers(2, 999))
    body = f"{ddmmyy(born)}{nnn:03d}"
    return f"{body[:6]}{sign}{body[6:]}{fi_check(body)}", born, "male" if nnn % 2 else "female"


@st.composite
def ee_numbers(draw: st.DrawFn) -> tuple[str, date, str]:
    born = draw(dates)
    female = draw(st.booleans())
    first = {18: 1, 19: 3, 20: 5}[born.year // 100] + female
    ten = f"{first}{born:%y%m%d}{draw(st.integers(0, 999)):03d}"
    return ten + ee_check(ten), born, "female" if female else "male"


@st.composite
def se_numbers(draw: st.DrawFn) -> tuple[str, str, date, str]:
    born = draw(dates)
    coordination = draw(st.booleans())
    nnn = draw(st.integers(1, 999))
    day = born.day + 60 if coordination else born.day
    nine = f"{born:%y%m}{day:02d}{nnn:03d}"
    canonical = f"{born.year}{nine[2:]}{luhn_check(nine)}"
    kind = "samordningsnummer" if coordination else "personnummer"
    return canonical, kind, born, "male" if nnn % 2 else "female"


@st.composite
def no_numbers(draw: st.DrawFn) -> tuple[str, str, date, str]:
    born = draw(st.dates(min_value=date(1854, 1, 1), max_value=TODAY))
    if born.year < 1900:
        individual = draw(st.integers(500, 749))
    elif born.year < 2000:
        ranges = [(0, 499), (900, 999)] if born.year >= 1940 else [(0, 499)]
        lo, hi = draw(st.sampled_from(ranges))
        individual = draw(st.integers(lo, hi))
    else:
        individual = draw(st.integers(500, 999))
    kind = draw(st.sampled_from(["fodselsnummer", "d-nummer", "h-nummer", "synthetic"]))
    day, month = born.day, born.month
    if kind == "d-nummer" or (kind == "synthetic" and draw(st.booleans())):
        day += 40
    if kind == "h-nummer":
        month += 40
    if kind == "synthetic":
        month += 80
    number = no_checks(f"{day:02d}{month:02d}{born:%y}{individual:03d}")
    assume(number is not None)
    assert number is not None
    sex = "male" if individual % 2 else "female"
    return number, kind, born, sex


@given(fi_numbers())
def test_generated_fi_numbers(case: tuple[str, date, str]) -> None:
    value, born, sex = case
    assert parse(value, "FI") == (value, "hetu")
    assert national_ids.birthdate(value, "FI", "hetu") == born
    assert national_ids.sex(value, "FI", "hetu") == sex


@given(ee_numbers())
def test_generated_ee_numbers(case: tuple[str, date, str]) -> None:
    value, born, sex = case
    assert parse(value, "EE") == (value, "isikukood")
    assert national_ids.birthdate(value, "EE", "isikukood") == born
    assert national_ids.sex(value, "EE", "isikukood") == sex


@given(se_numbers())
def test_generated_se_numbers_in_all_forms(case: tuple[str, str, date, str]) -> None:
    canonical, kind, born, sex = case
    assert parse(canonical, "SE") == (canonical, kind)
    assert parse(f"{canonical[:8]}-{canonical[8:]}", "SE") == (canonical, kind)
    age_years = TODAY.year - born.year
    if age_years < 200:
        sep = "-" if age_years < 100 else "+"
        assert parse(f"{canonical[2:8]}{sep}{canonical[8:]}", "SE") == (canonical, kind)
        if sep == "-":
            assert parse(canonical[2:], "SE") == (canonical, kind)
    assert national_ids.birthdate(canonical, "SE", kind) == born
    assert national_ids.sex(canonical, "SE", kind) == sex


@given(no_numbers())
def test_generated_no_numbers(case: tuple[str, str, date, str]) -> None:
    value, kind, born, sex = case
    assert parse(value, "NO", allow_synthetic=True) == (value, kind)
    if kind == "synthetic":
        reject(value, "NO", "synthetic_not_allowed")
    else:
        assert parse(value, "NO") == (value, kind)
    assert national_ids.birthdate(value, "NO", kind) == born
    assert national_ids.sex(value, "NO", kind) == (None if kind == "h-nummer" else sex)


@st.composite
def any_valid(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.sampled_from(["FI", "EE", "SE", "NO"]))
    strategy: dict[str, st.SearchStrategy[tuple[object, ...]]] = {
        "FI": fi_numbers(),
        "EE": ee_numbers(),
        "SE": se_numbers(),
        "NO": no_numbers(),
    }
    value = draw(strategy[country])[0]
    assert isinstance(value, str)
    return value, country


@given(any_valid())
def test_canonical_form_round_trips(case: tuple[str, str]) -> None:
    value, country = case
    canonical, kind = parse(value, country, allow_synthetic=True)
    assert parse(canonical, country, allow_synthetic=True) == (canonical, kind)
    assert kind in national_ids.KINDS[country]


@given(any_valid())
def test_mask_hides_the_number(case: tuple[str, str]) -> None:
    value, country = case
    canonical, _ = parse(value, country, allow_synthetic=True)
    for v in {value, canonical}:
        masked = national_ids.mask(v)
        assert v not in masked
        assert masked == v[:2] + "******"
        # No run of 3+ digits (so no birth date and no individual number).
        assert not re.search(r"[0-9]{3}", masked)


@given(any_valid(), st.integers(0, 12), st.characters(codec="ascii"))
def test_errors_never_contain_the_number(case: tuple[str, str], pos: int, ch: str) -> None:
    value, country = case
    pos %= len(value)
    broken = value[:pos] + ch + value[pos + 1 :]
    assume(broken != value)
    try:
        parse(broken, country)
    except InvalidInput as exc:
        assert_safe(exc, broken)
        assert_safe(exc, value)


# --- arbitrary input -----------------------------------------------------------------

countries = st.sampled_from(["FI", "EE", "SE", "NO", "fi", " se ", "DK", ""])
near_numbers = st.text(alphabet="0123456789-+ ABCDEFYXWVUZsſ٣\n", min_size=8, max_size=15)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), near_numbers), countries, st.booleans(), dates)
def test_arbitrary_strings_only_raise_invalid_input(
    value: str, country: str, allow_synthetic: bool, today: date
) -> None:
    try:
        canonical, kind = national_ids.parse(
            value, country, allow_synthetic=allow_synthetic, today=today
        )
    except InvalidInput as exc:
        assert_safe(exc, value)
        return
    c = country.strip().upper()
    assert kind in national_ids.KINDS[c]
    assert canonical.isascii()
    born = national_ids.birthdate(canonical, c, kind)
    assert born is not None
    assert born <= today
    national_ids.sex(canonical, c, kind)


@given(st.text(max_size=40), countries, st.text(max_size=20))
def test_birthdate_and_sex_only_raise_invalid_input(value: str, country: str, kind: str) -> None:
    for fn in (national_ids.birthdate, national_ids.sex):
        try:
            fn(value, country, kind)
        except InvalidInput as exc:
            assert_safe(exc, value)


def test_default_today_is_the_real_date() -> None:
    tomorrow = date.today() + timedelta(days=1)
    body = f"{ddmmyy(tomorrow)}{902:03d}"
    sign = {19: "-", 20: "A", 21: "A"}[tomorrow.year // 100]
    value = f"{body[:6]}{sign}{body[6:]}{fi_check(body)}"
    with pytest.raises(InvalidInput) as info:
        national_ids.parse(value, "FI")
    assert info.value.code == "bad_date"
