"""Test persons of the OpenID Provider simulator, per country."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TestPerson:
    """A simulator test person with a valid identity number."""

    id: str
    country: str
    national_id: str = field(repr=False)
    given_name: str
    family_name: str
    birthdate: str
    #: Finnish electronic identification number (Mobiilivarmenne / ID card); FI only.
    satu: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "country": self.country,
            "national_id": self.national_id,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birthdate,
        }


#: Test persons per country; every number passes its checksum (published test data:
#: Telia integration guide v2.35, Signicat's FTN documentation, TARA's Testing.md,
#: Idura's documentation, Skatteetaten's synthetic numbers).
PERSONS: Mapping[str, tuple[TestPerson, ...]] = {
    "FI": (
        TestPerson(
            "fi-vaino", "FI", "070770-905D", "Väinö", "Tunnistus", "1970-07-07", "99900101X"
        ),
        TestPerson("fi-aktia", "FI", "010170-999R", "Aino", "Aktia", "1970-01-01", "99900102Y"),
    ),
    "NO": (
        TestPerson("no-kari", "NO", "27034698436", "Kari", "Nordmann", "1946-03-27"),
        TestPerson("no-ola", "NO", "15108695088", "Ola", "Nordmann", "1986-10-15"),
    ),
    "EE": (
        TestPerson("ee-jaak", "EE", "38001085718", "Jaak-Kristjan", "Jõeorg", "1980-01-08"),
        TestPerson("ee-mid", "EE", "60001017869", "Eid2016", "Testnumber", "2000-01-01"),
    ),
    "SE": (
        TestPerson("se-sven", "SE", "196802020575", "Sven", "Svensson", "1968-02-02"),
        TestPerson("se-karin", "SE", "198112289874", "Karin", "Karlsson", "1981-12-28"),
    ),
}

PROFILE_COUNTRIES = {"ftn": ("FI",), "bankid-no": ("NO",), "tara": ("EE",)}
