"""Test users, order records and the timings of the BankID RP API v6.0 simulator
(https://developers.bankid.com/api-references/auth--sign/collect)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/rp/v6.0"
RP_COMMON_NAME = "authbroker simulator RP"
NO_ACCESS_COMMON_NAME = "authbroker simulator RP without access"
#: Seconds to start the app / scan the QR before ``startFailed`` (§1.8).
START_WINDOW = 30.0
#: A QR payload is accepted for this many seconds either side of the order's age.
QR_TOLERANCE = 2
#: Finished orders stay collectable this long (§1.4): completed 3 min, failed 5 min.
KEEP_COMPLETED = 180.0
KEEP_FAILED = 300.0

PENDING = frozenset(
    {"outstandingTransaction", "noClient", "started", "userMrtd", "userCallConfirm", "userSign"}
)


@dataclass(frozen=True, slots=True)
class SimUser:
    """A scripted test user: what the order shows after the user picked it up."""

    given_name: str
    surname: str
    script: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.surname}"


#: Test users (valid personnummer, none issued to real people as far as we know; they
#: are computed test values). Scripts end in ``complete`` or a failed hint code.
TEST_USERS: Mapping[str, SimUser] = {
    "199001010017": SimUser("Erik", "Andersson", ("userSign", "complete")),
    "198512242382": SimUser("Karin", "Johansson", ("started", "userSign", "complete")),
    "197709092469": SimUser("Eva", "Sjöberg", ("noClient", "userSign", "complete")),
    "198808084449": SimUser("Sara", "Holm", ("userMrtd", "userSign", "complete")),
    "197911113335": SimUser("Johan", "Ek", ("userCallConfirm", "userSign", "complete")),
    "197203154567": SimUser("Maria", "Nilsson", ("userSign", "userCancel")),
    "196507071238": SimUser("Lars", "Svensson", ("userSign", "expiredTransaction")),
    "199505307893": SimUser("Oskar", "Lind", ("startFailed",)),
    "200002296127": SimUser("Elin", "Berg", ("certificateErr",)),
    "196012315559": SimUser("Per", "Strand", ("userCallConfirm", "userDeclinedCall")),
    "199306151110": SimUser("Nils", "Dahl", ("notSupportedByUserApp",)),
    "198104049872": SimUser("Anders", "Falk", ("userSign", "transactionRiskBlocked")),
}


def render_simple_markdown(text: str) -> str:
    """What the app would show as plain text: escapes resolved, markup removed.

    Used to check that the adapter escapes user text (SEB-07): a correctly escaped
    text renders back to exactly the original characters.
    """
    lines = []
    for raw_line in text.split("\n"):
        out: list[str] = []
        i = 0
        line = raw_line
        if line.startswith("#"):
            stripped = line.lstrip("#")
            if stripped.startswith(" "):
                line = stripped[1:]
        if line.startswith("---") and set(line) == {"-"}:
            lines.append("")
            continue
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 2
                continue
            if ch not in "*+|":
                out.append(ch)
            i += 1
        lines.append("".join(out))
    return "\n".join(lines)


@dataclass
class SimOrder:
    """One order as the simulator tracks it (tests read these)."""

    ref: str
    kind: str
    created: float
    end_user_ip: str | None
    auto_start_token: str = field(repr=False)
    qr_start_token: str = field(repr=False)
    qr_start_secret: str = field(repr=False)
    person: str | None = field(default=None, repr=False)
    user: str | None = field(default=None, repr=False)
    step: int = 0
    status: str = "pending"
    hint: str = "outstandingTransaction"
    ended_at: float | None = None
    final_collected: bool = False
    cancelled_by_rp: bool = False
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    visible_text: str | None = field(default=None, repr=False)
    completion: dict[str, Any] | None = field(default=None, repr=False)
