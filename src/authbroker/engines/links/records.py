"""How links and challenges are kept in the :class:`~authbroker.store.base.StateStore`.

Key names carry random ids and keyed hashes only; values are JSON or decimal
counters, never pickles (STO-05). The record readers here are shared by the engine
and by sessions opened with a link (:func:`link_live_gen`, LNK-02).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import AccessDenied, AlreadyUsed, Expired, InvalidInput
from ...flow import store_get
from ...kernel import Gen
from .tokens import ID_RE

__all__ = [
    "LinkBinding",
    "link_binding_gen",
    "link_live_gen",
    "link_live_keys",
    "link_live_now",
    "load_link",
    "tagged",
    "user_fail_key",
    "user_ref",
]


# Store key prefixes. Values are JSON or decimal counters, never pickles (STO-05); key
# names carry random ids and keyed hashes only. Every key an OTP verify touches is
# built with :func:`tagged`: it carries the user's ref as a ``{hash tag}``, so the
# whole verify is one atomic store program (one slot on a Redis Cluster).
K_LINK = "lnk:"  # + link id -> link record
K_REVOKED = "lnk:rev:"  # + link id -> marker (read when the record is gone)
K_REVOKED_U = "lnk:revu:"  # tagged + link id -> marker (checked by verify)
K_USED = "lnk:used:"  # tagged + link id -> single-use consumed marker
K_CURRENT = "lnk:cur:"  # tagged + link id -> id of the current challenge
K_LINK_FAIL = "lnk:fail:"  # tagged + link id -> per-link failure counter
K_USER_EPOCH = "usr:ep:"  # tagged -> revocation epoch (random)
K_USER_FAIL = "usr:fail:"  # tagged -> per-user failure counter (window)
K_CHALLENGE = "otp:ch:"  # tagged + challenge nonce -> what a grant names (user, scope, resource)
K_CODE = "otp:code:"  # tagged + challenge nonce -> the code's MAC (OTP-01)
K_ATTEMPTS = "otp:att:"  # tagged + challenge nonce -> wrong codes counted
K_CH_USED = "otp:used:"  # tagged + challenge nonce -> consumed marker
K_COOLDOWN = "sms:cool:"  # + link id
K_SENDS_LINK = "sms:link:"
K_SENDS_PHONE = "sms:phone:"
K_SENDS_IP = "sms:ip:"
K_SENDS_DAY = "sms:day:"


def tagged(prefix: str, uref: str, rest: str = "") -> str:
    """``prefix{uref}rest``: the user's keys share one Redis hash slot."""
    return f"{prefix}{{{uref}}}{rest}"


def encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"corrupt {what} record", code="record_corrupt") from exc
    if not isinstance(value, dict) or value.get("v") != 1:
        raise InvalidInput(f"corrupt {what} record", code="record_corrupt")
    return value


def short(identifier: str) -> str:
    """A log-safe prefix of a random id (enough to correlate, useless as a bearer)."""
    return identifier[:8]


def check_text(value: object, name: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidInput(f"{name} must be a non-empty string", code=f"bad_{name}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        raise InvalidInput(f"{name} contains control characters", code=f"bad_{name}")
    return value


def ttl_left(expires_at: float, now: float) -> float:
    """A store TTL for something that ends at ``expires_at`` (at least one second)."""
    return max(1.0, expires_at - now)


def user_ref(user_id: str) -> str:
    """A stable pseudonymous reference for a user id (store keys, audit subjects).

    Unkeyed on purpose: it must survive secret rotation (the per-user revocation
    epoch is stored under it). User ids are account identifiers; national identity
    numbers must not be used as user ids.
    """
    return "u_" + hashlib.sha256(b"authbroker.user\x00" + user_id.encode()).hexdigest()[:24]


def link_live_gen(link_id: str, now: float) -> Gen[bool]:
    """Whether what a link granted may still be used: its record is there (not
    revoked, LNK-02), it has not expired and its user was not revoked since
    (:meth:`DirectLinks.revoke_user` epoch). A session opened with a link checks this
    on every load, so revoking a link ends the sessions it opened at once.

    A single-use link that was consumed is still live here: consuming it is what
    opened the session.
    """
    if not isinstance(link_id, str) or not ID_RE.fullmatch(link_id):
        return False
    return (yield from _live_record(link_id, now)) is not None


@dataclass(frozen=True, slots=True)
class LinkBinding:
    """What a session opened with a link keeps of it, so that each later check reads
    only keys in the user's hash slot (:func:`link_live_keys`): the link's expiry
    and the user's revocation epoch when it was issued."""

    expires_at: float
    epoch: str


def link_binding_gen(link_id: str, user_id: str, now: float) -> Gen[LinkBinding]:
    """The binding of a session of ``user_id`` to the link ``link_id``, read when the
    session opens; refused (``AccessDenied``) unless the link is live *and issued to
    that user*: another user's link would tie the session to that user's revocations
    and leave it untouched by its own user's."""
    live = None
    if isinstance(link_id, str) and ID_RE.fullmatch(link_id):
        live = yield from _live_record(link_id, now)
    if live is None:
        raise AccessDenied("the link has been revoked", code="link_revoked")
    link, binding = live
    if not hmac.compare_digest(str(link["u"]).encode(), user_id.encode()):
        raise AccessDenied("the link was issued to another user", code="link_other_user")
    return binding


def link_live_keys(uref: str, link_id: str) -> tuple[str, str]:
    """The two keys :func:`link_live_now` decides on: the user's revocation epoch and
    the per-link revocation marker :meth:`LinkEngine.revoke` writes, both in the
    user's slot, so a session check reads them in its own round trip."""
    return tagged(K_USER_EPOCH, uref), tagged(K_REVOKED_U, uref, link_id)


def link_live_now(
    binding: LinkBinding, epoch: bytes | None, revoked: bytes | None, now: float
) -> bool:
    """:func:`link_live_gen` decided from a binding and the values of
    :func:`link_live_keys`: not revoked per link nor per user, not expired."""
    if revoked is not None or binding.expires_at <= now:
        return False
    return epoch is None or hmac.compare_digest(epoch, binding.epoch.encode())


def _live_record(link_id: str, now: float) -> Gen[tuple[dict[str, Any], LinkBinding] | None]:
    """The record of a link whose grant is live and its binding (see
    :func:`link_live_gen`); decided by :func:`link_live_now`, as a session check is."""
    raw = yield from store_get(K_LINK + link_id)
    if raw is None:
        return None
    try:
        link = decode(raw, "link")
        binding = LinkBinding(float(link["e"]), str(link.get("ep", "")))
        uref = user_ref(str(link["u"]))
    except (InvalidInput, KeyError, TypeError, ValueError):
        return None
    if binding.expires_at <= now:
        return None  # no epoch read for an expired link
    epoch = yield from store_get(tagged(K_USER_EPOCH, uref))
    # No per-link marker to read: revoking a link deletes its record.
    return (link, binding) if link_live_now(binding, epoch, None, now) else None


def load_link(link_id: str, now: float) -> Gen[dict[str, Any]]:
    """The record of a link that may be used now: not revoked (per link or per user),
    not expired, and not consumed when it is single-use; typed refusals otherwise."""
    raw = yield from store_get(K_LINK + link_id)
    if raw is None:
        revoked = yield from store_get(K_REVOKED + link_id)
        if revoked is not None:
            raise AccessDenied("the link has been revoked", code="link_revoked")
        raise Expired("the link has expired", code="link_expired")
    link = decode(raw, "link")
    if float(link["e"]) <= now:
        raise Expired("the link has expired", code="link_expired")
    uref = user_ref(str(link["u"]))
    epoch = yield from store_get(tagged(K_USER_EPOCH, uref))
    if epoch is not None and not hmac.compare_digest(epoch.decode(), str(link["ep"])):
        raise AccessDenied("the link has been revoked", code="link_revoked")
    if link.get("su"):
        used = yield from store_get(tagged(K_USED, uref, link_id))
        if used is not None:
            raise AlreadyUsed("the link has already been used", code="link_used")
    return link


def user_fail_key(uref: str) -> str:
    """The user's failure counter (a window; a success deletes it)."""
    return tagged(K_USER_FAIL, uref)
