"""UserInfo (Core §5.3): the request, the plain, signed or encrypted answer, the subject.

Beside the relying party (:mod:`.rp`) because it needs only what the RP hands it:
the options, the issuer's JWKS cache and the RP's nested-JWE decryption.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...crypto.jose import JwksCache
from ...errors import InvalidInput, ProviderError, ProviderUnavailable
from ...http import HttpRequest
from ...kernel.effects import Gen, fetch
from .options import OidcOptions

__all__ = ["fetch_userinfo", "match_userinfo_subject"]


def fetch_userinfo(
    opts: OidcOptions,
    jwks: JwksCache,
    decrypt: Callable[[str, str], str],
    access_token: str,
    claims: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> Gen[dict[str, Any]]:
    """Core §5.3: bearer token in the header only; format per profile; sub must match.

    ``decrypt(token, what)`` opens a nested JWE with the RP's keys (JOSE-07); the
    inner JWS is verified with ``jwks`` and the ID-token algorithms.
    """
    resp = yield from fetch(
        HttpRequest.get(
            str(meta["userinfo_endpoint"]),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/jwt, application/json",
            },
            timeout=opts.timeout,
            tag="userinfo",
        )
    )
    if resp.status >= 500:
        raise ProviderUnavailable("UserInfo endpoint failed", code="userinfo_unavailable")
    if resp.status != 200:
        raise ProviderError(
            "UserInfo request was refused",
            code="userinfo_refused",
            details={"status": resp.status},
        )
    ctype = resp.content_type
    if opts.userinfo == "json":
        if ctype != "application/json":
            raise InvalidInput("UserInfo is not JSON", code="userinfo_format")
        info = resp.json_object()
    else:
        if ctype != "application/jwt":
            raise InvalidInput("UserInfo is not a JWT", code="userinfo_format")
        try:
            token = resp.body.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise InvalidInput("UserInfo is not a JWT", code="userinfo_format") from exc
        if token.count(".") == 4:  # RFC 7516 §9, as for the ID token
            if opts.userinfo != "encrypted":
                raise InvalidInput("UserInfo is unexpectedly encrypted", code="userinfo_format")
            token = decrypt(token, "UserInfo")
        elif opts.userinfo == "encrypted":
            raise InvalidInput("UserInfo was not encrypted", code="not_encrypted")
        _, info = yield from jwks.verify_jwt(token, algorithms=opts.id_token_algs)
        # Core §5.3.2: when signed, iss and aud should be present; check when they
        # are. iss is the OP issuer unless the profile names the server that signs
        # UserInfo (BankID: the TINFO resource server's base URL).
        iss = info.get("iss")
        expected_iss = opts.userinfo_issuer or opts.issuer
        if iss is not None and iss != expected_iss:
            raise InvalidInput("UserInfo issuer does not match", code="userinfo_iss_mismatch")
        aud = info.get("aud")
        if aud is not None and aud not in (opts.client_id, [opts.client_id]):
            raise InvalidInput("UserInfo audience does not match", code="userinfo_aud_mismatch")
    match_userinfo_subject(opts.userinfo_subject_claims, claims, info)
    return info


def _utf8(value: str) -> bytes:
    # JSON can spell a lone surrogate, which has no UTF-8 form: kept as its own bytes
    # (equal only to itself) instead of failing the comparison with UnicodeEncodeError.
    return value.encode("utf-8", "surrogatepass")


def match_userinfo_subject(
    pairs: Sequence[str], id_token: Mapping[str, Any], info: Mapping[str, Any]
) -> None:
    """UserInfo describes the ID token's person (Core §5.3.4: equal ``sub``).

    Each entry is a claim name (same on both sides) or ``id_claim:userinfo_claim``.
    Every pair present in both must be equal, and at least one must be present:
    BankID's TINFO has its own ``sub``, so that profile compares ``bankid_altsub``
    and ``nnin_altsub``/``nnin`` instead. A missing or different value is refused.
    """
    compared = 0
    for pair in pairs:
        id_name, _, info_name = pair.partition(":")
        mine, theirs = id_token.get(id_name), info.get(info_name or id_name)
        if mine is None or theirs is None:
            continue
        if not isinstance(theirs, str) or not hmac.compare_digest(_utf8(theirs), _utf8(str(mine))):
            raise InvalidInput("UserInfo subject does not match", code="userinfo_sub_mismatch")
        compared += 1
    if not compared:
        raise InvalidInput("UserInfo subject does not match", code="userinfo_sub_mismatch")
