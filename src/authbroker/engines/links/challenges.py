"""Challenge ids that carry what an OTP verify needs, so a verify is one store program.

A verify must touch the challenge's keys, the link's and the user's (replay marker,
current challenge, revocation marker and epoch, three attempt counters, the code's
MAC) in one atomic store program. To build that program without first reading a
challenge record (a second round trip), the id the browser holds names everything
the program needs, authenticated by the server:

``nonce.uref.link_id.expires_ms.link_expires_ms.single_use.epoch.bind.tag``

* ``nonce``: 128 random bits (``secrets.token_urlsafe(16)``), the challenge's own id
  in store key names and the context of its code MAC;
* ``uref``: the 24 hex digits of the user's pseudonymous reference
  (:func:`.records.user_ref`, the ``{hash tag}`` of every key the verify touches, so
  the program runs on one Redis Cluster slot). It is the same unkeyed reference the
  audit log carries: whoever holds the id *and* can guess user ids can tell whose
  link it is; the id lives in that user's browser only;
* ``link_id``: the link (43 characters); ``expires_ms``, ``link_expires_ms``: when
  the code and the link end, in whole milliseconds (judged on the engine's clock
  before anything is sent to the store, so an expired code counts nothing);
* ``single_use``: ``1`` or ``0``; ``epoch``: the user's revocation epoch the link
  was issued under (16 characters, or empty when there was none);
* ``bind``: when the challenge is bound to a browser, a 96-bit HMAC of the binding
  (empty otherwise), checked before the store is asked: another browser cannot
  make a guess count (it cannot lock the link);
* ``tag``: a 128-bit HMAC-SHA256 of everything before it with a key derived from
  the link secrets (checked with every secret; the one that matches also keys the
  code MAC, so codes pending across a rotation still verify).

Nothing in the id is secret (no code, no code MAC, no user id, no phone), and
nothing in it is trusted unless the tag checks out: a malformed, altered or forged
id is refused as :class:`~authbroker.errors.FlowNotFound` ``challenge_unknown``
before any store access. Ids are 146 to 178 characters.

Written by hand because it is a fixed-field record under one HMAC; itsdangerous
(used for link tokens) would add a JSON or base64 layer and a timestamp the store
TTLs and ``expires_ms`` already provide.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from dataclasses import dataclass, field

from ...errors import FlowNotFound, InvalidInput
from .tokens import LinkKeys

__all__ = ["ChallengeId", "make_challenge_id", "parse_challenge_id"]

#: Longest id accepted before the pattern is tried (the longest one issued is 178).
MAX_CHALLENGE_ID_LENGTH = 200
_B64 = "[A-Za-z0-9_-]"
_CHALLENGE_RE = re.compile(
    rf"({_B64}{{22}})\.([0-9a-f]{{24}})\.({_B64}{{43}})\.([1-9][0-9]{{0,15}})"
    rf"\.([1-9][0-9]{{0,15}})\.([01])\.((?:{_B64}{{16}})?)\.((?:{_B64}{{16}})?)\.({_B64}{{22}})"
)
_EPOCH_RE = re.compile(rf"(?:{_B64}{{16}})?")
_TAG_LABEL = b"authbroker.challenge-id.v2\x00"
_BIND_LABEL = b"authbroker.challenge-binding.v2\x00"


@dataclass(frozen=True, slots=True)
class ChallengeId:
    """The authenticated fields of a challenge id; ``key_index`` is the secret that
    signed it (it also keys the code MAC)."""

    nonce: str = field(repr=False)
    uref: str
    link_id: str = field(repr=False)
    expires_at: float
    link_expires: float
    single_use: bool
    epoch: str = field(repr=False)
    key_index: int


def _ms(at: float) -> str:
    # Whole milliseconds, rounded down: a code never lives longer than it was given.
    return str(max(1, math.floor(at * 1000)))


def _binding_tag(keys: LinkKeys, index: int, nonce: str, binding: str | None) -> str:
    if not binding:
        return ""
    return keys.challenge_tag(index, _BIND_LABEL + f"{nonce}\x00{binding}".encode(), 12)


def make_challenge_id(
    keys: LinkKeys,
    *,
    uref: str,
    link_id: str,
    expires_at: float,
    link_expires: float,
    single_use: bool,
    epoch: str,
    binding: str | None,
) -> tuple[str, str]:
    """A new ``(challenge id, nonce)``, signed with the newest secret."""
    if not uref.startswith("u_") or not _EPOCH_RE.fullmatch(epoch):
        raise InvalidInput("corrupt link record", code="record_corrupt")
    nonce = secrets.token_urlsafe(16)
    body = ".".join(
        (
            nonce,
            uref[2:],
            link_id,
            _ms(expires_at),
            _ms(link_expires),
            "1" if single_use else "0",
            epoch,
            _binding_tag(keys, 0, nonce, binding),
        )
    )
    challenge_id = f"{body}.{keys.challenge_tag(0, _TAG_LABEL + body.encode(), 16)}"
    if not _CHALLENGE_RE.fullmatch(challenge_id):  # pragma: no cover - format invariant
        raise InvalidInput("corrupt link record", code="record_corrupt")
    return challenge_id, nonce


def parse_challenge_id(
    keys: LinkKeys, challenge_id: object, binding: str | None, *, check_binding: bool = True
) -> ChallengeId:
    """The fields of an id this service issued, answered from its own browser.

    Unknown (malformed, altered, forged, or signed by a retired secret):
    :class:`FlowNotFound` ``challenge_unknown``. Bound to another browser (or the
    binding is missing): :class:`InvalidInput` ``challenge_binding``, not counted as
    a failure. ``check_binding=False`` is for read-only introspection.
    """
    if not isinstance(challenge_id, str) or len(challenge_id) > MAX_CHALLENGE_ID_LENGTH:
        raise FlowNotFound("unknown code challenge", code="challenge_unknown")
    match = _CHALLENGE_RE.fullmatch(challenge_id)
    if match is None:
        raise FlowNotFound("unknown code challenge", code="challenge_unknown")
    body, tag = challenge_id.rsplit(".", 1)
    signed = _TAG_LABEL + body.encode()
    index = -1
    for candidate in range(keys.key_count):
        if hmac.compare_digest(keys.challenge_tag(candidate, signed, 16), tag) and index < 0:
            index = candidate
    if index < 0:
        raise FlowNotFound("unknown code challenge", code="challenge_unknown")
    nonce, uref, link_id, expires, link_expires, single_use, epoch, bound, _ = match.groups()
    if check_binding and not hmac.compare_digest(
        bound, _binding_tag(keys, index, nonce, binding) if bound else ""
    ):
        # Not counted as a failure: another browser must not be able to lock it.
        raise InvalidInput("the code belongs to another browser", code="challenge_binding")
    return ChallengeId(
        nonce=nonce,
        uref="u_" + uref,
        link_id=link_id,
        expires_at=int(expires) / 1000,
        link_expires=int(link_expires) / 1000,
        single_use=single_use == "1",
        epoch=epoch,
        key_index=index,
    )
