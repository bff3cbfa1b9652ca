"""ID tokens and identity claims the OpenID Provider simulator issues, per profile."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from ....crypto.jose import Key, encrypt_jwe, sign_jwt
from ....providers.oidc import token_hash
from .core import OpCore, _Grant, _Refused
from .keys import b64, unbound
from .persons import TestPerson


class OpTokens(OpCore):
    """Mints what the token and UserInfo endpoints return (and its mutations)."""

    def _returned_acr(self, params: Mapping[str, str]) -> str | None:
        requested = params.get("acr_values", "").split()
        c = self.control
        o = self.options
        if c.active("acr-missing"):
            return None
        if c.active("acr-unknown"):
            return "urn:example:unknown"
        acr = requested[0] if requested else (o.acr_values[0] if o.acr_values else None)
        if acr is None:
            return None
        if self.profile == "bankid-no" and ";" not in acr:
            acr += ";LOA=4" if acr == "urn:bankid:bid" else ";LOA=3"
        if c.active("acr-lower"):
            level = o.acr_loa[acr]
            lower = [a for a, lv in o.acr_loa.items() if lv < level]
            acr = lower[-1] if lower else acr
        if c.active("acr-other-method"):
            others = [a for a in o.acr_loa if a not in requested and a != acr]
            acr = others[0] if others else acr
        return acr

    def _person_claims(self, person: TestPerson, acr: str | None, sub: str) -> dict[str, Any]:
        number = self._number(person)
        p = self.profile
        if p == "ftn":
            return {
                "urn:oid:1.2.246.21": number,
                "urn:oid:2.5.4.4": person.family_name,
                "urn:oid:1.2.246.575.1.14": person.given_name,
                "urn:oid:1.3.6.1.5.5.7.9.1": person.birthdate,
                "urn:oid:2.16.840.1.113730.3.1.241": f"{person.given_name} {person.family_name}",
                "amr": [f"{self.issuer}/saml2/names/ac/oidc.nordea.1"],
            }
        if p == "bankid-no":
            return {
                "bankid_altsub": f"9578-6000-4-{int(number[:6]) % 1000000}",
                "nnin_altsub": number,
                "name": f"{person.given_name} {person.family_name}",
                "given_name": person.given_name,
                "family_name": person.family_name,
                "birthdate": person.birthdate,
                "amr": ["bid", "bid-app"],
                "typ": "ID",
            }
        if p == "tara":
            return {
                "profile_attributes": {
                    "given_name": person.given_name,
                    "family_name": person.family_name,
                    "date_of_birth": person.birthdate,
                },
                "amr": ["mID"],
                "jti": secrets.token_hex(16),
            }
        claim = {"SE": "ssn", "NO": "socialno", "FI": "hetu"}.get(person.country, "nin")
        scheme = {"SE": "sebankid", "NO": "nobankid-oidc", "FI": "fitupas"}.get(person.country, "")
        extra: dict[str, Any] = {}
        if person.country == "FI":
            # Idura: satu filled for Mobiilivarmenne, empty for banks (fi-ee §2.4 source:
            # https://docs.criipto.com/eid-specifics/order-fi-bankid/).
            mobile = "urn:grn:authn:fi:mobile-id" in (acr or "")
            extra["satu"] = person.satu if mobile else ""
        return {
            **extra,
            claim: number,
            "identityscheme": scheme,
            "name": f"{person.given_name} {person.family_name}",
            "given_name": person.given_name,
            "family_name": person.family_name,
            "birthdate": person.birthdate,
            "country": person.country,
        }

    def id_token(self, grant: _Grant, access_token: str, code: str) -> str:
        c = self.control
        now = int(self.now())
        params = grant.params
        alg = self._alg()
        person = grant.person
        sub = self._sub(person)
        acr = self._returned_acr(params)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": grant.auth_time,
            "sid": grant.sid,
        }
        if access_token.isascii():  # Core §3.3.2.11 hashes the ASCII octets
            claims["at_hash"] = token_hash(
                access_token, alg, encoding=self.options.at_hash_encoding
            )
        if params.get("nonce"):
            claims["nonce"] = params["nonce"]
        if acr is not None:
            claims["acr"] = acr
        if self.profile == "bankid-no":
            claims["azp"] = self.client_id
        if self.profile == "tara":
            claims["nbf"] = now
            claims["state"] = params.get("state", "")
        claims.update(self._person_claims(person, acr, sub))
        self._mutate_claims(claims, code, alg)
        token = self._sign(claims, alg)
        if c.active("sig-reorder") or c.active("sig-xor"):
            head, _, sig = token.rpartition(".")
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            # Legacy idts reorders the signature (bytes reversed here, so the result
            # stays canonical base64url); the current suite XORs each byte with 0x5A.
            bad = raw[::-1] if c.active("sig-reorder") else bytes(b ^ 0x5A for b in raw)
            token = f"{head}.{b64(bad)}"
        return self._maybe_encrypt(token, claims, for_userinfo=False)

    def _mutate_claims(self, claims: dict[str, Any], code: str, alg: str) -> None:
        c = self.control
        now = int(self.now())
        edits: dict[str, Callable[[], None]] = {
            "iss-example": lambda: claims.update(iss="https://example.org/"),
            "iss-append": lambda: claims.update(iss=claims["iss"] + "1"),
            "iss-missing": lambda: claims.pop("iss"),
            "aud-example": lambda: claims.update(aud="https://example.com/"),
            "aud-append": lambda: claims.update(aud=self.client_id + "1"),
            "aud-missing": lambda: claims.pop("aud"),
            "aud-secondary": lambda: claims.update(aud=[self.client_id, "other-client"]),
            "aud-array": lambda: claims.update(aud=[self.client_id]),
            "azp-other": lambda: claims.update(azp="other-client"),
            "nonce-012345678": lambda: claims.update(nonce="012345678"),
            "nonce-append": lambda: claims.update(nonce=str(claims.get("nonce")) + "1"),
            "nonce-missing": lambda: claims.pop("nonce", None),
            "exp-expired": lambda: claims.update(exp=now - 301, iat=now - 600),
            "exp-missing": lambda: claims.pop("exp"),
            "exp-string": lambda: claims.update(exp=str(claims["exp"])),
            "iat-missing": lambda: claims.pop("iat"),
            "iat-future": lambda: claims.update(iat=now + 120),
            "iat-week-old": lambda: claims.update(iat=now - 7 * 86400),
            "nbf-future": lambda: claims.update(nbf=now + 120),
            "sub-missing": lambda: claims.pop("sub"),
            "sub-long": lambda: claims.update(sub="x" * 300),
            "at-hash-wrong": lambda: claims.update(at_hash=claims["at_hash"] + "1"),
            "at-hash-missing": lambda: claims.pop("at_hash"),
            "c-hash-wrong": lambda: claims.update(c_hash=token_hash(code + "x", alg)),
            "auth-time-missing": lambda: claims.pop("auth_time"),
            "auth-time-future": lambda: claims.update(auth_time=now + 120),
        }
        for name, edit in edits.items():
            if c.active(name):
                edit()

    def _sign(self, claims: Mapping[str, Any], alg: str) -> str:
        c = self.control
        if c.active("alg-none"):
            header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{b64(json.dumps(claims).encode())}."
        if c.active("alg-hs256"):
            key = Key.from_secret(self.client_secret.encode(), alg="HS256")
            return sign_jwt(claims, key, alg="HS256")
        if c.active("embedded-jwk"):
            attacker = Key.generate("EC", use="sig", alg="ES256")
            headers = {"jwk": attacker.public_jwk(), "jku": f"{self.server.url}/attacker/jwks"}
            return sign_jwt(claims, attacker, alg="ES256", headers=headers)
        if c.consume("rotate-before-signing"):
            self.rotate_signing_key()
        key = self._signing(alg)
        if c.active("kid-absent-multiple"):
            return sign_jwt(claims, self.rsa_key, alg=alg, include_kid=False)
        return sign_jwt(claims, key, alg=alg, include_kid=not c.active("kid-absent-single"))

    def _maybe_encrypt(self, token: str, claims: Mapping[str, Any], *, for_userinfo: bool) -> str:
        c = self.control
        o = self.options
        wanted = o.userinfo == "encrypted" if for_userinfo else o.id_token_encrypted
        if not wanted or (not for_userinfo and c.active("no-encryption")):
            return token
        if c.active("encrypt-rsa1_5") or c.active("encrypt-dir"):
            alg = "RSA1_5" if c.active("encrypt-rsa1_5") else "dir"
            header = b64(json.dumps({"alg": alg, "enc": "A128CBC-HS256"}).encode())
            return ".".join(
                [header, b64(b"k" * 32), b64(b"i" * 16), b64(b"c" * 32), b64(b"t" * 16)]
            )
        key, alg, enc = self._encryption_key()
        if c.jwe_alg:
            # A test forces another key-management algorithm (a misbehaving OP).
            alg = c.jwe_alg
            key = unbound(key, key.kid)
        plain = token
        if (not for_userinfo and c.active("encrypt-plain-claims")) or (
            for_userinfo and c.active("userinfo-plain-jwe")
        ):
            plain = json.dumps(dict(claims))
        return encrypt_jwe(plain, key, alg=alg, enc=enc, headers={"cty": "JWT"})

    def _encryption_key(self) -> tuple[Key, str, str]:
        """The registered RP encryption key, and the alg/enc the provider uses with it.

        Like the real OP: the key's own ``alg`` if the provider supports it (else the
        key cannot be used), otherwise the provider's first algorithm the key fits;
        ``enc`` is the RP's registered preference among the provider's values.
        """
        p = self.published
        enc = next((e for e in self.options.jwe_encs if e in p.encryption_encs), None)
        for key in self.rp_public.keys:
            if key.use != "enc":
                continue
            for alg in (key.alg,) if key.alg else p.encryption_algs:
                if alg in p.encryption_algs and key._fits(alg, "enc") and enc is not None:
                    return key, alg, enc
        raise _Refused("invalid_client_metadata")
