"""State and plumbing of the OpenID Provider simulator (one instance per started OP).

The simulator class is assembled from layers, each in its own module and each seeing
the ones below it: this core (state, clock, keys, client registration), ``tokens``
(ID token and claims minting), ``rp_requests`` (what the RP sends, verified),
``consent`` (the front channel) and ``provider`` (the endpoints and ``start``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

from ....config import ProviderConfig, Settings
from ....crypto.jose import Key, KeySet
from ....errors import ConfigError
from ....providers.oidc import PROFILE_MODULES, parse_options
from ..server import InProcessServer, LoopbackServer, SimRequest, SimResponse
from .control import OpControl
from .keys import pooled, rp_keys, rsa_key
from .persons import PERSONS, PROFILE_COUNTRIES, TestPerson
from .published import GENERIC, PUBLISHED

PREFIX = "/op"


class _Refused(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass
class _Grant:
    params: dict[str, str]
    person: TestPerson
    auth_time: int
    expires: float
    access_tokens: list[str] = field(default_factory=list)
    #: The OP session of this login (Back-Channel Logout 1.0 §2.1 ``sid``).
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))


class OpCore:
    """The provider's state; the endpoints live in the subclasses."""

    def __init__(
        self,
        config: ProviderConfig,
        settings: Settings,
        *,
        in_process: bool = False,
        browser_url: str | None = None,
    ) -> None:
        self.config = config
        #: Where a browser reaches this OP (the demo mounts it under its own origin);
        #: None = the server's own URL. Only the authorization endpoint is browser-facing.
        self.browser_url = browser_url
        self.control = OpControl()
        self.profile = config.get("claims_profile")
        if self.profile is not None and self.profile not in PROFILE_MODULES:
            raise ConfigError("unknown profile", key=config.key("claims_profile"))
        self.client_id = str(config.get("client_id") or f"authbroker-{config.name}")
        self.client_secret = secrets.token_urlsafe(32)
        self.redirect_uri = f"{settings.callback_base}/callback/{config.name}"
        #: Where the OP sends logout tokens (the RP's registered backchannel_logout_uri).
        self.backchannel_logout_uri = f"{settings.callback_base}/backchannel-logout/{config.name}"
        #: Registered post_logout_redirect_uri values (RP-Initiated Logout 1.0 §3).
        self.post_logout_redirect_uris: set[str] = {settings.base_url.rstrip("/") + "/"}
        self.end_session_requests: list[dict[str, str]] = []
        self.ended_sids: set[str] = set()
        self.published = PUBLISHED.get(str(self.profile), GENERIC)
        self.rp_keys = rp_keys(config)
        self.rp_public = KeySet()
        self.register_client_keys(self.rp_keys.to_public_jwks())
        self.rsa_key = pooled("op-rsa", lambda: rsa_key("sig", "op-rsa-1"))
        self.ec_key = pooled(
            "op-ec", lambda: Key.generate("EC", use="sig", alg="ES256", kid="op-ec-1")
        )
        self.lock = threading.Lock()
        self.codes: dict[str, _Grant] = {}
        self.redeemed: dict[str, _Grant] = {}
        self.access: dict[str, _Grant] = {}
        self.par_requests: dict[str, tuple[dict[str, str], float]] = {}
        self.txns: dict[str, tuple[dict[str, str], float]] = {}
        self.seen_jti: set[str] = set()
        self.last_redeemed: str | None = None
        self.jwks_path = f"{PREFIX}/jwks/{secrets.token_hex(8)}"
        self.server: LoopbackServer | InProcessServer = (
            InProcessServer(self.handle) if in_process else LoopbackServer(self.handle)
        )
        self.issuer = ""

    # -- plumbing --------------------------------------------------------------------

    def start(self) -> Self:
        self.server.start()
        self.issuer = f"{self.server.url}{PREFIX}"
        # The RP and the simulator read the same options; parse them once here so a
        # broken profile fails at start, with the RP's error message.
        self.options = parse_options(
            self.config.with_options(issuer=self.issuer, client_id=self.client_id)
        )
        return self

    def stop(self) -> None:
        self.server.stop()

    def now(self) -> float:
        return time.time() + self.control.clock_offset

    def count(self, endpoint: str) -> int:
        """Requests received by ``endpoint`` (``token``, ``par``, ``userinfo``, ``jwks``...)."""
        path = self.jwks_path if endpoint == "jwks" else f"{PREFIX}/{endpoint}"
        if endpoint == "userinfo":
            path = urlsplit(self.userinfo_endpoint()).path
        if endpoint == "discovery":
            path = f"{PREFIX}/.well-known/openid-configuration"
        return self.server.requests[path]

    def persons(self) -> list[TestPerson]:
        countries = PROFILE_COUNTRIES.get(str(self.profile), ("FI", "NO", "EE", "SE"))
        return [p for c in countries for p in PERSONS[c]]

    def register_client_keys(self, jwks: Mapping[str, Any]) -> None:
        """Register the RP's public JWKS, as the provider's client registration does.

        Refused (``ConfigError``) like the real provider refuses it: a key without
        ``use`` (Telia wants separate sig and enc keys), or bound to an algorithm the
        provider does not publish for that use.
        """
        keys = KeySet.from_jwks(jwks)
        p = self.published
        for key in keys.keys:
            if key.use == "sig":
                accepted = p.request_object_signing + p.token_endpoint_auth_signing
            elif key.use == "enc":
                accepted = p.encryption_algs
            else:
                raise ConfigError(f"client key {key.kid} has no use (sig or enc)")
            if key.alg is not None and key.alg not in accepted:
                raise ConfigError(
                    f"client key {key.kid}: alg {key.alg} is not supported for use {key.use}"
                )
        self.rp_public = keys

    def rotate_signing_key(self) -> str:
        """Replace the RSA signing key by a fresh one with a new kid (old one removed)."""
        key = rsa_key("sig", f"op-rsa-{secrets.token_hex(4)}")
        self.rsa_key = key
        return key.kid

    def userinfo_iss(self) -> str:
        """``iss`` of signed UserInfo: the OP, or BankID's TINFO base URL."""
        server = self.published.userinfo_server
        return f"{self.server.url}{server}" if server else self.issuer

    def userinfo_endpoint(self) -> str:
        server = self.published.userinfo_server
        return f"{self.server.url}{server}/userinfo" if server else f"{self.issuer}/userinfo"

    def _sub(self, person: TestPerson) -> str:
        if self.profile == "tara":
            return person.country + self._number(person)
        # A stable pseudonym per (simulator, person), broker style "{...}".
        return f"{{{person.id}-{self.server.port}}}"

    def _signing(self, alg: str) -> Key:
        return self.ec_key if alg.startswith("ES") else self.rsa_key

    def _alg(self) -> str:
        """The provider's published ID-token alg unless a test forces another."""
        return self.control.id_token_alg or str(
            self.config.get("sim_id_token_alg") or self.published.id_token_signing[0]
        )

    def _number(self, person: TestPerson) -> str:
        number = person.national_id
        if self.control.active("national-id-bad-checksum"):
            last = number[-1]
            number = number[:-1] + ("1" if last != "1" else "2")
        return number

    def handle(self, req: SimRequest) -> SimResponse:
        """Answer one request (the endpoints, in :class:`OpenIdProviderSim`)."""
        raise NotImplementedError
