"""Identity and NationalId: normalization through national_ids, and no leaks in reprs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authbroker.errors import ConfigError, InvalidInput
from authbroker.identity import Identity, Loa, NationalId

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TODAY = date(2026, 1, 15)

EXAMPLES = [
    ("131052-308T", "FI", "131052-308T", "hetu"),
    ("010594y9032", "fi", "010594Y9032", "hetu"),
    ("37605030299", "EE", "37605030299", "isikukood"),
    ("640823-3234", "SE", "196408233234", "personnummer"),
    ("701063-2391", " se", "197010632391", "samordningsnummer"),
    ("15108695088", "NO", "15108695088", "fodselsnummer"),
    ("55108695071", "NO", "55108695071", "d-nummer"),
]


def identity(nid: NationalId | None, **kw: object) -> Identity:
    fields: dict[str, object] = {
        "provider": "ftn",
        "method": "bankid",
        "subject": "subject-1234567890",
        "national_id": nid,
        "loa": Loa.SUBSTANTIAL,
        "authenticated_at": NOW,
        "given_name": "Maija",
        "family_name": "Meikäläinen",
        "email": "maija@example.fi",
        "phone": "+358401234567",
        "attributes": {"secret_attr": "attrvalue"},
        "raw": {"secret": "xyz"},
    }
    fields.update(kw)
    return Identity(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "country", "canonical", "kind"), EXAMPLES)
def test_national_id_parse(value: str, country: str, canonical: str, kind: str) -> None:
    nid = NationalId.parse(value, country, today=TODAY)
    assert nid.value == canonical
    assert nid.kind == kind
    assert nid.country == country.strip().upper()
    assert nid == NationalId.parse(canonical, country, today=TODAY)


def test_national_id_synthetic_needs_opt_in() -> None:
    with pytest.raises(InvalidInput) as info:
        NationalId.parse("16822548834", "NO", today=TODAY)
    assert info.value.code == "synthetic_not_allowed"
    nid = NationalId.parse("16822548834", "NO", allow_synthetic=True, today=TODAY)
    assert nid.kind == "synthetic"
    assert nid.birthdate == date(1925, 2, 16)


@pytest.mark.parametrize(
    ("value", "country", "code"),
    [("131052-308U", "FI", "bad_checksum"), ("131052-308T", "DK", "country")],
)
def test_national_id_parse_errors(value: str, country: str, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        NationalId.parse(value, country, today=TODAY)
    assert info.value.code == code
    assert value not in str(info.value)
    assert value not in repr(info.value)


def test_national_id_derived_fields() -> None:
    nid = NationalId.parse("131052-308T", "FI")
    assert nid.birthdate == date(1952, 10, 13)
    assert nid.sex == "female"
    se = NationalId.parse("640823-3234", "SE", today=TODAY)
    assert se.birthdate == date(1964, 8, 23)
    assert se.sex == "male"


@pytest.mark.parametrize(("value", "country", "canonical", "kind"), EXAMPLES)
def test_national_id_repr_and_str_are_masked(
    value: str, country: str, canonical: str, kind: str
) -> None:
    nid = NationalId.parse(value, country, today=TODAY)
    c = country.strip().upper()
    assert str(nid) == nid.masked == f"{c}:{canonical[:2]}******"
    assert repr(nid) == f"NationalId({c}:{canonical[:2]}******, kind={kind!r})"
    for text in (str(nid), repr(nid), nid.masked):
        assert canonical not in text
        assert value not in text
        assert canonical[2:8] not in text


@pytest.mark.parametrize(("value", "country", "canonical", "kind"), EXAMPLES)
def test_identity_repr_and_str_hide_number_and_raw(
    value: str, country: str, canonical: str, kind: str
) -> None:
    ident = identity(NationalId.parse(value, country, today=TODAY))
    for text in (repr(ident), str(ident)):
        assert canonical not in text
        assert value not in text
        assert canonical[2:8] not in text
        for hidden in (
            "xyz",
            "secret",
            "subject-1234567890",
            "Maija",
            "maija@example.fi",
            "+358401234567",
            "attrvalue",
        ):
            assert hidden not in text
    assert str(ident) == f"ftn/bankid {ident.national_id.masked} loa=substantial"  # type: ignore[union-attr]
    assert ident.raw["secret"] == "xyz"  # kept, just not shown


def test_identity_to_dict_masks_unless_asked() -> None:
    ident = identity(NationalId.parse("131052-308T", "FI"))
    public = ident.to_dict()
    assert "131052-308T" not in repr(public)
    assert public["national_id"] == {"country": "FI", "kind": "hetu", "value": "FI:13******"}
    assert public["subject"] == "su******"
    assert "raw" not in public
    assert "xyz" not in repr(public)
    assert public["phone"] == "+358*******67"
    assert public["email"] == "m***@example.fi"
    full = ident.to_dict(show_personal_data=True)
    assert full["national_id"]["value"] == "131052-308T"
    assert full["phone"] == "+358401234567"
    assert full["subject"] == "subject-1234567890"


def test_identity_without_national_id() -> None:
    ident = identity(None)
    assert ident.birthdate is None
    assert str(ident) == "ftn/bankid - loa=substantial"
    assert ident.to_dict()["national_id"] is None


def test_identity_birthdate_comes_from_national_id_unless_given() -> None:
    nid = NationalId.parse("131052-308T", "FI")
    assert identity(nid).birthdate == date(1952, 10, 13)
    assert identity(nid, birthdate=date(1952, 10, 14)).birthdate == date(1952, 10, 14)


def test_identity_is_frozen_including_mappings() -> None:
    raw = {"secret": "xyz"}
    ident = identity(None, raw=raw)
    raw["secret"] = "changed"
    assert ident.raw["secret"] == "xyz"
    with pytest.raises(TypeError):
        ident.raw["secret"] = "abc"  # type: ignore[index]
    with pytest.raises(TypeError):
        ident.attributes["x"] = "y"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.loa = Loa.HIGH  # type: ignore[misc]


def test_identity_equality_ignores_raw() -> None:
    nid = NationalId.parse("131052-308T", "FI")
    assert identity(nid, raw={"a": "1"}) == identity(nid, raw={"b": "2"})


@given(st.dictionaries(st.text(min_size=4), st.text(min_size=4), max_size=5))
def test_identity_repr_never_shows_raw(raw: dict[str, str]) -> None:
    nid = NationalId.parse("15108695088", "NO")
    ident = identity(nid, raw=raw, subject="s" * 10)
    text = repr(ident) + str(ident)
    for k, v in raw.items():
        # Keys/values that happen to be substrings of the visible fields don't count.
        visible = repr(dataclasses.replace(ident, raw={}))
        assert k in visible or k not in text
        assert v in visible or v not in text
    assert "15108695088" not in text


@pytest.mark.parametrize(
    ("value", "loa"),
    [("high", Loa.HIGH), (" Substantial ", Loa.SUBSTANTIAL), (1, Loa.LOW), (Loa.HIGH, Loa.HIGH)],
)
def test_loa_parse(value: str | int | Loa, loa: Loa) -> None:
    assert Loa.parse(value) is loa


@pytest.mark.parametrize("value", ["medium", 4, ""])
def test_loa_parse_rejects(value: str | int) -> None:
    with pytest.raises(ConfigError):
        Loa.parse(value)


def test_loa_strength() -> None:
    assert not Loa.LOW.is_strong
    assert Loa.SUBSTANTIAL.is_strong
    assert identity(None, loa=Loa.HIGH).is_strong
    assert not identity(None, loa=Loa.LOW).is_strong
