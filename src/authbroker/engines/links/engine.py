"""The direct-link engine: every link operation as one sans-I/O routine.

A link names one user, one scope (``invoice:approve``) and one resource (invoice
``123``). Opening it sends a one-time code by SMS to the phone stored with the link;
the right code yields a :class:`LinkGrant` for exactly that scope and resource.
Anything else needs strong authentication (DESIGN "Access levels").

How the security requirements (docs/security-model.md, requirement catalogue) land:

* LNK-01 — link tokens (:mod:`.tokens`): itsdangerous, purpose salt, HMAC-SHA256,
  newest secret signs, all verify, ``max_age`` on every load, payload a random id.
* LNK-02 — the link record (user, E.164 phone, scope, resource, expiry, single-use
  flag) lives server-side in the store (:mod:`.records`). Revocation is immediate,
  per link (:meth:`LinkEngine.revoke`) and per user (:meth:`LinkEngine.revoke_user`,
  a per-user epoch). A single-use link is consumed atomically (``put_if_absent``)
  when its grant is issued.
* OTP-01/02/03 — codes are ``digits`` (default 6) uniform decimal digits from
  ``secrets.randbelow``; only an HMAC (server key, challenge nonce and link id as
  context) is stored, and the store compares it with the candidate's HMAC; they
  expire (default 5 min, at most 10) and are accepted once (a consumed marker set by
  the same program). A new challenge supersedes the previous one; a challenge may be
  bound to the browser.
* OTP-04/05 — a verify is ONE atomic store program (one round trip): the guards,
  then one *reservation* on each of the challenge, link and user counters, then the
  code check (``Require(keep=True)``). Over a limit, the program stops before the
  code is looked at and counts nothing; a wrong code stops it with its reservations
  kept; a right code consumes the challenge and clears the link and user counters.
  So N concurrent guesses evaluate at most ``max_attempts`` codes, on every store,
  and the counters end at the exact number of failures, with nothing to refund. The
  per-link counter survives resends (63B-4 §3.1.3.2, decision 5). The challenge id
  carries what the program needs (:mod:`.challenges`), so no record is read first.
* OTP-06 / C11 — the destination is always the stored number, never from the request;
  resend cooldown and fixed-window caps (:mod:`.sending`), each an atomic counter;
  over a cap nothing is sent.
* LOG-02 — audit events carry masked numbers, pseudonymous user references and id
  prefixes; codes, tokens and full numbers never reach an event, an error or a repr.

Each public operation is one routine named like the facade method that runs it
(:mod:`.facades`): ``open`` and ``resend`` store the challenge *and* send its SMS
(the sender's routine composed with ``yield from``), so ``engine.open(...)`` is the
whole operation for any caller that composes it, the web core included.

Clocks: expiry of links, codes and grants is judged with the injected ``clock``
(wall-clock seconds); store TTLs bound the same items and are also what runs the
rate-limit windows and the cooldown, so an item ends at whichever comes first.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NoReturn

import phonenumbers

from ...audit import AuditLog
from ...errors import (
    AccessDenied,
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    Locked,
)
from ...flow import store_delete, store_get, store_put, store_take
from ...kernel import Gen, call
from ...sms.base import SmsMessage, SmsSender, mask_phone
from ...sms.messages import normalize_language, origin_host, render_code_message
from ...store.atomic import atomic
from ...store.base import Delete, Incr, Put, Require, Reserve, Step
from .challenges import ChallengeId, make_challenge_id, parse_challenge_id
from .limits import LinkLimits
from .phones import normalize_mobile
from .records import (
    K_ATTEMPTS,
    K_CH_USED,
    K_CHALLENGE,
    K_CODE,
    K_CURRENT,
    K_LINK,
    K_LINK_FAIL,
    K_REVOKED,
    K_REVOKED_U,
    K_USED,
    K_USER_EPOCH,
    check_text,
    decode,
    encode,
    link_live_gen,
    load_link,
    short,
    tagged,
    ttl_left,
    user_fail_key,
    user_ref,
)
from .sending import Outgoing, claim_send, send_code
from .tokens import ID_RE, LinkKeys, LinkTokens
from .values import IssuedLink, LinkGrant, OtpChallenge

__all__ = ["DEFAULT_REGIONS", "LinkEngine", "SendVeto"]

DEFAULT_REGIONS = ("FI", "AX", "SE", "NO", "EE")

_SCOPE_RE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
#: ``(user_id, e164) -> True`` blocks a send (SIM-swap or porting signals); a plain
#: function or a coroutine function (the latter under the asyncio facade only).
SendVeto = Callable[[str, str], bool | Awaitable[bool]]


class LinkEngine:
    """Rules and state of direct links; no I/O. Run by :class:`DirectLinks` and
    :class:`AsyncDirectLinks`, or composed into another routine with ``yield from``.

    The constructor takes the facades' arguments minus the store and the driver,
    which belong to the runtime.
    """

    def __init__(
        self,
        *,
        sms: SmsSender,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str = "/auth/link",
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        limits: LinkLimits | None = None,
        allowed_regions: Sequence[str] = DEFAULT_REGIONS,
        default_region: str = "FI",
        service_name: str | None = None,
        send_veto: SendVeto | None = None,
    ) -> None:
        self.keys = LinkKeys(secret_keys)
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
        self.tokens = LinkTokens(self.keys, clock, self.limits.max_link_ttl)

    def __repr__(self) -> str:
        return f"LinkEngine(host={self.host!r}, sms={self.sms.name!r})"

    # -- plain helpers (no effects) -------------------------------------------------

    def link_id(self, token: str) -> str:
        """The link id inside a valid token (to revoke a link you only have the URL of)."""
        return self.tokens.link_id(token)

    def normalize_phone(self, phone: str) -> str:
        """E.164 for a mobile number in an allowed region (InvalidInput otherwise)."""
        return normalize_mobile(phone, self.default_region, self.allowed_regions)

    # -- issue / revoke --------------------------------------------------------------

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
    ) -> Gen[str]:
        """A signed link URL for ``user_id`` to do ``scope`` on ``resource``."""
        issued = yield from self.issue_link(
            user_id, phone, scope, resource, ttl, single_use=single_use, language=language
        )
        return issued.url

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
    ) -> Gen[IssuedLink]:
        """Like :meth:`issue`, also returning the link id (for :meth:`revoke`)."""
        user_id = check_text(user_id, "user_id")
        if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
            raise InvalidInput("scope must look like 'invoice:approve'", code="bad_scope")
        resource = check_text(resource, "resource")
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
        epoch = yield from store_get(tagged(K_USER_EPOCH, uref))
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
        yield from store_put(K_LINK + link_id, encode(record), float(ttl))
        token = self.tokens.dumps(link_id)
        self.audit.emit(
            "link.issued",
            "info",
            subject=uref,
            details={
                "link": short(link_id),
                "scope": scope,
                "resource": resource,
                "single_use": bool(single_use),
                "expires_at": expires_at,
                "to": mask_phone(e164),
            },
        )
        return IssuedLink(f"{self.base_url}{self.link_path}/{token}", link_id, expires_at)

    def revoke(self, link_id: str) -> Gen[bool]:
        """Revoke one link at once; True when a live link was removed."""
        if not isinstance(link_id, str) or not ID_RE.fullmatch(link_id):
            raise InvalidInput("not a link id", code="bad_link_id")
        raw = yield from store_take(K_LINK + link_id)
        yield from store_put(K_REVOKED + link_id, b"1", self.limits.max_link_ttl)
        subject = None
        if raw is not None:
            subject = user_ref(str(decode(raw, "link").get("u", "")))
            # Verify checks this marker (in the user's slot), not the record.
            yield from store_put(
                tagged(K_REVOKED_U, subject, link_id), b"1", self.limits.max_link_ttl
            )
            current = yield from store_get(tagged(K_CURRENT, subject, link_id))
            if current:
                for key in _challenge_keys(subject, current.decode()):
                    yield from store_delete(key)
        self.audit.emit(
            "link.revoked",
            "info",
            subject=subject,
            details={"link": short(link_id), "scope_of_revocation": "link"},
        )
        return raw is not None

    def revoke_user(self, user_id: str) -> Gen[None]:
        """Revoke every link issued to ``user_id`` so far (e.g. after a phone change)."""
        user_id = check_text(user_id, "user_id")
        uref = user_ref(user_id)
        # A fresh random epoch: every link issued before it stops working. The key
        # outlives every such link (max_link_ttl); when it is gone, so are they.
        epoch = secrets.token_urlsafe(12).encode()
        yield from store_put(tagged(K_USER_EPOCH, uref), epoch, self.limits.max_link_ttl)
        self.audit.emit(
            "link.revoked", "info", subject=uref, details={"scope_of_revocation": "user"}
        )

    def link_live(self, link_id: str) -> Gen[bool]:
        """Whether what the link granted may still be used now (see :func:`link_live_gen`)."""
        return (yield from link_live_gen(link_id, self.clock()))

    # -- checks shared by open and verify ------------------------------------------

    def _check_locks(self, link_id: str, uref: str) -> Gen[None]:
        """Refuse a locked link/user before a code is sent."""
        fails = yield from store_get(tagged(K_LINK_FAIL, uref, link_id))
        if fails is not None and int(fails) >= self.limits.max_failures_per_link:
            raise Locked("too many wrong codes for this link", code="link_locked")
        user_fails = yield from store_get(user_fail_key(uref))
        if user_fails is not None and int(user_fails) >= self.limits.max_failures_per_user:
            raise Locked("too many wrong codes", code="user_locked")

    # -- open / resend: store the challenge, then send its code ---------------------

    def open(
        self, token: str, client_ip: str | None, *, binding: str | None = None
    ) -> Gen[OtpChallenge]:
        """Validate the link and text a fresh code to its phone."""
        now = self.clock()
        try:
            link_id = self.link_id(token)
        except AuthBrokerError as exc:
            self._audit_open_failure(None, None, client_ip, exc)
            raise
        out = yield from self._challenge(link_id, client_ip, binding, now)
        return (yield from send_code(self.sms, out, self.audit))

    def resend(
        self, challenge_id: str, client_ip: str | None, *, binding: str | None = None
    ) -> Gen[OtpChallenge]:
        """A new code for the link of an earlier challenge (after the cooldown)."""
        now = self.clock()
        challenge = parse_challenge_id(self.keys, challenge_id, binding)
        record = yield from store_get(tagged(K_CHALLENGE, challenge.uref, challenge.nonce))
        if record is None:
            raise FlowNotFound("unknown or superseded code challenge", code="challenge_unknown")
        out = yield from self._challenge(challenge.link_id, client_ip, binding, now)
        return (yield from send_code(self.sms, out, self.audit))

    def _challenge(
        self, link_id: str, client_ip: str | None, binding: str | None, now: float
    ) -> Gen[Outgoing]:
        """Checks, send caps, then a new challenge that supersedes the previous one."""
        uref: str | None = None
        try:
            link = yield from load_link(link_id, now)
            uref = user_ref(str(link["u"]))
            phone = str(link["p"])
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
            if region not in self.allowed_regions:
                raise AccessDenied("destination country is not allowed", code="phone_region")
            if self.send_veto is not None:
                vetoed = yield from call(self.send_veto, str(link["u"]), phone)
                if vetoed:
                    raise AccessDenied("sending to this number is blocked", code="send_vetoed")
            yield from self._check_locks(link_id, uref)
            yield from claim_send(self.limits, self.keys, link_id, phone, client_ip, now)
        except AuthBrokerError as exc:
            self._audit_open_failure(link_id, uref, client_ip, exc)
            raise
        subject = uref

        limits = self.limits
        code = f"{secrets.randbelow(10**limits.code_digits):0{limits.code_digits}d}"
        expires_at = now + limits.code_ttl
        link_expires = float(link["e"])
        challenge_id, nonce = make_challenge_id(
            self.keys,
            uref=uref,
            link_id=link_id,
            expires_at=expires_at,
            link_expires=link_expires,
            single_use=bool(link.get("su")),
            epoch=str(link.get("ep", "")),
            binding=binding,
        )
        record_ttl = min(limits.challenge_record_ttl, ttl_left(link_expires, now))
        record_ttl = max(record_ttl, limits.code_ttl)
        # What the grant names travels in this record, what the verify program needs
        # in the challenge id (.challenges): a verify reads nothing before its program.
        record = {"v": 1, "u": str(link["u"]), "s": str(link["s"]), "r": str(link["r"])}
        withdraw = _challenge_keys(uref, nonce)
        yield from store_put(withdraw[0], encode(record), record_ttl)
        yield from store_put(withdraw[1], self.keys.code_mac(code, nonce, link_id), record_ttl)
        current_key = tagged(K_CURRENT, uref, link_id)
        previous = yield from store_get(current_key)
        yield from store_put(current_key, nonce.encode(), ttl_left(link_expires, now))
        if previous is not None and previous.decode() != nonce:
            # OTP-03: a new code invalidates the previous one.
            for key in _challenge_keys(uref, previous.decode()):
                yield from store_delete(key)
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
            details={"link": short(link_id), "challenge": short(challenge_id)},
        )
        challenge = OtpChallenge(
            challenge_id=challenge_id,
            masked_phone=mask_phone(phone),
            expires_at=expires_at,
            resend_after=now + limits.resend_cooldown,
        )
        message = SmsMessage(to=phone, body=body, reference=short(challenge_id))
        return Outgoing(challenge, message, link_id, subject, client_ip, withdraw)

    def _audit_open_failure(
        self, link_id: str | None, uref: str | None, client_ip: str | None, exc: AuthBrokerError
    ) -> None:
        details: dict[str, Any] = {"error": type(exc).__name__}
        if link_id:
            details["link"] = short(link_id)
        self.audit.emit(
            "link.opened",
            "failure",
            subject=uref,
            client_ip=client_ip,
            reason=exc.code,
            details=details,
        )

    # -- verify ----------------------------------------------------------------------

    def verify(
        self,
        challenge_id: str,
        code: str,
        *,
        binding: str | None = None,
        client_ip: str | None = None,
    ) -> Gen[LinkGrant]:
        """Check the code; the grant allows exactly the link's scope and resource.

        One atomic store program, nothing read before it (one Redis round trip)."""
        now = self.clock()
        limits = self.limits
        try:
            challenge = parse_challenge_id(self.keys, challenge_id, binding)
        except AuthBrokerError as exc:
            self._audit_verify_failure(None, challenge_id, None, client_ip, exc)
            raise
        link_id, uref = challenge.link_id, challenge.uref
        try:
            # Checks that need no store come first; none of them is counted.
            if challenge.expires_at <= now:
                raise Expired("the code has expired", code="otp_expired")
            candidate = code.strip().replace(" ", "") if isinstance(code, str) else ""
            if len(candidate) != limits.code_digits or not (
                candidate.isascii() and candidate.isdigit()
            ):
                # A malformed entry is a typo, not a guess: refused, not counted.
                raise InvalidInput("the code is not valid", code="otp_malformed")
            if challenge.link_expires <= now:
                raise Expired("the link has expired", code="link_expired")
            result = yield from atomic(*self._verify_program(challenge, candidate, now))
            if not result.ok and result.failed != _CODE_STEP:
                raise _VERIFY_REFUSALS[result.failed or 0]()
        except AuthBrokerError as exc:
            self._audit_verify_failure(link_id, challenge_id, uref, client_ip, exc)
            raise
        if not result.ok:
            self._wrong_code(challenge, challenge_id, client_ip, result.values)
        record = decode(_as_bytes(result.values[_RECORD_STEP]), "challenge")
        expires_at = min(now + limits.grant_ttl, challenge.link_expires)
        self.audit.emit(
            "otp.verified",
            "success",
            subject=uref,
            client_ip=client_ip,
            details={
                "link": short(link_id),
                "challenge": short(challenge_id),
                "scope": str(record["s"]),
                "resource": str(record["r"]),
            },
        )
        return LinkGrant(
            user_id=str(record["u"]),
            scope=str(record["s"]),
            resource=str(record["r"]),
            expires_at=expires_at,
            link_id=link_id,
        )

    def _verify_program(self, challenge: ChallengeId, candidate: str, now: float) -> list[Step]:
        """The verify program (OTP-04/05, R-01): the guards, the three reservations
        taken whole or not at all, then the code check. The store compares the stored
        code MAC with the candidate's (Lua ``==`` on Redis): both are HMAC-SHA256
        outputs under a key the attacker lacks, so how long a comparison takes tells
        nothing about the code. Nothing is refunded, so the limits hold exactly."""
        limits = self.limits
        uref, link_id, nonce = challenge.uref, challenge.link_id, challenge.nonce
        record_ttl = limits.challenge_record_ttl
        link_ttl = ttl_left(challenge.link_expires, now)
        used_key = tagged(K_CH_USED, uref, nonce)
        link_fail_key = tagged(K_LINK_FAIL, uref, link_id)
        epoch_key = tagged(K_USER_EPOCH, uref)
        record_key, code_key = _challenge_keys(uref, nonce)
        attempts_key = tagged(K_ATTEMPTS, uref, nonce)
        mac = self.keys.code_mac(candidate, nonce, link_id, challenge.key_index)
        steps: list[Step] = [
            Require(used_key, present=False),
            Require(record_key),
            Require(tagged(K_CURRENT, uref, link_id), equals=nonce.encode()),
            Require(tagged(K_REVOKED_U, uref, link_id), present=False),
            Require(epoch_key, equals=challenge.epoch.encode())
            if challenge.epoch
            else Require(epoch_key, present=False),
            Require(tagged(K_USED, uref, link_id), present=False),
            Reserve(attempts_key, record_ttl, limits.max_attempts_per_challenge),
            Reserve(link_fail_key, link_ttl, limits.max_failures_per_link),
            Reserve(user_fail_key(uref), limits.user_failure_window, limits.max_failures_per_user),
            # A wrong code stops here and keeps the three reservations (its count).
            Require(code_key, equals=mac, keep=True),
            Put(used_key, b"1", record_ttl),
            # The right code is not a failure: the challenge counter keeps only those.
            Incr(attempts_key, record_ttl, -1),
            Delete(link_fail_key),
            Delete(user_fail_key(uref)),
        ]
        if challenge.single_use:
            steps.append(Put(tagged(K_USED, uref, link_id), b"1", link_ttl))
        return steps

    def _wrong_code(
        self,
        challenge: ChallengeId,
        challenge_id: str,
        client_ip: str | None,
        values: tuple[object, ...],
    ) -> NoReturn:
        """Audit a counted wrong code and raise its refusal (locked at a limit)."""
        limits = self.limits
        uref, link_id = challenge.uref, challenge.link_id
        attempt, failures = int(str(values[_ATTEMPT_STEP])), int(str(values[_ATTEMPT_STEP + 1]))
        self.audit.emit(
            "otp.failed",
            "failure",
            subject=uref,
            client_ip=client_ip,
            reason="otp_wrong",
            details={
                "link": short(link_id),
                "challenge": short(challenge_id),
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
                details={"link": short(link_id), "challenge": short(challenge_id)},
            )
            raise Locked("too many wrong codes; request a new code", code=f"{locked_by}_locked")
        raise InvalidInput("the code is not valid", code="otp_wrong")

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
        details = {"challenge": short(str(challenge_id)), "error": type(exc).__name__}
        if link_id:
            details["link"] = short(link_id)
        self.audit.emit(
            name, "failure", subject=uref, client_ip=client_ip, reason=exc.code, details=details
        )

    # -- introspection (tests, operators) -------------------------------------------

    def link_failures(self, link_id: str) -> Gen[int]:
        """Current consecutive-failure count of a link (R-02, R-06)."""
        raw_link = yield from store_get(K_LINK + link_id)
        if raw_link is None:
            return 0
        uref = user_ref(str(decode(raw_link, "link")["u"]))
        raw = yield from store_get(tagged(K_LINK_FAIL, uref, link_id))
        return int(raw) if raw else 0

    def challenge_attempts(self, challenge_id: str) -> Gen[int]:
        """Wrong codes counted on a challenge (R-01, R-02); 0 for an unknown id."""
        try:
            challenge = parse_challenge_id(self.keys, challenge_id, None, check_binding=False)
        except AuthBrokerError:
            return 0
        raw = yield from store_get(tagged(K_ATTEMPTS, challenge.uref, challenge.nonce))
        return int(raw) if raw else 0


def _challenge_keys(uref: str, nonce: str) -> tuple[str, str]:
    """The challenge's record (what the grant names) and its code MAC."""
    return tagged(K_CHALLENGE, uref, nonce), tagged(K_CODE, uref, nonce)


def _as_bytes(value: object) -> bytes:
    if not isinstance(value, bytes):  # pragma: no cover - the guard returned it
        raise InvalidInput("corrupt challenge record", code="record_corrupt")
    return value


def _refusal(cls: type[AuthBrokerError], message: str, code: str) -> Callable[[], AuthBrokerError]:
    return lambda: cls(message, code=code)


#: The typed refusal for each guard of the verify program, by step index
#: (:meth:`LinkEngine._verify_program`); the code check is not one of them.
_VERIFY_REFUSALS: tuple[Callable[[], AuthBrokerError], ...] = (
    _refusal(AlreadyUsed, "the code has already been used", "otp_replayed"),
    _refusal(FlowNotFound, "unknown or superseded code challenge", "challenge_unknown"),
    _refusal(FlowNotFound, "a newer code has been sent", "challenge_superseded"),
    _refusal(AccessDenied, "the link has been revoked", "link_revoked"),
    _refusal(AccessDenied, "the link has been revoked", "link_revoked"),
    _refusal(AlreadyUsed, "the link has already been used", "link_used"),
    _refusal(Locked, "too many wrong codes; request a new code", "otp_locked"),
    _refusal(Locked, "too many wrong codes for this link", "link_locked"),
    _refusal(Locked, "too many wrong codes", "user_locked"),
)
#: Where the verify program returns the challenge record, the first reservation and
#: runs the code check.
_RECORD_STEP, _ATTEMPT_STEP, _CODE_STEP = 1, 6, 9
