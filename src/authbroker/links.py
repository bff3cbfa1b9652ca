"""Personal direct links with SMS one-time codes: limited-scope access without strong login.

A link names one user, one scope (``invoice:approve``) and one resource (invoice
``123``). Opening it sends a one-time code by SMS to the phone stored with the link;
the right code yields a :class:`LinkGrant` for exactly that scope and resource.
Anything else needs strong authentication (DESIGN "Access levels").

How the security requirements (docs/security-model.md, requirement catalogue) land:

* LNK-01 — the URL token is an ``itsdangerous`` ``URLSafeTimedSerializer`` value with
  the purpose salt ``authbroker.link.v1``, HMAC-SHA256, a list of secrets (newest
  signs, all verify) and ``max_age`` on every load. Its payload is only a random
  256-bit link id: signing does not hide a payload, so no personal data goes there.
* LNK-02 — the link record (user, E.164 phone, scope, resource, expiry, single-use
  flag) lives server-side in the :class:`~authbroker.store.base.StateStore`.
  Revocation is immediate, per link (:meth:`DirectLinks.revoke`) and per user
  (:meth:`DirectLinks.revoke_user`, a per-user epoch). A single-use link is consumed
  atomically (``put_if_absent``) when its grant is issued.
* OTP-01/02/03 — codes are ``digits`` (default 6) uniform decimal digits from
  ``secrets.randbelow``; only an HMAC (server key, challenge id and link id as
  context) is stored and compared with ``hmac.compare_digest``; they expire (default
  5 min, at most 10) and are accepted once (atomic ``take``). A new challenge
  supersedes the previous one; a challenge may be bound to the browser.
* OTP-04/05 — every evaluation of a code first *reserves* an attempt with an atomic
  ``incr`` on the challenge counter and on the per-link failure counter; over the
  limit, the attempt is refused without looking at the code and its reservation is
  returned. So N concurrent guesses evaluate at most ``max_attempts`` codes, on every
  store, and the counters end at the exact number of failures. The per-link counter
  survives resends (63B-4 §3.1.3.2, decision 5) and is cleared by a success.
* OTP-06 / C11 — the destination is always the stored number, never from the request;
  resend cooldown and fixed-window caps per link, per phone, per client IP and a
  global daily budget, each an atomic counter; over a cap nothing is sent.
* LOG-02 — audit events carry masked numbers, pseudonymous user references and id
  prefixes; codes, tokens and full numbers never reach an event, an error or a repr.

The logic is written once as sans-I/O routines (``_LinksCore``); :class:`DirectLinks`
runs them with blocking I/O, :class:`AsyncDirectLinks` with asyncio. Sending the SMS
happens between two store routines, with the sender's own retry loop
(:mod:`authbroker.sms.base`).

Clocks: expiry of links, codes and grants is judged with the injected ``clock``
(wall-clock seconds); store TTLs bound the same items and are also what runs the
rate-limit windows and the cooldown, so an item ends at whichever comes first.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import itsdangerous
import phonenumbers

from .audit import AuditLog
from .config import Settings, check_secret_keys
from .config_schema import Option, Schema
from .errors import (
    AccessDenied,
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    InvalidSignature,
    Locked,
    RateLimited,
    ScopeDenied,
)
from .flow import (
    Gen,
    run_async,
    run_sync,
    store_delete,
    store_get,
    store_incr,
    store_put,
    store_put_if_absent,
    store_take,
)
from .http import AsyncDriver, SyncDriver
from .sms.base import SmsMessage, SmsReceipt, SmsSender, deliver_async, deliver_sync, mask_phone
from .sms.messages import normalize_language, origin_host, render_code_message
from .store.base import AsyncStateStore, StateStore

__all__ = [
    "CONFIG_SECTION",
    "LINK_SALT",
    "AsyncDirectLinks",
    "DirectLinks",
    "IssuedLink",
    "LinkGrant",
    "LinkLimits",
    "OtpChallenge",
    "link_live_gen",
    "links_options",
    "user_ref",
]

#: itsdangerous salt: a link token is valid for this purpose only (C16).
LINK_SALT = "authbroker.link.v1"
MAX_TOKEN_LENGTH = 512
DEFAULT_REGIONS = ("FI", "AX", "SE", "NO", "EE")

_SCOPE_RE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)

# Store key prefixes. Values are JSON or decimal counters, never pickles (STO-05); key
# names carry random ids and keyed hashes only.
K_LINK = "lnk:"  # + link id -> link record
K_REVOKED = "lnk:rev:"  # + link id -> marker
K_USED = "lnk:used:"  # + link id -> single-use consumed marker
K_CURRENT = "lnk:cur:"  # + link id -> id of the current challenge
K_GEN = "lnk:gen:"  # + link id -> failure-counter generation (bumped by a success)
K_LINK_FAIL = "lnk:fail:"  # + link id + ":" + gen -> per-link failure counter
K_USER_EPOCH = "usr:ep:"  # + user ref -> revocation epoch (random)
K_USER_GEN = "usr:gen:"  # + user ref -> failure-counter generation (bumped by a success)
K_USER_FAIL = "usr:fail:"  # + user ref + ":" + gen -> per-user failure counter (window)
K_CHALLENGE = "otp:ch:"  # + challenge id -> challenge record
K_ATTEMPTS = "otp:att:"  # + challenge id -> attempt reservations
K_CH_USED = "otp:used:"  # + challenge id -> consumed marker
K_COOLDOWN = "sms:cool:"  # + link id
K_SENDS_LINK = "sms:link:"
K_SENDS_PHONE = "sms:phone:"
K_SENDS_IP = "sms:ip:"
K_SENDS_DAY = "sms:day:"


# --- public values --------------------------------------------------------------------


def _canonical_b64url(segment: str) -> bool:
    """True when ``segment`` is unpadded base64url in its one canonical spelling."""
    if not segment or not segment.isascii():
        return False
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == segment


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


#: One line per :class:`LinkLimits` field, for the ``[links]`` schema below.
_LIMIT_MEANINGS: Mapping[str, str] = {
    "code_digits": "digits of an SMS code (6..10)",
    "code_ttl": "seconds an SMS code is valid (30..600)",
    "max_attempts_per_challenge": "wrong codes allowed per sent code",
    "max_failures_per_link": "wrong codes allowed per link between two successes",
    "max_failures_per_user": "wrong codes allowed per user per user_failure_window",
    "user_failure_window": "seconds over which max_failures_per_user counts",
    "resend_cooldown": "seconds before a code may be sent again",
    "sends_per_link": "codes sent per link per send_window",
    "sends_per_phone": "codes sent per phone number per send_window",
    "sends_per_ip": "codes sent per client IP per send_window",
    "send_window": "seconds over which the send limits count",
    "global_daily_sends": "codes sent per day in total",
    "max_link_ttl": "longest link lifetime in seconds",
    "grant_ttl": "seconds a grant lasts after a correct code",
    "challenge_record_ttl": "seconds a challenge can be re-sent after its code expired",
}

#: The ``[links]`` table: :func:`links_options` reads these keys and nothing else.
CONFIG_SECTION = Schema(
    "links",
    "Direct links with SMS codes.",
    (
        Option("base_url", "string", None, "host of link URLs (default: broker.base_url)"),
        Option("link_path", "string", None, "path of link URLs (default: route_prefix + /link)"),
        Option("service_name", "string", None, "service name shown in the SMS"),
        Option("default_region", "string", None, "region of phone numbers without +"),
        Option("allowed_regions", "string list", None, "regions whose numbers may get codes"),
        *(
            Option(
                f.name,
                "integer" if f.type == "int" else "number",
                f.default,
                _LIMIT_MEANINGS[f.name],
            )
            for f in fields(LinkLimits)
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """What :meth:`DirectLinks.issue_link` returns; ``url`` is a bearer secret."""

    url: str = field(repr=False)
    link_id: str = field(repr=False)
    expires_at: float

    def __repr__(self) -> str:
        return f"IssuedLink(link={self.link_id[:8]}..., expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class OtpChallenge:
    """A code was sent; the page asks for it. ``challenge_id`` goes in a cookie/form."""

    challenge_id: str = field(repr=False)
    masked_phone: str
    expires_at: float
    resend_after: float


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """Access to exactly ``scope`` on ``resource`` for ``user_id`` until ``expires_at``."""

    user_id: str = field(repr=False)
    scope: str
    resource: str
    expires_at: float
    link_id: str = field(repr=False)

    def allows(self, scope: str, resource: str, *, now: float | None = None) -> bool:
        """True only for the exact scope and resource, while the grant is live."""
        current = time.time() if now is None else now
        return current < self.expires_at and scope == self.scope and resource == self.resource

    def require(self, scope: str, resource: str, *, now: float | None = None) -> None:
        """Raise :class:`ScopeDenied` (step-up needed) unless :meth:`allows`."""
        current = time.time() if now is None else now
        if current >= self.expires_at:
            raise Expired("the link session has expired", code="grant_expired")
        if not self.allows(scope, resource, now=current):
            raise ScopeDenied("outside the scope of this link", code="link_scope")


# --- helpers --------------------------------------------------------------------------


def _encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def _decode(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"corrupt {what} record", code="record_corrupt") from exc
    if not isinstance(value, dict) or value.get("v") != 1:
        raise InvalidInput(f"corrupt {what} record", code="record_corrupt")
    return value


def _short(identifier: str) -> str:
    """A log-safe prefix of a random id (enough to correlate, useless as a bearer)."""
    return identifier[:8]


def _check_text(value: object, name: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidInput(f"{name} must be a non-empty string", code=f"bad_{name}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        raise InvalidInput(f"{name} contains control characters", code=f"bad_{name}")
    return value


def _ttl_left(expires_at: float, now: float) -> float:
    """A store TTL for something that ends at ``expires_at`` (at least one second)."""
    return max(1.0, expires_at - now)


def link_live_gen(link_id: str, now: float) -> Gen[bool]:
    """Whether what a link granted may still be used: its record is there (not
    revoked, LNK-02), it has not expired and its user was not revoked since
    (:meth:`DirectLinks.revoke_user` epoch). A session opened with a link checks this
    on every load, so revoking a link ends the sessions it opened at once.

    A single-use link that was consumed is still live here: consuming it is what
    opened the session.
    """
    if not isinstance(link_id, str) or not _ID_RE.fullmatch(link_id):
        return False
    raw = yield from store_get(K_LINK + link_id)
    if raw is None:
        return False
    try:
        link = _decode(raw, "link")
        expired = float(link["e"]) <= now
        uref = user_ref(str(link["u"]))
    except (InvalidInput, KeyError, TypeError, ValueError):
        return False
    if expired:
        return False
    epoch = yield from store_get(K_USER_EPOCH + uref)
    return epoch is None or hmac.compare_digest(epoch.decode(), str(link.get("ep", "")))


class _Keys:
    """Secret-derived keys. The first secret is the newest and signs; all verify."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        secret_keys = check_secret_keys(secret_keys, key="secret_keys")
        self._secrets = [k.encode() for k in secret_keys]
        self._otp = [self._derive(k, b"authbroker.otp.v1") for k in self._secrets]
        self._kids = [self._derive(k, b"authbroker.otp.kid")[:6].hex() for k in self._secrets]
        self._index = self._derive(self._secrets[0], b"authbroker.link.index.v1")

    @staticmethod
    def _derive(secret: bytes, label: bytes) -> bytes:
        return hmac.new(secret, label, hashlib.sha256).digest()

    @property
    def itsdangerous_keys(self) -> list[bytes]:
        # itsdangerous wants oldest..newest and signs with the last one.
        return list(reversed(self._secrets))

    def code_mac(self, code: str, challenge_id: str, link_id: str) -> tuple[str, str]:
        """(key id, MAC hex) with the newest key (OTP-01: keyed hash, id as context)."""
        return self._kids[0], self._mac(self._otp[0], code, challenge_id, link_id)

    def check_code(self, kid: str, mac: str, code: str, challenge_id: str, link_id: str) -> bool:
        matched = False
        for index, candidate in enumerate(self._kids):
            if hmac.compare_digest(candidate, kid):
                expected = self._mac(self._otp[index], code, challenge_id, link_id)
                matched = hmac.compare_digest(expected, mac) or matched
        return matched

    @staticmethod
    def _mac(key: bytes, code: str, challenge_id: str, link_id: str) -> str:
        msg = f"{challenge_id}\x00{link_id}\x00{code}".encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()

    def index(self, kind: str, value: str) -> str:
        """Keyed hash for store key names holding personal data (phone, IP)."""
        return hmac.new(self._index, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def binding(self, binding: str | None, kid: str | None = None) -> str:
        """MAC of a browser binding, with the key a challenge's code MAC used."""
        if not binding:
            return ""
        index = 0
        if kid is not None:
            matches = [i for i, k in enumerate(self._kids) if hmac.compare_digest(k, kid)]
            if not matches:
                return "no-key"  # the key was retired: nothing can match
            index = matches[0]
        msg = b"binding\x00" + binding.encode()
        return hmac.new(self._otp[index], msg, hashlib.sha256).hexdigest()


def user_ref(user_id: str) -> str:
    """A stable pseudonymous reference for a user id (store keys, audit subjects).

    Unkeyed on purpose: it must survive secret rotation (the per-user revocation
    epoch is stored under it). User ids are account identifiers; national identity
    numbers must not be used as user ids.
    """
    return "u_" + hashlib.sha256(b"authbroker.user\x00" + user_id.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """Between the two store routines of ``open``: what to send, what to answer."""

    challenge: OtpChallenge
    message: SmsMessage
    link_id: str
    subject: str
    client_ip: str | None


class _LinksCore:
    """Rules and sans-I/O routines shared by :class:`DirectLinks` and the async twin."""

    def __init__(
        self,
        *,
        sms: SmsSender,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str,
        audit: AuditLog | None,
        clock: Callable[[], float],
        limits: LinkLimits | None,
        allowed_regions: Sequence[str],
        default_region: str,
        service_name: str | None,
        send_veto: Callable[[str, str], bool] | None,
    ) -> None:
        self.keys = _Keys(secret_keys)
        self.sms = sms
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("must be an absolute http(s) URL", key="links.base_url")
        self.host = origin_host(base_url)
        self.base_url = base_url.rstrip("/")
        self.link_path = "/" + link_path.strip("/")
        self.audit = audit or AuditLog()
        self.clock = clock
        self.limits = limits or LinkLimits()
        self.allowed_regions = frozenset(r.upper() for r in allowed_regions)
        if not self.allowed_regions:
            raise ConfigError("needs at least one region", key="links.allowed_regions")
        self.default_region = default_region.upper()
        self.service_name = service_name or self.host
        self.send_veto = send_veto
        clock_fn = clock

        class _ClockSigner(itsdangerous.TimestampSigner):
            # itsdangerous reads time.time(); links follow the injected clock instead.
            def get_timestamp(self) -> int:
                return int(clock_fn())

        self.serializer = itsdangerous.URLSafeTimedSerializer(
            self.keys.itsdangerous_keys,
            salt=LINK_SALT,
            signer=_ClockSigner,
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    # -- tokens ------------------------------------------------------------------

    def link_id_from_token(self, token: str) -> str:
        """The link id in a token whose signature and age check out."""
        if not isinstance(token, str) or not 16 <= len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidSignature("malformed link", code="link_malformed")
        if not all(_canonical_b64url(part) for part in token.split(".")):
            # base64 leaves spare bits in a last character: several spellings decode to
            # the same bytes. Only the one spelling we issue is a valid link, so a token
            # string identifies exactly one link (logs, caches, revocation lists).
            raise InvalidSignature("the link is not valid", code="link_invalid")
        try:
            value = self.serializer.loads(token, max_age=int(self.limits.max_link_ttl))
        except itsdangerous.SignatureExpired as exc:
            signed = exc.date_signed.timestamp() if exc.date_signed is not None else 0.0
            if signed > self.clock():
                # Signed "in the future": a clock problem or a forgery, never a valid link.
                raise InvalidSignature("the link is not valid", code="link_future") from exc
            raise Expired("the link has expired", code="link_expired") from exc
        except itsdangerous.BadData as exc:
            raise InvalidSignature("the link is not valid", code="link_invalid") from exc
        if not isinstance(value, str) or not _ID_RE.fullmatch(value):
            raise InvalidSignature("the link is not valid", code="link_invalid")
        return value

    def normalize_phone(self, phone: str) -> str:
        """E.164 for a mobile number in an allowed region (InvalidInput otherwise)."""
        if not isinstance(phone, str) or len(phone) > 32:
            raise InvalidInput("phone number is not valid", code="bad_phone")
        try:
            number = phonenumbers.parse(phone, self.default_region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidInput("phone number is not valid", code="bad_phone") from exc
        if not phonenumbers.is_valid_number(number):
            raise InvalidInput("phone number is not valid", code="bad_phone")
        if phonenumbers.number_type(number) not in _MOBILE_TYPES:
            raise InvalidInput("phone number is not a mobile number", code="phone_not_mobile")
        region = phonenumbers.region_code_for_number(number)
        if region not in self.allowed_regions:
            raise InvalidInput("phone number country is not allowed", code="phone_region")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    # -- issue / revoke --------------------------------------------------------------

    def issue_gen(
        self,
        user_id: str,
        phone: str,
        scope: str,
        resource: str,
        ttl: float,
        single_use: bool,
        language: str,
    ) -> Gen[IssuedLink]:
        user_id = _check_text(user_id, "user_id")
        if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
            raise InvalidInput("scope must look like 'invoice:approve'", code="bad_scope")
        resource = _check_text(resource, "resource")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise InvalidInput("ttl must be a number of seconds", code="bad_ttl")
        if not 60 <= ttl <= self.limits.max_link_ttl:
            raise InvalidInput("ttl is outside the allowed range", code="bad_ttl")
        lang = normalize_language(language)
        e164 = self.normalize_phone(phone)
        now = self.clock()
        link_id = secrets.token_urlsafe(32)
        expires_at = now + float(ttl)
        uref = user_ref(user_id)
        epoch = yield from store_get(K_USER_EPOCH + uref)
        record = {
            "v": 1,
            "u": user_id,
            "p": e164,
            "s": scope,
            "r": resource,
            "i": now,
            "e": expires_at,
            "su": bool(single_use),
            "l": lang,
            "ep": epoch.decode() if epoch else "",
        }
        yield from store_put(K_LINK + link_id, _encode(record), float(ttl))
        token = self.serializer.dumps(link_id)
        self.audit.emit(
            "link.issued",
            "info",
            subject=uref,
            details={
                "link": _short(link_id),
                "scope": scope,
                "resource": resource,
                "single_use": bool(single_use),
                "expires_at": expires_at,
                "to": mask_phone(e164),
            },
        )
        return IssuedLink(f"{self.base_url}{self.link_path}/{token}", link_id, expires_at)

    def revoke_gen(self, link_id: str) -> Gen[bool]:
        if not isinstance(link_id, str) or not _ID_RE.fullmatch(link_id):
            raise InvalidInput("not a link id", code="bad_link_id")
        raw = yield from store_take(K_LINK + link_id)
        yield from store_put(K_REVOKED + link_id, b"1", self.limits.max_link_ttl)
        current = yield from store_get(K_CURRENT + link_id)
        if current:
            yield from store_delete(K_CHALLENGE + current.decode())
        subject = None
        if raw is not None:
            subject = user_ref(str(_decode(raw, "link").get("u", "")))
        self.audit.emit(
            "link.revoked",
            "info",
            subject=subject,
            details={"link": _short(link_id), "scope_of_revocation": "link"},
        )
        return raw is not None

    def revoke_user_gen(self, user_id: str) -> Gen[None]:
        user_id = _check_text(user_id, "user_id")
        uref = user_ref(user_id)
        # A fresh random epoch: every link issued before it stops working. The key
        # outlives every such link (max_link_ttl); when it is gone, so are they.
        epoch = secrets.token_urlsafe(12).encode()
        yield from store_put(K_USER_EPOCH + uref, epoch, self.limits.max_link_ttl)
        self.audit.emit(
            "link.revoked", "info", subject=uref, details={"scope_of_revocation": "user"}
        )

    # -- loading and checking a link ---------------------------------------------

    def _load_link(self, link_id: str, now: float) -> Gen[dict[str, Any]]:
        raw = yield from store_get(K_LINK + link_id)
        if raw is None:
            revoked = yield from store_get(K_REVOKED + link_id)
            if revoked is not None:
                raise AccessDenied("the link has been revoked", code="link_revoked")
            raise Expired("the link has expired", code="link_expired")
        link = _decode(raw, "link")
        if float(link["e"]) <= now:
            raise Expired("the link has expired", code="link_expired")
        epoch = yield from store_get(K_USER_EPOCH + user_ref(str(link["u"])))
        if epoch is not None and not hmac.compare_digest(epoch.decode(), str(link["ep"])):
            raise AccessDenied("the link has been revoked", code="link_revoked")
        if link.get("su"):
            used = yield from store_get(K_USED + link_id)
            if used is not None:
                raise AlreadyUsed("the link has already been used", code="link_used")
        return link

    def _check_locks(self, link_id: str, uref: str) -> Gen[int]:
        """Refuse a locked link/user; return the link's failure-counter generation."""
        raw_gen = yield from store_get(K_GEN + link_id)
        gen = int(raw_gen) if raw_gen else 0
        fails = yield from store_get(f"{K_LINK_FAIL}{link_id}:{gen}")
        if fails is not None and int(fails) >= self.limits.max_failures_per_link:
            raise Locked("too many wrong codes for this link", code="link_locked")
        user_key = yield from self._user_fail_key(uref)
        user_fails = yield from store_get(user_key)
        if user_fails is not None and int(user_fails) >= self.limits.max_failures_per_user:
            raise Locked("too many wrong codes", code="user_locked")
        return gen

    def _user_fail_key(self, uref: str) -> Gen[str]:
        """The user's current failure counter: a success starts a new generation, so a
        late refund of an attempt that began before it cannot go below zero."""
        raw = yield from store_get(K_USER_GEN + uref)
        return f"{K_USER_FAIL}{uref}:{int(raw) if raw else 0}"

    # -- open / resend -------------------------------------------------------------

    def open_gen(self, token: str, client_ip: str | None, binding: str | None) -> Gen[_Outgoing]:
        now = self.clock()
        try:
            link_id = self.link_id_from_token(token)
        except AuthBrokerError as exc:
            self._audit_open_failure(None, None, client_ip, exc)
            raise
        return (yield from self._challenge_gen(link_id, client_ip, binding, now))

    def resend_gen(
        self, challenge_id: str, client_ip: str | None, binding: str | None
    ) -> Gen[_Outgoing]:
        now = self.clock()
        challenge = yield from self._load_challenge(challenge_id, binding)
        return (yield from self._challenge_gen(str(challenge["k"]), client_ip, binding, now))

    def _challenge_gen(
        self, link_id: str, client_ip: str | None, binding: str | None, now: float
    ) -> Gen[_Outgoing]:
        uref: str | None = None
        try:
            link = yield from self._load_link(link_id, now)
            uref = user_ref(str(link["u"]))
            phone = str(link["p"])
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
            if region not in self.allowed_regions:
                raise AccessDenied("destination country is not allowed", code="phone_region")
            if self.send_veto is not None and self.send_veto(str(link["u"]), phone):
                raise AccessDenied("sending to this number is blocked", code="send_vetoed")
            gen = yield from self._check_locks(link_id, uref)
            yield from self._claim_send(link_id, phone, client_ip, now)
        except AuthBrokerError as exc:
            self._audit_open_failure(link_id, uref, client_ip, exc)
            raise
        subject = uref

        limits = self.limits
        code = f"{secrets.randbelow(10**limits.code_digits):0{limits.code_digits}d}"
        challenge_id = secrets.token_urlsafe(32)
        kid, mac = self.keys.code_mac(code, challenge_id, link_id)
        expires_at = now + limits.code_ttl
        link_expires = float(link["e"])
        record_ttl = min(limits.challenge_record_ttl, _ttl_left(link_expires, now))
        record_ttl = max(record_ttl, limits.code_ttl)
        record = {
            "v": 1,
            "k": link_id,
            "kid": kid,
            "h": mac,
            "e": expires_at,
            "b": self.keys.binding(binding),
            "g": gen,
        }
        yield from store_put(K_CHALLENGE + challenge_id, _encode(record), record_ttl)
        previous = yield from store_get(K_CURRENT + link_id)
        yield from store_put(
            K_CURRENT + link_id, challenge_id.encode(), _ttl_left(link_expires, now)
        )
        if previous is not None and previous.decode() != challenge_id:
            # OTP-03: a new code invalidates the previous one.
            yield from store_delete(K_CHALLENGE + previous.decode())
        body = render_code_message(
            str(link["l"]),
            code=code,
            host=self.host,
            service=self.service_name,
            minutes=max(1, round(limits.code_ttl / 60)),
        )
        self.audit.emit(
            "link.opened",
            "success",
            subject=subject,
            client_ip=client_ip,
            details={"link": _short(link_id), "challenge": _short(challenge_id)},
        )
        challenge = OtpChallenge(
            challenge_id=challenge_id,
            masked_phone=mask_phone(phone),
            expires_at=expires_at,
            resend_after=now + limits.resend_cooldown,
        )
        message = SmsMessage(to=phone, body=body, reference=_short(challenge_id))
        return _Outgoing(challenge, message, link_id, subject, client_ip)

    def _claim_send(self, link_id: str, phone: str, client_ip: str | None, now: float) -> Gen[None]:
        """Cooldown, then each cap as one atomic counter; a refusal returns its tokens."""
        limits = self.limits
        if limits.resend_cooldown > 0:
            until = str(now + limits.resend_cooldown).encode()
            claimed = yield from store_put_if_absent(
                K_COOLDOWN + link_id, until, limits.resend_cooldown
            )
            if not claimed:
                raw = yield from store_get(K_COOLDOWN + link_id)
                wait = limits.resend_cooldown
                if raw is not None:
                    with contextlib.suppress(ValueError):
                        wait = max(0.0, min(wait, float(raw) - now))
                raise RateLimited(
                    "wait before asking for a new code", retry_after=wait, code="sms_cooldown"
                )
        day = time.strftime("%Y%m%d", time.gmtime(now))
        caps = (
            (K_SENDS_LINK + link_id, limits.sends_per_link, limits.send_window, "sms_cap_link"),
            (
                K_SENDS_PHONE + self.keys.index("phone", phone),
                limits.sends_per_phone,
                limits.send_window,
                "sms_cap_phone",
            ),
            (
                K_SENDS_IP + self.keys.index("ip", client_ip or "-"),
                limits.sends_per_ip,
                limits.send_window,
                "sms_cap_ip",
            ),
            (K_SENDS_DAY + day, limits.global_daily_sends, 2 * 86400.0, "sms_cap_global"),
        )
        taken: list[tuple[str, float]] = []
        for key, cap, window, code in caps:
            count = yield from store_incr(key, window)
            taken.append((key, window))
            if count > cap:
                # Give back every token this refused request took, so each counter
                # ends equal to the number of messages actually sent.
                for k, w in taken:
                    yield from store_incr(k, w, -1)
                raise RateLimited("too many codes requested", retry_after=None, code=code)

    def _audit_open_failure(
        self, link_id: str | None, uref: str | None, client_ip: str | None, exc: AuthBrokerError
    ) -> None:
        details: dict[str, Any] = {"error": type(exc).__name__}
        if link_id:
            details["link"] = _short(link_id)
        self.audit.emit(
            "link.opened",
            "failure",
            subject=uref,
            client_ip=client_ip,
            reason=exc.code,
            details=details,
        )

    def sent(self, out: _Outgoing, receipt: SmsReceipt) -> None:
        self.audit.emit(
            "otp.sent",
            "success",
            subject=out.subject,
            client_ip=out.client_ip,
            details={
                "link": _short(out.link_id),
                "challenge": _short(out.challenge.challenge_id),
                "to": out.challenge.masked_phone,
                "gateway": receipt.provider,
                "attempts": receipt.attempts,
            },
        )

    def send_failed_gen(self, out: _Outgoing, exc: AuthBrokerError) -> Gen[None]:
        """The SMS did not go out (or may not have): withdraw the challenge.

        Send caps are not refunded: an ambiguous failure may still have delivered and
        billed the message, and refunds would let a failing gateway be hammered.
        """
        challenge_id = out.challenge.challenge_id
        yield from store_delete(K_CHALLENGE + challenge_id)
        self.audit.emit(
            "sms.failed",
            "failure",
            subject=out.subject,
            client_ip=out.client_ip,
            reason=exc.code,
            details={
                "link": _short(out.link_id),
                "challenge": _short(challenge_id),
                "to": out.challenge.masked_phone,
                "gateway": self.sms.name,
                "error": type(exc).__name__,
            },
        )

    # -- verify ----------------------------------------------------------------------

    def _load_challenge(self, challenge_id: str, binding: str | None) -> Gen[dict[str, Any]]:
        if not isinstance(challenge_id, str) or not _ID_RE.fullmatch(challenge_id):
            raise FlowNotFound("unknown code challenge", code="challenge_unknown")
        raw = yield from store_get(K_CHALLENGE + challenge_id)
        if raw is None:
            used = yield from store_get(K_CH_USED + challenge_id)
            if used is not None:
                raise AlreadyUsed("the code has already been used", code="otp_replayed")
            raise FlowNotFound("unknown or superseded code challenge", code="challenge_unknown")
        challenge = _decode(raw, "challenge")
        expected = str(challenge.get("b", ""))
        actual = self.keys.binding(binding, str(challenge.get("kid", "")))
        if expected and not hmac.compare_digest(expected, actual):
            # Not counted as a failure: another browser must not be able to lock it.
            raise InvalidInput("the code belongs to another browser", code="challenge_binding")
        return challenge

    def verify_gen(
        self, challenge_id: str, code: str, binding: str | None, client_ip: str | None
    ) -> Gen[LinkGrant]:
        now = self.clock()
        limits = self.limits
        try:
            challenge = yield from self._load_challenge(challenge_id, binding)
        except AuthBrokerError as exc:
            self._audit_verify_failure(None, challenge_id, None, client_ip, exc)
            raise
        link_id = str(challenge["k"])
        try:
            # Checks that need no store come first; none of them is counted.
            if float(challenge["e"]) <= now:
                raise Expired("the code has expired", code="otp_expired")
            candidate = code.strip().replace(" ", "") if isinstance(code, str) else ""
            if len(candidate) != limits.code_digits or not (
                candidate.isascii() and candidate.isdigit()
            ):
                # A malformed entry is a typo, not a guess: refused, not counted.
                raise InvalidInput("the code is not valid", code="otp_malformed")
        except AuthBrokerError as exc:
            self._audit_verify_failure(link_id, challenge_id, None, client_ip, exc)
            raise

        # OTP-05: reserve the attempt before anything else, so a flood of guesses
        # beyond the limit is refused after two counter operations, unread.
        record_ttl = limits.challenge_record_ttl
        attempts_key = K_ATTEMPTS + challenge_id
        attempt = yield from store_incr(attempts_key, record_ttl)
        if attempt > limits.max_attempts_per_challenge:
            yield from store_incr(attempts_key, record_ttl, -1)
            refusal: AuthBrokerError
            if (yield from store_get(K_CH_USED + challenge_id)) is not None:
                # Refused while the right code was being consumed by a parallel call.
                refusal = AlreadyUsed("the code has already been used", code="otp_replayed")
            else:
                refusal = Locked("too many wrong codes; request a new code", code="otp_locked")
            self._audit_verify_failure(link_id, challenge_id, None, client_ip, refusal)
            raise refusal

        uref: str | None = None
        fail_key = f"{K_LINK_FAIL}{link_id}:{int(challenge.get('g', 0))}"
        fail_ttl = 1.0
        reserved_link = False
        user_key: str | None = None
        user_ttl = limits.user_failure_window
        try:
            link = yield from self._load_link(link_id, now)
            uref = user_ref(str(link["u"]))
            fail_ttl = _ttl_left(float(link["e"]), now)
            current = yield from store_get(K_CURRENT + link_id)
            if current is None or not hmac.compare_digest(current.decode(), challenge_id):
                raise FlowNotFound("a newer code has been sent", code="challenge_superseded")
            failures = yield from store_incr(fail_key, fail_ttl)
            reserved_link = True
            if failures > limits.max_failures_per_link:
                raise Locked("too many wrong codes for this link", code="link_locked")
            # The per-user cap is reserved like the others (never read-then-increment):
            # of concurrent guesses on several links of one user at most the cap run.
            key = yield from self._user_fail_key(uref)
            user_failures = yield from store_incr(key, user_ttl)
            user_key = key
            if user_failures > limits.max_failures_per_user:
                raise Locked("too many wrong codes", code="user_locked")
        except AuthBrokerError as exc:
            # Not an evaluated guess: give the reservations back.
            if user_key is not None:
                yield from store_incr(user_key, user_ttl, -1)
            if reserved_link:
                yield from store_incr(fail_key, fail_ttl, -1)
            yield from store_incr(attempts_key, record_ttl, -1)
            self._audit_verify_failure(link_id, challenge_id, uref, client_ip, exc)
            raise

        ok = self.keys.check_code(
            str(challenge.get("kid", "")),
            str(challenge.get("h", "")),
            candidate,
            challenge_id,
            link_id,
        )
        if not ok:
            self.audit.emit(
                "otp.failed",
                "failure",
                subject=uref,
                client_ip=client_ip,
                reason="otp_wrong",
                details={
                    "link": _short(link_id),
                    "challenge": _short(challenge_id),
                    "attempt": attempt,
                    "link_failures": failures,
                },
            )
            locked_by = None
            if attempt >= limits.max_attempts_per_challenge:
                locked_by = "challenge"
            if failures >= limits.max_failures_per_link:
                locked_by = "link"
            if locked_by is not None:
                self.audit.emit(
                    "otp.locked",
                    "failure",
                    subject=uref,
                    client_ip=client_ip,
                    reason=f"{locked_by}_locked",
                    details={"link": _short(link_id), "challenge": _short(challenge_id)},
                )
                raise Locked("too many wrong codes; request a new code", code=f"{locked_by}_locked")
            raise InvalidInput("the code is not valid", code="otp_wrong")

        # A right code is not a failure: return every reservation (R-01: the losers of
        # the race below leave the counters as they found them).
        assert user_key is not None
        yield from store_incr(user_key, user_ttl, -1)
        yield from store_incr(fail_key, fail_ttl, -1)
        yield from store_incr(attempts_key, record_ttl, -1)
        # The "used" marker goes first, so anyone who finds the record gone also finds
        # the marker (a replay answers AlreadyUsed, never "unknown challenge").
        yield from store_put(K_CH_USED + challenge_id, b"1", record_ttl)
        taken = yield from store_take(K_CHALLENGE + challenge_id)
        if taken is None:
            exc_used = AlreadyUsed("the code has already been used", code="otp_replayed")
            self._audit_verify_failure(link_id, challenge_id, uref, client_ip, exc_used)
            raise exc_used
        if link.get("su"):
            first = yield from store_put_if_absent(K_USED + link_id, b"1", fail_ttl)
            if not first:
                exc_used = AlreadyUsed("the link has already been used", code="link_used")
                self._audit_verify_failure(link_id, challenge_id, uref, client_ip, exc_used)
                raise exc_used
        # A success clears the link's and the user's failure counters (OTP-04).
        yield from store_incr(K_GEN + link_id, fail_ttl)
        yield from store_incr(K_USER_GEN + uref, 2 * user_ttl)
        expires_at = min(now + limits.grant_ttl, float(link["e"]))
        self.audit.emit(
            "otp.verified",
            "success",
            subject=uref,
            client_ip=client_ip,
            details={
                "link": _short(link_id),
                "challenge": _short(challenge_id),
                "scope": str(link["s"]),
                "resource": str(link["r"]),
            },
        )
        return LinkGrant(
            user_id=str(link["u"]),
            scope=str(link["s"]),
            resource=str(link["r"]),
            expires_at=expires_at,
            link_id=link_id,
        )

    def _audit_verify_failure(
        self,
        link_id: str | None,
        challenge_id: str,
        uref: str | None,
        client_ip: str | None,
        exc: AuthBrokerError,
    ) -> None:
        name: Literal["otp.failed", "otp.locked"] = (
            "otp.locked" if isinstance(exc, Locked) else "otp.failed"
        )
        details = {"challenge": _short(str(challenge_id)), "error": type(exc).__name__}
        if link_id:
            details["link"] = _short(link_id)
        self.audit.emit(
            name, "failure", subject=uref, client_ip=client_ip, reason=exc.code, details=details
        )

    # -- introspection (tests, operators) -------------------------------------------

    def link_failures_gen(self, link_id: str) -> Gen[int]:
        """Current consecutive-failure count of a link (R-02, R-06)."""
        raw_gen = yield from store_get(K_GEN + link_id)
        gen = int(raw_gen) if raw_gen else 0
        raw = yield from store_get(f"{K_LINK_FAIL}{link_id}:{gen}")
        return int(raw) if raw else 0

    def challenge_attempts_gen(self, challenge_id: str) -> Gen[int]:
        raw = yield from store_get(K_ATTEMPTS + challenge_id)
        return int(raw) if raw else 0


def links_options(settings: Settings) -> dict[str, Any]:
    """Constructor arguments from :class:`~authbroker.config.Settings` and its ``[links]``.

    ``secret_keys`` come from ``AUTHBROKER_SECRET_KEYS``; the link URL is
    ``base_url + route_prefix + "/link/<token>"`` unless ``[links]`` sets ``base_url``
    or ``link_path``; ``[links]`` also holds :class:`LinkLimits` fields,
    ``service_name``, ``allowed_regions`` and ``default_region``.
    """
    table = dict(settings.section("links"))
    options: dict[str, Any] = {
        "secret_keys": settings.secret_keys,
        "base_url": str(table.pop("base_url", settings.base_url)),
        "link_path": str(table.pop("link_path", settings.route_prefix.rstrip("/") + "/link")),
    }
    for key in ("service_name", "default_region"):
        if key in table:
            options[key] = str(table.pop(key))
    if "allowed_regions" in table:
        regions = table.pop("allowed_regions")
        if not isinstance(regions, list | tuple) or not all(isinstance(r, str) for r in regions):
            raise ConfigError("must be a list of region codes", key="links.allowed_regions")
        options["allowed_regions"] = tuple(regions)
    options["limits"] = LinkLimits.from_mapping(table)
    return options


class DirectLinks:
    """Blocking API for WSGI apps, jobs and the CLI.

    ``store``: where links, challenges and counters live (one store for all app
    instances). ``sms``: the sender; HTTP senders use ``driver`` (a default
    :class:`SyncDriver` is created). ``secret_keys``: newest first, each ≥ 32
    characters (the same list as ``AUTHBROKER_SECRET_KEYS``). ``base_url`` +
    ``link_path`` + ``/<token>`` is the link URL, and its host goes in the SMS
    ``@host`` line. The phone number is given to :meth:`issue` by the application
    (from the user's verified, strongly-bound number) and stored server-side with the
    link; a later request can never redirect the code elsewhere.
    """

    def __init__(
        self,
        store: StateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str = "/auth/link",
        driver: SyncDriver | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        limits: LinkLimits | None = None,
        allowed_regions: Sequence[str] = DEFAULT_REGIONS,
        default_region: str = "FI",
        service_name: str | None = None,
        send_veto: Callable[[str, str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.core = _LinksCore(
            sms=sms,
            secret_keys=secret_keys,
            base_url=base_url,
            link_path=link_path,
            audit=audit,
            clock=clock,
            limits=limits,
            allowed_regions=allowed_regions,
            default_region=default_region,
            service_name=service_name,
            send_veto=send_veto,
        )
        self.store = store
        # Creating a driver opens nothing; httpx clients start on the first request.
        self.driver = driver or SyncDriver()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"DirectLinks(host={self.core.host!r}, sms={self.core.sms.name!r})"

    @property
    def limits(self) -> LinkLimits:
        return self.core.limits

    def _run(self, gen: Gen[Any]) -> Any:
        return run_sync(gen, None, self.store)

    def issue(
        self,
        user_id: str,
        phone: str,
        scope: str,
        resource: str,
        ttl: float,
        *,
        single_use: bool = False,
        language: str = "fi",
    ) -> str:
        """A signed link URL for ``user_id`` to do ``scope`` on ``resource``."""
        return self.issue_link(
            user_id, phone, scope, resource, ttl, single_use=single_use, language=language
        ).url

    def issue_link(
        self,
        user_id: str,
        phone: str,
        scope: str,
        resource: str,
        ttl: float,
        *,
        single_use: bool = False,
        language: str = "fi",
    ) -> IssuedLink:
        """Like :meth:`issue`, also returning the link id (for :meth:`revoke`)."""
        issued: IssuedLink = self._run(
            self.core.issue_gen(user_id, phone, scope, resource, ttl, single_use, language)
        )
        return issued

    def link_id(self, token: str) -> str:
        """The link id inside a valid token (to revoke a link you only have the URL of)."""
        return self.core.link_id_from_token(token)

    def open(
        self, token: str, client_ip: str | None, *, binding: str | None = None
    ) -> OtpChallenge:
        """Validate the link and text a fresh code to its phone."""
        out: _Outgoing = self._run(self.core.open_gen(token, client_ip, binding))
        return self._deliver(out)

    def resend(
        self, challenge_id: str, client_ip: str | None, *, binding: str | None = None
    ) -> OtpChallenge:
        """A new code for the link of an earlier challenge (after the cooldown)."""
        out: _Outgoing = self._run(self.core.resend_gen(challenge_id, client_ip, binding))
        return self._deliver(out)

    def _deliver(self, out: _Outgoing) -> OtpChallenge:
        try:
            receipt = deliver_sync(self.core.sms, out.message, self.driver, sleep=self._sleep)
        except AuthBrokerError as exc:
            self._run(self.core.send_failed_gen(out, exc))
            raise
        self.core.sent(out, receipt)
        return out.challenge

    def verify(
        self,
        challenge_id: str,
        code: str,
        *,
        binding: str | None = None,
        client_ip: str | None = None,
    ) -> LinkGrant:
        """Check the code; the grant allows exactly the link's scope and resource."""
        grant: LinkGrant = self._run(self.core.verify_gen(challenge_id, code, binding, client_ip))
        return grant

    def revoke(self, link_id: str) -> bool:
        """Revoke one link at once; True when a live link was removed."""
        return bool(self._run(self.core.revoke_gen(link_id)))

    def revoke_user(self, user_id: str) -> None:
        """Revoke every link issued to ``user_id`` so far (e.g. after a phone change)."""
        self._run(self.core.revoke_user_gen(user_id))

    def link_failures(self, link_id: str) -> int:
        return int(self._run(self.core.link_failures_gen(link_id)))

    def challenge_attempts(self, challenge_id: str) -> int:
        return int(self._run(self.core.challenge_attempts_gen(challenge_id)))

    def close(self) -> None:
        self.driver.close()


class AsyncDirectLinks:
    """Non-blocking API for ASGI apps; same semantics as :class:`DirectLinks`."""

    def __init__(
        self,
        store: AsyncStateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str = "/auth/link",
        driver: AsyncDriver | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        limits: LinkLimits | None = None,
        allowed_regions: Sequence[str] = DEFAULT_REGIONS,
        default_region: str = "FI",
        service_name: str | None = None,
        send_veto: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.core = _LinksCore(
            sms=sms,
            secret_keys=secret_keys,
            base_url=base_url,
            link_path=link_path,
            audit=audit,
            clock=clock,
            limits=limits,
            allowed_regions=allowed_regions,
            default_region=default_region,
            service_name=service_name,
            send_veto=send_veto,
        )
        self.store = store
        self.driver = driver or AsyncDriver()

    def __repr__(self) -> str:
        return f"AsyncDirectLinks(host={self.core.host!r}, sms={self.core.sms.name!r})"

    @property
    def limits(self) -> LinkLimits:
        return self.core.limits

    async def _run(self, gen: Gen[Any]) -> Any:
        return await run_async(gen, None, self.store)

    async def issue(
        self,
        user_id: str,
        phone: str,
        scope: str,
        resource: str,
        ttl: float,
        *,
        single_use: bool = False,
        language: str = "fi",
    ) -> str:
        issued = await self.issue_link(
            user_id, phone, scope, resource, ttl, single_use=single_use, language=language
        )
        return issued.url

    async def issue_link(
        self,
        user_id: str,
        phone: str,
        scope: str,
        resource: str,
        ttl: float,
        *,
        single_use: bool = False,
        language: str = "fi",
    ) -> IssuedLink:
        issued: IssuedLink = await self._run(
            self.core.issue_gen(user_id, phone, scope, resource, ttl, single_use, language)
        )
        return issued

    def link_id(self, token: str) -> str:
        return self.core.link_id_from_token(token)

    async def open(
        self, token: str, client_ip: str | None, *, binding: str | None = None
    ) -> OtpChallenge:
        out: _Outgoing = await self._run(self.core.open_gen(token, client_ip, binding))
        return await self._deliver(out)

    async def resend(
        self, challenge_id: str, client_ip: str | None, *, binding: str | None = None
    ) -> OtpChallenge:
        out: _Outgoing = await self._run(self.core.resend_gen(challenge_id, client_ip, binding))
        return await self._deliver(out)

    async def _deliver(self, out: _Outgoing) -> OtpChallenge:
        try:
            receipt = await deliver_async(self.core.sms, out.message, self.driver)
        except AuthBrokerError as exc:
            await self._run(self.core.send_failed_gen(out, exc))
            raise
        self.core.sent(out, receipt)
        return out.challenge

    async def verify(
        self,
        challenge_id: str,
        code: str,
        *,
        binding: str | None = None,
        client_ip: str | None = None,
    ) -> LinkGrant:
        grant: LinkGrant = await self._run(
            self.core.verify_gen(challenge_id, code, binding, client_ip)
        )
        return grant

    async def revoke(self, link_id: str) -> bool:
        return bool(await self._run(self.core.revoke_gen(link_id)))

    async def revoke_user(self, user_id: str) -> None:
        await self._run(self.core.revoke_user_gen(user_id))

    async def link_failures(self, link_id: str) -> int:
        return int(await self._run(self.core.link_failures_gen(link_id)))

    async def challenge_attempts(self, challenge_id: str) -> int:
        return int(await self._run(self.core.challenge_attempts_gen(challenge_id)))

    async def aclose(self) -> None:
        await self.driver.aclose()
