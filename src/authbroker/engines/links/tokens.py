"""Link tokens and the keys derived from the secrets (LNK-01, OTP-01).

A link token is an ``itsdangerous`` ``URLSafeTimedSerializer`` value with the purpose
salt :data:`LINK_SALT`, HMAC-SHA256, a list of secrets (newest signs, all verify) and
``max_age`` on every load; its payload is only a random 256-bit link id, because
signing does not hide a payload. Code MACs, browser-binding MACs and the keyed hashes
in store key names use keys derived from the same secrets, with a key id stored next
to each MAC so pending codes survive a rotation.
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
#: A link or challenge id: ``secrets.token_urlsafe(32)``.
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
