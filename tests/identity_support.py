"""One Finnish bank identity for the tests that need a signed-in person and do not
care which (sessions, link sessions): a valid test HETU, LoA high, authenticated now."""

from __future__ import annotations

from datetime import UTC, datetime

from authbroker.identity import Identity, Loa, NationalId

#: A valid Finnish personal identity code with a correct check character (test value).
HETU = "131052-308T"


def bank_identity(loa: Loa = Loa.HIGH) -> Identity:
    return Identity(
        provider="ftn",
        method="bank",
        subject="sub",
        loa=loa,
        national_id=NationalId.parse(HETU, "FI"),
        authenticated_at=datetime.now(UTC),
    )
