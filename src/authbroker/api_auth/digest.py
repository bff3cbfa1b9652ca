"""``Content-Digest`` (RFC 9530): binds the request body into the signature.

RFC 9421 signs headers, not bodies; covering ``content-digest`` and checking that the
received body matches it is what makes the body tamper-evident (RFC 9421 §7.2.8).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from ..errors import InvalidInput
from . import sfv
from .errors import DigestMismatch

__all__ = ["DIGEST_ALGORITHMS", "check_content_digest", "content_digest"]

#: RFC 9530 §5 / IANA "Hash Algorithms for HTTP Digest Fields": the active ones.
DIGEST_ALGORITHMS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}
_MAX_DIGEST_FIELD = 1024


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """The ``Content-Digest`` field value for ``body`` (RFC 9530 §2)."""
    try:
        digest = DIGEST_ALGORITHMS[algorithm](body)
    except KeyError as exc:
        raise InvalidInput("unsupported digest algorithm", code="unsupported_digest") from exc
    return f"{algorithm}=:{base64.b64encode(digest).decode('ascii')}:"


def check_content_digest(field_value: str, body: bytes) -> str:
    """Check ``body`` against every supported digest in the field; return the first
    algorithm name.

    Unknown or deprecated algorithms (``md5``, ``sha``...) are ignored as RFC 9530 §2
    allows, but at least one supported digest must be present, and every supported
    one must match: an attacker cannot add a weaker, matching entry next to a stale one.
    """
    members = sfv.parse_dictionary(
        field_value, code="bad_content_digest", max_bytes=_MAX_DIGEST_FIELD, max_members=8
    )
    checked: list[str] = []
    for name, member in members.items():
        compute = DIGEST_ALGORITHMS.get(name)
        if compute is None:
            continue
        expected = sfv.item_bytes(member)
        if expected is None:
            raise InvalidInput("a Content-Digest value is not bytes", code="bad_content_digest")
        if not hmac.compare_digest(compute(body), expected):
            raise DigestMismatch("the body does not match its Content-Digest")
        checked.append(name)
    if not checked:
        raise InvalidInput("Content-Digest has no supported algorithm", code="unsupported_digest")
    return checked[0]
