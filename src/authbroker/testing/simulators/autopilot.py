"""The simulated *user*: what a person would do at each step, against a simulator.

The CLI's ``--env simulator`` mode and the demo's unattended runs need somebody to
pick a test person on the OpenID Provider, scan the animated BankID QR, confirm on
the phone, and sign a Web eID challenge. This module plays that part through each
simulator's own controls, so the adapter still meets the real protocol: the QR that
gets scanned is the payload the adapter produced for the current second, and the
simulator verifies it as the BankID app would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from ...steps import Display
from ..registry import RunningSimulator

__all__ = ["Autopilot"]

#: Default test users (valid identity numbers of the simulators' test sets).
BANKID_SE_USER = "199001010017"


@dataclass
class Autopilot:
    """Acts for the user of one flow. ``person`` chooses a test person where it matters."""

    protocol: str
    simulator: RunningSimulator | None
    person: str | None = None
    #: Seconds the simulated user waits before scanning / opening the app.
    delay: float = 0.0
    _scanned: bool = field(default=False, init=False)
    _since: float | None = field(default=None, init=False)

    def prepare(self, params: Mapping[str, str]) -> dict[str, str]:
        """Configure the simulator for an unattended run; return the begin parameters."""
        out = dict(params)
        extra: Mapping[str, Any] = self.simulator.extra if self.simulator else {}
        if self.protocol == "oidc" and "control" in extra:
            extra["control"].auto_approve = self.person or True
        elif self.protocol == "mobiilivarmenne" and "phone" not in out:
            users = extra.get("users") or []
            if not users:
                raise ConfigError("the MSSP simulator has no test users", key="flow")
            out["phone"] = self.person or str(users[0]["msisdn"])
        elif self.protocol == "tupas" and "control" in extra and self.person:
            control = extra["control"]
            if hasattr(control, "customer"):
                control.customer = self.person
        return out

    def on_poll(self, display: Display) -> None:
        """Between polls: scan the QR / open the app once, as the user would."""
        if self.protocol != "bankid-se" or self._scanned or self.simulator is None:
            return
        sim = self.simulator.extra.get("simulator")
        if sim is None:
            return
        now = time.monotonic()
        if self._since is None:
            self._since = now
        if now - self._since < self.delay:
            return
        person = self.person or BANKID_SE_USER
        if display.qr:
            self._scanned = sim.scan(display.qr, person) == "ok"
        elif display.autostart_url and "autostarttoken=" in display.autostart_url:
            token = display.autostart_url.split("autostarttoken=")[1].split("&")[0]
            self._scanned = sim.autostart(token, person) == "ok"

    def sign_challenge(self, origin: str, nonce: str) -> str:
        """A Web eID authentication token from the simulator's test card."""
        make_token = self.simulator.extra.get("make_token") if self.simulator else None
        if make_token is None:
            raise ConfigError(
                "Web eID needs a browser with the Web eID extension outside the simulator",
                key="flow",
            )
        return str(make_token(origin, nonce))
