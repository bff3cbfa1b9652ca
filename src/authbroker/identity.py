"""The normalized identity every provider adapter ends in.

Whatever the protocol (OIDC claims, a TUPAS MAC form, a BankID completion, an X.509
certificate), a successful authentication becomes one frozen :class:`Identity`.
Downstream code can ignore the provider; ``raw`` keeps the provider's own data for
the rare caller that needs it and is never shown in ``repr``.

Identity numbers are personal data: ``repr``/``str`` of :class:`NationalId` and
:class:`Identity` show only a masked form (birth date part and the last character
hidden), so logging an identity by accident does not leak the number.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal

from . import national_ids

__all__ = ["Country", "Identity", "Loa", "NationalId", "Sex", "SubjectType"]

Country = Literal["FI", "EE", "SE", "NO"]
Sex = Literal["female", "male"]
#: Who authenticated: a natural person (the default, and what a strong *personal*
#: login means) or an organization (e.g. a TUPAS company login with only a business id).
SubjectType = Literal["person", "organization"]


class Loa(enum.IntEnum):
    """eIDAS levels of assurance; "strong" authentication means SUBSTANTIAL or above."""

    LOW = 1
    SUBSTANTIAL = 2
    HIGH = 3

    @property
    def is_strong(self) -> bool:
        return self >= Loa.SUBSTANTIAL

    @classmethod
    def parse(cls, value: str | int | Loa) -> Loa:
        """Accept ``"high"``, ``"HIGH"``, ``3`` or a Loa (configuration files use names)."""
        from .errors import ConfigError

        if isinstance(value, Loa):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                raise ConfigError(f"unknown level of assurance {value!r}") from None
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ConfigError(f"unknown level of assurance {value!r}") from None


@dataclass(frozen=True, slots=True)
class NationalId:
    """A checksum-validated national identity number in its canonical form.

    ``kind`` says which register issued it: ``hetu`` (FI), ``isikukood`` (EE),
    ``personnummer`` / ``samordningsnummer`` (SE), ``fodselsnummer`` /
    ``d-nummer`` / ``synthetic`` (NO test numbers).

    Canonical forms: FI ``DDMMYYCZZZQ`` with the century sign as issued; EE the 11
    digits; SE the 12 digits ``YYYYMMDDNNNC`` (no separator); NO the 11 digits.
    """

    country: Country
    value: str = field(repr=False)
    kind: str

    @classmethod
    def parse(
        cls,
        value: str,
        country: str,
        *,
        allow_synthetic: bool = False,
        today: date | None = None,
    ) -> NationalId:
        """Normalize and validate ``value`` as an identity number of ``country``.

        Raises :class:`authbroker.errors.InvalidInput` (never ValueError) for anything
        that is not a valid number; the message never repeats the number.
        ``allow_synthetic`` accepts Norway's synthetic test numbers (Tenor / test
        environments) that real registers never issue. ``today`` anchors the
        century of 10-digit Swedish numbers (defaults to the current date).
        """
        canonical, kind = national_ids.parse(
            value, country, allow_synthetic=allow_synthetic, today=today
        )
        return cls(country=canonical_country(country), value=canonical, kind=kind)

    @property
    def birthdate(self) -> date | None:
        """Birth date encoded in the number (None for numbers that encode none)."""
        return national_ids.birthdate(self.value, self.country, self.kind)

    @property
    def sex(self) -> Sex | None:
        """Legal sex where the number encodes it (all four countries do, for now)."""
        return national_ids.sex(self.value, self.country, self.kind)

    @property
    def masked(self) -> str:
        """A loggable form: country, kind and the number with its personal part hidden."""
        return f"{self.country}:{national_ids.mask(self.value)}"

    def __repr__(self) -> str:
        return f"NationalId({self.masked}, kind={self.kind!r})"

    def __str__(self) -> str:
        return self.masked


def canonical_country(country: str) -> Country:
    from .errors import InvalidInput

    c = country.strip().upper()
    if c not in ("FI", "EE", "SE", "NO"):
        raise InvalidInput("unsupported country for national identity numbers", code="country")
    return c  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Identity:
    """The result of a successful strong (or limited) authentication.

    ``subject`` is the provider's stable identifier for the person (OIDC ``sub``,
    certificate serial, personnummer...). ``method`` names how the person
    authenticated at the provider (``"bankid"``, ``"mobiilivarmenne"``, ``"idcard"``,
    ``"smartid"``...). ``raw`` is read-only provider data, excluded from ``repr``.
    """

    provider: str
    method: str
    subject: str = field(repr=False)
    national_id: NationalId | None
    loa: Loa
    authenticated_at: datetime
    given_name: str | None = field(default=None, repr=False)
    family_name: str | None = field(default=None, repr=False)
    birthdate: date | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    attributes: Mapping[str, str] = field(default_factory=dict, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    subject_type: SubjectType = "person"

    def __post_init__(self) -> None:
        # Freeze the mappings too: an Identity is a value, shared across threads.
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
        object.__setattr__(self, "raw", MappingProxyType(dict(self.raw)))
        if self.birthdate is None and self.national_id is not None:
            object.__setattr__(self, "birthdate", self.national_id.birthdate)

    @property
    def is_strong(self) -> bool:
        return self.loa.is_strong

    def __str__(self) -> str:
        nid = self.national_id.masked if self.national_id else "-"
        return f"{self.provider}/{self.method} {nid} loa={self.loa.name.lower()}"

    def to_dict(self, *, show_personal_data: bool = False) -> dict[str, Any]:
        """JSON-ready view; identifiers (number, subject, phone, email, identifier-like
        attributes) are masked unless asked for. Names stay: they are what a person
        checks to see the right account was used."""
        nid = None
        if self.national_id is not None:
            nid = {
                "country": self.national_id.country,
                "kind": self.national_id.kind,
                "value": (
                    self.national_id.value if show_personal_data else self.national_id.masked
                ),
            }
        return {
            "provider": self.provider,
            "method": self.method,
            "subject_type": self.subject_type,
            "subject": self.subject if show_personal_data else national_ids.mask(self.subject),
            "national_id": nid,
            "loa": self.loa.name.lower(),
            "authenticated_at": self.authenticated_at.isoformat(),
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birthdate.isoformat() if self.birthdate else None,
            "email": self.email if show_personal_data else _mask_email(self.email),
            "phone": self.phone if show_personal_data else _mask_phone(self.phone),
            "attributes": {
                k: v if show_personal_data or not _LONG_DIGITS.search(v) else national_ids.mask(v)
                for k, v in self.attributes.items()
            },
        }


#: Attribute values with a run of digits this long are identifiers (SATU, serials).
_LONG_DIGITS = re.compile(r"\d{6,}")


def _mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:4] + "*" * max(0, len(phone) - 6) + phone[-2:]


def _mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
