"""Link tokens and the keys derived from the secrets (LNK-01, OTP-01).

A link token is an ``itsdangerous`` ``URLSafeTimedSerializer`` value with the purpose
salt :data:`LINK_SALT`, HMAC-SHA256, a list of secrets (newest signs, all verify) and
``max_age`` on every load; its payload is only a random 256-bit link id, because
signing does not hide a payload. Code MACs, challenge-id tags (:mod:`.challenges`)
and the keyed hashes in store key names use keys derived from the same secrets; a
challenge id names no key: it is checked with every secret, and the one that matches
also checks its code, so pending codes survive a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence

import itsdangerous

from ...config import check_secret_keys
from ...errors import Expired, InvalidSignature

__all__ = ["ID_RE", "LINK_SALT", "MAX_TOKEN_LENGTH", "LinkKeys", "LinkTokens"]

#: itsdangerous salt: a link token is valid for this purpose only (C16).
LINK_SALT = "authbroker.link.v1"
MAX_TOKEN_LENGTH = 512
#: A link id: ``secrets.token_urlsafe(32)``.
ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def canonical_b64url(segment: str) -> bool:
    """True when ``segment`` is unpadded base64url in its one canonical spelling."""
    if not segment or not segment.isascii():
        return False
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == segment


class LinkKeys:
    """Secret-derived keys. The first secret is the newest and signs; all verify."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        secret_keys = check_secret_keys(secret_keys, key="secret_keys")
        self._secrets = [k.encode() for k in secret_keys]
        self._otp = [self._derive(k, b"authbroker.otp.v1") for k in self._secrets]
        self._challenge = [self._derive(k, b"authbroker.challenge.v2") for k in self._secrets]
        self._index = self._derive(self._secrets[0], b"authbroker.link.index.v1")

    @staticmethod
    def _derive(secret: bytes, label: bytes) -> bytes:
        return hmac.new(secret, label, hashlib.sha256).digest()

    @property
    def itsdangerous_keys(self) -> list[bytes]:
        # itsdangerous wants oldest..newest and signs with the last one.
        return list(reversed(self._secrets))

    @property
    def key_count(self) -> int:
        """How many secrets verify (index 0 is the newest, which signs)."""
        return len(self._secrets)

    def code_mac(self, code: str, nonce: str, link_id: str, index: int = 0) -> bytes:
        """OTP-01: the keyed hash stored instead of the code, the challenge nonce and
        the link id as context (hex, so the store compares printable bytes)."""
        msg = f"{nonce}\x00{link_id}\x00{code}".encode()
        return hmac.new(self._otp[index], msg, hashlib.sha256).hexdigest().encode()

    def challenge_tag(self, index: int, data: bytes, size: int) -> str:
        """A ``size``-byte HMAC-SHA256 tag of ``data``, unpadded base64url (the
        authenticator and the browser binding of a challenge id)."""
        tag = hmac.digest(self._challenge[index], data, "sha256")[:size]
        return base64.urlsafe_b64encode(tag).rstrip(b"=").decode()

    def index(self, kind: str, value: str) -> str:
        """Keyed hash for store key names holding personal data (phone, IP)."""
        return hmac.new(self._index, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]


class LinkTokens:
    """Signs link ids into URL tokens and reads them back, on the injected clock."""

    def __init__(self, keys: LinkKeys, clock: Callable[[], float], max_age: float) -> None:
        self.clock = clock
        self.max_age = int(max_age)

        class _ClockSigner(itsdangerous.TimestampSigner):
            # itsdangerous reads time.time(); links follow the injected clock instead.
            def get_timestamp(self) -> int:
                return int(clock())

        self.serializer = itsdangerous.URLSafeTimedSerializer(
            keys.itsdangerous_keys,
            salt=LINK_SALT,
            signer=_ClockSigner,
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def dumps(self, link_id: str) -> str:
        """The URL token of ``link_id``, signed with the newest secret."""
        token = self.serializer.dumps(link_id)
        assert isinstance(token, str)
        return token

    def link_id(self, token: str) -> str:
        """The link id in a token whose signature and age check out."""
        if not isinstance(token, str) or not 16 <= len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidSignature("malformed link", code="link_malformed")
        if not all(canonical_b64url(part) for part in token.split(".")):
            # base64 leaves spare bits in a last character: several spellings decode to
            # the same bytes. Only the one spelling we issue is a valid link, so a token
            # string identifies exactly one link (logs, caches, revocation lists).
            raise InvalidSignature("the link is not valid", code="link_invalid")
        try:
            value = self.serializer.loads(token, max_age=self.max_age)
        except itsdangerous.SignatureExpired as exc:
            signed = exc.date_signed.timestamp() if exc.date_signed is not None else 0.0
            if signed > self.clock():
                # Signed "in the future": a clock problem or a forgery, never a valid link.
                raise InvalidSignature("the link is not valid", code="link_future") from exc
            raise Expired("the link has expired", code="link_expired") from exc
        except itsdangerous.BadData as exc:
            raise InvalidSignature("the link is not valid", code="link_invalid") from exc
        if not isinstance(value, str) or not ID_RE.fullmatch(value):
            raise InvalidSignature("the link is not valid", code="link_invalid")
        return value
