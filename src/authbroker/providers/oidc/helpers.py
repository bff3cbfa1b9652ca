"""Constants and small helpers shared by the OIDC modules and the claim profiles.

PKCE (RFC 7636 §4.2), ``at_hash``/``c_hash`` (Core §3.1.3.6), bounded claim reads,
the endpoint URL check every configured or discovered endpoint passes, and the
checks of authorization and token endpoint responses.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from ...errors import (
    AuthBrokerError,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    UserCancelled,
)
from ...http import HttpResponse
from ..base import (
    LOOPBACK_HOSTS,
)

__all__ = ["DEFAULT_ID_TOKEN_ALGS", "PROFILE_MODULES", "claim_str", "pkce_challenge", "token_hash"]


#: Claim-mapping module per ``profile`` key of a provider profile.
PROFILE_MODULES: Mapping[str, str] = {
    "ftn": "authbroker.providers.oidc.profiles.ftn",
    "bankid-no": "authbroker.providers.oidc.profiles.bankid_no",
    "tara": "authbroker.providers.oidc.profiles.tara",
    "broker-oidc": "authbroker.providers.oidc.profiles.broker_oidc",
}

#: Signing algorithms an ID token may use unless the profile narrows the list.
DEFAULT_ID_TOKEN_ALGS = ("RS256", "PS256", "ES256")
#: Algorithms we accept for our own signatures (request objects, client assertions).
_OWN_SIGNING_ALGS = frozenset({"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "RS256"})
_ASYMMETRIC_JWS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Core §3.1.3.7 items 9-10: one skew for every time check; FAPI tests need < 5 min.
DEFAULT_SKEW = 60.0
MAX_SKEW = 120.0
#: Maximum ID-token age counted from iat (FAPI1 ``iat-is-week-in-past``).
DEFAULT_MAX_ID_TOKEN_AGE = 600.0
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]{1,2048}")
#: RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
#: (https://www.rfc-editor.org/rfc/rfc6750#section-2.1). ASCII only, so nothing else
#: can reach the Authorization header or the at_hash input.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*", re.ASCII)
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §4.1.2.1
_CANCEL_ERRORS = frozenset({"access_denied", "user_cancel", "cancelled", "user_cancelled"})
_USERINFO_FORMATS = ("none", "json", "signed", "encrypted")


# --- helpers shared with the profile modules ------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _sha_for_alg(alg: str) -> Callable[[bytes], Any]:
    bits = alg[-3:]
    if bits == "384":
        return hashlib.sha384
    if bits == "512":
        return hashlib.sha512
    return hashlib.sha256


def token_hash(value: str, alg: str, *, encoding: str = "base64url") -> str:
    """Core §3.1.3.8 / §3.3.2.11: left half of the hash of the ASCII value.

    ``encoding="base64"`` reproduces TARA's legacy ``at_hash`` (standard base64,
    TARA TechnicalSpecification v1.21); every other provider uses base64url without padding.
    """
    digest = _sha_for_alg(alg)(value.encode("ascii")).digest()
    half = digest[: len(digest) // 2]
    if encoding == "base64":
        return base64.b64encode(half).decode("ascii")
    return _b64url(half)


def claim_str(claims: Mapping[str, Any], name: str, *, max_len: int = 256) -> str | None:
    """A string claim, or None; non-strings and oversized values are refused."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidInput(f"claim {name} is not a valid string", code="bad_claim")
    return value


#: Numbers beyond this are refused in time claims: above 2**53 a float no longer
#: holds every integer, so the comparisons below would round (RFC 7519 §2 NumericDate).
_MAX_EXACT = 2**53


def _is_number(value: Any) -> bool:
    """A finite JSON number within ±2**53 (``bool`` is not a number here).

    Compared without converting: ``math.isfinite`` raises ``OverflowError`` on an int
    too large for a float (a 400-digit ``exp`` is valid JSON), and NaN or an
    infinity fail the range comparison by themselves.
    """
    kind = type(value)
    if (kind is not int and kind is not float) and (
        not isinstance(value, int | float) or isinstance(value, bool)
    ):
        return False
    return bool(-_MAX_EXACT < value < _MAX_EXACT)


#: RFC 3986 §2 characters (unreserved, reserved and "%"): no spaces, controls or
#: non-ASCII, which URL parsers and HTTP clients treat differently.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _check_url(url: Any, what: str, *, provider: str, allow_loopback_http: bool) -> str:
    """A URL from discovery metadata, parsed safely before anything uses it.

    Endpoints must be https (OIDC-01); plain http only on loopback for simulators.
    Anything unparseable (``https://[::1/x``, a bad port) is a :class:`ProviderError`
    naming the provider and the metadata field, never a bare ``ValueError``.
    RFC 6749 §3.1-§3.2 (https://www.rfc-editor.org/rfc/rfc6749#section-3.1): endpoint
    URIs carry no fragment.
    """
    details = {"provider": provider, "field": what}
    invalid = ProviderError(
        f"provider {provider} metadata has no valid {what}", code="bad_metadata", details=details
    )
    if not isinstance(url, str) or not url or len(url) > 2048 or not _URL_CHARS.fullmatch(url):
        raise invalid
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise invalid from None
    if "#" in url or "@" in parts.netloc:
        raise invalid
    if parts.scheme == "https" and host:
        return url
    if allow_loopback_http and parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return url
    raise ProviderError(
        f"provider {provider} {what} is not an https URL",
        code="insecure_endpoint",
        details=details,
    )


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _shash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _error_code(resp: HttpResponse) -> str | None:
    """The OAuth ``error`` of an error response, if it is a well-formed code."""
    try:
        value = resp.json_object().get("error")
    except InvalidInput:
        return None
    if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
        return value
    return None


def _authorization_error(params: Mapping[str, str]) -> AuthBrokerError:
    """Core §3.1.2.6: the user's cancel is not a provider failure."""
    error = params.get("error", "")
    code = error if _ERROR_CODE.fullmatch(error) else "invalid_error"
    # error_description is untrusted text: length-capped, printable only, details only.
    description = params.get("error_description", "")[:200]
    if _PRINTABLE.fullmatch(description) is None:
        description = ""
    details = {"error": code, "description": description}
    if code in _CANCEL_ERRORS:
        return UserCancelled(
            "the user cancelled at the provider", code="cancelled", details=details
        )
    return ProviderError(
        "the provider returned an error", code="authorization_error", details=details
    )


def _token_response(resp: HttpResponse) -> dict[str, Any]:
    """The token endpoint's answer, checked before anything in it is used (RFC 6749
    §5.1-§5.2, Core §3.1.3.3): status, JSON, ``token_type``, both tokens present and
    bounded, and the access token in RFC 6750 §2.1 syntax."""
    if 300 <= resp.status < 400:
        # OIDC-10 / ASVS 15.3.2: back-channel redirects are never followed.
        raise ProviderError("token endpoint answered with a redirect", code="token_redirect")
    if resp.status >= 500:
        raise ProviderUnavailable("token endpoint failed", code="token_unavailable")
    if resp.status != 200:
        raise ProviderError(
            "token request was refused",
            code="token_refused",
            details={"status": resp.status, "error": _error_code(resp)},
        )
    if resp.content_type != "application/json":
        raise InvalidInput("token response is not JSON", code="token_bad_response")
    body = resp.json_object()
    token_type = body.get("token_type")
    # RFC 6749 §5.1 / §7.1: the type is case-insensitive.
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise InvalidInput("token response has an unsupported token_type", code="token_type")
    for name in ("access_token", "id_token"):
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > 65536:
            raise InvalidInput(f"token response has no valid {name}", code="token_bad_response")
    # Before any use (at_hash, the UserInfo Authorization header): RFC 6750 §2.1.
    if _B64TOKEN.fullmatch(body["access_token"]) is None:
        raise InvalidInput(
            "token response access_token is not a bearer token", code="access_token_syntax"
        )
    return body
