"""Code and SMS limits of direct links (:class:`LinkLimits`) and the attacker budget.

The defaults come from the security requirements' appendix; the bounds checked here
are NIST SP 800-63B-4 §3.1.3.2 (out-of-band codes: at least 6 digits, short lifetime)
and §3.2.2 (rate limiting), https://pages.nist.gov/800-63-4/sp800-63b.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ...errors import ConfigError

__all__ = ["LinkLimits"]


@dataclass(frozen=True, slots=True)
class LinkLimits:
    """Code and SMS limits; defaults from the security requirements' appendix.

    The per-link failure limit bounds an attacker: with ``code_digits`` d and
    ``max_failures_per_link`` L, one link gives at most L guesses between two
    successful logins, a success chance of L / 10^d (R-15; 10 / 10^6 = 1e-5).
    """

    code_digits: int = 6
    code_ttl: float = 300.0
    max_attempts_per_challenge: int = 5
    max_failures_per_link: int = 10
    max_failures_per_user: int = 20
    user_failure_window: float = 24 * 3600.0
    resend_cooldown: float = 30.0
    sends_per_link: int = 3
    sends_per_phone: int = 5
    sends_per_ip: int = 20
    send_window: float = 3600.0
    global_daily_sends: int = 10_000
    max_link_ttl: float = 30 * 24 * 3600.0
    grant_ttl: float = 15 * 60.0
    #: How long a challenge can still be re-sent after its code expired.
    challenge_record_ttl: float = 3600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError("must be a non-negative number", key=f"links.{f.name}")
        if not 6 <= self.code_digits <= 10:
            raise ConfigError("must be 6..10 (63B-4 §3.1.3.2)", key="links.code_digits")
        if not 30 <= self.code_ttl <= 600:
            raise ConfigError("must be 30..600 seconds (at most 10 min)", key="links.code_ttl")
        if not 1 <= self.max_attempts_per_challenge <= self.max_failures_per_link <= 100:
            raise ConfigError(
                "need 1 <= per-challenge <= per-link <= 100 (63B-4 §3.2.2)",
                key="links.max_failures_per_link",
            )
        for name in ("sends_per_link", "sends_per_phone", "sends_per_ip", "global_daily_sends"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", key=f"links.{name}")
        for name in ("send_window", "user_failure_window", "max_link_ttl", "grant_ttl"):
            if getattr(self, name) <= 0:
                raise ConfigError("must be positive", key=f"links.{name}")
        if self.challenge_record_ttl < self.code_ttl:
            raise ConfigError("must be at least code_ttl", key="links.challenge_record_ttl")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> LinkLimits:
        """From the ``[links]`` table of authbroker.toml (unknown keys refused)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - names)
        if unknown:
            raise ConfigError("unknown setting", key=f"links.{unknown[0]}")
        return cls(**{k: v for k, v in table.items() if k in names})

    def guess_probability(self) -> float:
        """Chance that blind guessing opens one link between two successes (R-15)."""
        return float(self.max_failures_per_link) / float(10**self.code_digits)
