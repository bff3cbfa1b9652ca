"""What tests switch on the OpenID Provider simulator: misbehaviours and the control.

:data:`MISBEHAVIOURS` lists every mutation, with both the legacy ``rp-*`` and the
current ``oidcc-client-test-*`` variants of the OpenID Foundation conformance suite
(https://openid.net/certification/connect_rp_testing/).
"""

from __future__ import annotations

from collections.abc import Mapping

from ....errors import ConfigError

#: Every mutation the simulator can apply, with what it does.
MISBEHAVIOURS: Mapping[str, str] = {
    # ID token signature / header
    "sig-reorder": "reverse the characters of the ID token signature (legacy idts)",
    "sig-xor": "XOR every signature byte with 0x5A (current suite)",
    "alg-none": "unsigned ID token with alg none",
    "alg-hs256": "ID token MAC'ed with HS256 keyed by the client secret",
    "kid-absent-single": "JWKS keys without kid (one RSA, one EC); token without kid",
    "kid-absent-multiple": "JWKS with three RSA keys without kid; token without kid",
    "unparseable-key-in-jwks": "JWKS also holds an AKP key and an invented kty",
    "jwks-private-members": "JWKS publishes the RSA signing key with its private members",
    "rotate-before-signing": "new signing key and kid right before the next ID token (once)",
    "embedded-jwk": "signed by an attacker key that is embedded as jwk/jku in the header",
    # ID token claims
    "iss-example": "iss = https://example.org/",
    "iss-append": "iss = issuer + '1'",
    "iss-missing": "no iss",
    "aud-example": "aud = https://example.com/",
    "aud-append": "aud = client_id + '1'",
    "aud-missing": "no aud",
    "aud-secondary": "aud = [client_id, 'other-client']",
    "aud-array": "aud = [client_id] (valid)",
    "azp-other": "azp = 'other-client'",
    "nonce-012345678": "nonce = 012345678 (legacy)",
    "nonce-append": "nonce + '1'",
    "nonce-missing": "no nonce",
    "exp-expired": "exp five minutes and one second in the past",
    "exp-missing": "no exp",
    "exp-string": "exp as a string",
    "iat-missing": "no iat",
    "iat-future": "iat two minutes in the future",
    "iat-week-old": "iat one week in the past",
    "nbf-future": "nbf two minutes in the future",
    "sub-missing": "no sub",
    "sub-long": "sub of 300 characters",
    "acr-lower": "acr one level below what was requested",
    "acr-other-method": "acr names a method other than the requested one",
    "acr-missing": "no acr",
    "acr-unknown": "acr = urn:example:unknown",
    "at-hash-wrong": "at_hash + '1'",
    "at-hash-missing": "no at_hash (valid)",
    "c-hash-wrong": "c_hash present and wrong",
    "auth-time-missing": "no auth_time",
    "auth-time-future": "auth_time two minutes in the future",
    "national-id-bad-checksum": "the person's identity number with a wrong check character",
    # encryption
    "no-encryption": "signed-only ID token although encryption is agreed",
    "encrypt-plain-claims": "JWE whose plaintext is bare JSON claims (no inner JWS)",
    "encrypt-rsa1_5": "JWE header alg RSA1_5",
    "encrypt-dir": "JWE header alg dir",
    # front channel
    "iss-param-wrong": "authorization response iss = another issuer",
    "iss-param-missing": "authorization response without iss (while advertised)",
    "iss-param-slash": "authorization response iss with a trailing slash",
    "replay-code": "redirect with the last already-redeemed code",
    "error-foreign-state": "error response carrying a forged state",
    # discovery
    "discovery-issuer-mismatch": "metadata issuer = issuer + 'INVALID'",
    "discovery-issuer-example": "metadata issuer = https://example.com",
    "discovery-issuer-slash": "metadata issuer with a trailing slash",
    "discovery-http-endpoint": "token_endpoint on plain http on a public host",
    "discovery-malformed-url": "jwks_uri = https://[::1/x (not a parseable URL)",
    "iss-param-not-advertised": "metadata without authorization_response_iss_parameter_supported",
    # token endpoint
    "token-type-case": "token_type = bEARER (valid)",
    "token-no-expires-in": "token response without expires_in (valid)",
    "token-redirect": "token endpoint answers 302",
    "token-error": "token endpoint answers 400 invalid_grant",
    "access-token-bad-char": "access_token with a space, outside RFC 6750 b64token",
    "access-token-non-ascii": "access_token with a non-ASCII letter (so no at_hash)",
    # UserInfo
    "userinfo-sub-foobar": "UserInfo sub (and the profile's person-matching claims) = foobar",
    "userinfo-sub-append": "UserInfo sub (and the profile's person-matching claims) + 'invalid'",
    "userinfo-unsigned": "UserInfo as plain JSON although a JWT is agreed",
    "userinfo-wrong-key": "UserInfo signed by a key not in the JWKS",
    "userinfo-iss-wrong": "signed UserInfo with another iss",
    "userinfo-aud-wrong": "signed UserInfo with another aud",
    "userinfo-plain-jwe": "UserInfo JWE whose plaintext is bare JSON",
}


class OpControl:
    """Switches for tests and the CLI; plain attributes, read on every request."""

    def __init__(self) -> None:
        self._misbehave: set[str] = set()
        #: ``True`` (first suitable person) or a person id: skip the consent page.
        self.auto_approve: bool | str | None = None
        #: Answer the authorization request with this OAuth error code.
        self.deny: str | None = None
        #: Sign ID tokens with this algorithm (RS256 / PS256 / ES256).
        self.id_token_alg: str | None = None
        #: JWE key management algorithm for encrypted responses.
        self.jwe_alg: str | None = None
        #: Seconds added to the simulator clock.
        self.clock_offset = 0.0

    def misbehave(self, *names: str) -> None:
        """Replace the active mutations (no names: behave)."""
        unknown = set(names) - set(MISBEHAVIOURS)
        if unknown:
            raise ConfigError(f"unknown misbehaviour(s): {sorted(unknown)}")
        self._misbehave = set(names)

    def active(self, name: str) -> bool:
        return name in self._misbehave

    def consume(self, name: str) -> bool:
        """One-shot mutations switch themselves off when used."""
        if name in self._misbehave:
            self._misbehave.discard(name)
            return True
        return False

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
