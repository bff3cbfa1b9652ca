"""ID-token validation: the RP's real path against the raw floor and two peer libraries.

Subject: :meth:`authbroker.providers.oidc.OidcProvider._verify_id_token`, the routine
the OIDC relying party runs on every callback (header peek, strict JWS parsing, key
selection from the warm :class:`~authbroker.crypto.jose.JwksCache`, signature check, and the
claim checks of Core §3.1.3.7), driven by :class:`authbroker.kernel.runtime.SyncRuntime` exactly as
the broker drives it. The JWKS cache is primed, so no fetch is yielded.

Floor: the least work any verifier must do for the same token with ``cryptography``:
split the compact string, base64url-decode the signature and call ``verify`` on an
already-loaded public key (ES256 also converts R||S to DER, which ``cryptography``
needs). No header or payload parsing, no claim checks.

Peers: PyJWT's ``jwt.decode`` with a pre-built ``PyJWK`` and joserfc's ``jwt.decode``
with a pre-imported key set, each followed by the same claim checks (issuer,
audience, exp/iat, nonce), so all three sides do the same job.

The FTN figure adds a nested JWE (RSA-OAEP + A128CBC-HS256 to the RP's 3072-bit key,
the FTN profile's first choices and what its simulator sends) around the same kind
of signed token; its floor is RSA-OAEP decrypt of the content key, the CBC-HMAC tag
check, AES-CBC decrypt and the inner signature verification.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apadding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from joserfc import jwt as jjwt
from joserfc.jwk import KeySet as JoseKeySet

from authbroker.config import ProviderConfig, Settings
from authbroker.crypto.jose import JwksCache, Key, KeySet, encrypt_jwe, sign_jwt
from authbroker.identity import Loa
from authbroker.kernel.runtime import SyncRuntime
from authbroker.providers.oidc import OidcProvider

from ._report import Figure
from ._timing import compare

ISSUER = "https://idp.bench.example"
CLIENT_ID = "authbroker-bench"
NONCE = "n-0S6_WzA2Mj-bench-nonce-value-0123456789abcdefgh"
JWS_TARGET = 1.5
JWE_TARGET = 1.3


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _claims(now: float) -> dict[str, Any]:
    # A realistic FTN-like ID token (claim names as the FTN broker sends them).
    return {
        "iss": ISSUER,
        "sub": "AAdzZWNyZXQxh3w2f6S1Kq1VbVvBQ3uZ2Q",
        "aud": CLIENT_ID,
        "exp": int(now) + 600,
        "iat": int(now),
        "auth_time": int(now) - 5,
        "nonce": NONCE,
        "acr": "http://ftn.ficora.fi/2017/loa2",
        "given_name": "Nordea",
        "family_name": "Demo",
        "birthdate": "1970-07-07",
        "hetu": "070770-905D",
        "satu": "999198863",
    }


def _provider(rp_keys: KeySet, sig_public: Key, *, encrypted: bool, alg: str) -> OidcProvider:
    config = ProviderConfig(
        name="bench",
        protocol="oidc",
        environment="test",
        display_name={"en": "bench"},
        loa=Loa.HIGH,
        country=None,
        options={
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "client_auth": "private_key_jwt",
            "id_token_encrypted": encrypted,
            "id_token_signing_algs": [alg],
            "jwe_algs": ["RSA-OAEP", "RSA-OAEP-256"],
            "jwe_encs": ["A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"],
        },
    )
    provider = OidcProvider(config, Settings(), rp_keys=rp_keys)
    cache = JwksCache(ISSUER + "/jwks")
    cache.set_keys(KeySet([sig_public]))
    provider._jwks = cache  # warm: what discovery + the first fetch leave behind
    return provider


def _signing_keys(alg: str) -> tuple[Key, Any, dict[str, Any]]:
    """(private Key, cryptography public key, public JWK) of a provider signing key."""
    raw: Any
    if alg == "RS256":
        # Providers sign with 2048-bit RSA (the peers' minimum, JOSE-13).
        raw = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raw = ec.generate_private_key(ec.SECP256R1())
    pem = raw.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = Key.from_pem(pem, use="sig", alg=alg, kid=f"op-{alg.lower()}-1")
    jwk = key.public_jwk()
    return key, raw.public_key(), jwk


def _raw_verify(alg: str, public: Any) -> Callable[[str], None]:
    if alg == "RS256":
        pkcs1, sha = apadding.PKCS1v15(), hashes.SHA256()

        def verify(token: str) -> None:
            h, p, s = token.split(".")
            public.verify(_b64d(s), f"{h}.{p}".encode(), pkcs1, sha)

        return verify
    ecdsa = ec.ECDSA(hashes.SHA256())

    def verify_es(token: str) -> None:
        h, p, s = token.split(".")
        sig = _b64d(s)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public.verify(der, f"{h}.{p}".encode(), ecdsa)

    return verify_es


def _peers(alg: str, jwk: dict[str, Any]) -> dict[str, Callable[[str], object]]:
    pk = pyjwt.PyJWK(jwk)
    jks = JoseKeySet.import_key_set({"keys": [jwk]})
    registry = jjwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": CLIENT_ID},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": NONCE},
    )

    def with_pyjwt(token: str) -> object:
        claims = pyjwt.decode(
            token,
            pk,
            algorithms=[alg],
            audience=CLIENT_ID,
            issuer=ISSUER,
            leeway=60,
            options={"require": ["exp", "iat", "sub", "nonce"]},
        )
        if not hmac.compare_digest(claims["nonce"].encode(), NONCE.encode()):
            raise ValueError("nonce")
        return claims

    def with_joserfc(token: str) -> object:
        decoded = jjwt.decode(token, jks, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded.claims

    return {"pyjwt": with_pyjwt, "joserfc": with_joserfc}


def bench_id_token(alg: str, *, repeat: int, budget: float) -> list[Figure]:
    now = time.time()
    sig_private, public, jwk = _signing_keys(alg)
    rp_keys = KeySet([Key.generate("EC", use="sig", alg="ES256", kid="rp-sig")])
    provider = _provider(rp_keys, Key.from_jwk(jwk), encrypted=False, alg=alg)
    token = sign_jwt(_claims(now), sig_private, alg=alg, headers={"typ": "JWT"})
    data = {"issuer": ISSUER, "nonce": NONCE}

    def authbroker_rp() -> object:
        return SyncRuntime().run(provider._verify_id_token(token, data, time.time()))

    raw = _raw_verify(alg, public)
    peers = _peers(alg, jwk)
    # Sanity: every side accepts the token before anything is timed.
    authbroker_rp()
    raw(token)
    for fn in peers.values():
        fn(token)
    t = compare(
        {
            "authbroker": authbroker_rp,
            "floor": lambda: raw(token),
            "pyjwt": lambda: peers["pyjwt"](token),
            "joserfc": lambda: peers["joserfc"](token),
        },
        repeat=repeat,
        budget=budget,
    )
    ours, floor = t["authbroker"].median, t["floor"].median
    ratio = ours / floor
    parts = _breakdown(token, provider)
    vs_pyjwt = t["pyjwt"].median / ours
    vs_joserfc = t["joserfc"].median / ours
    detail = (
        f"per token: authbroker RP path {ours * 1e6:.1f} µs, raw cryptography verify "
        f"{floor * 1e6:.1f} µs, PyJWT decode {t['pyjwt'].median * 1e6:.1f} µs, joserfc "
        f"decode {t['joserfc'].median * 1e6:.1f} µs (medians of {repeat} interleaved "
        f"repetitions). authbroker overhead over the floor: {(ours - floor) * 1e6:.1f} µs."
    )
    breakdown = ", ".join(f"{name} {us:.1f} µs" for name, us in parts.items())
    detail += f" Parts of the RP path measured alone: {breakdown}."
    note = ""
    if ratio > JWS_TARGET:
        allowed = (JWS_TARGET - 1) * floor * 1e6
        note = (
            f"Gap: {ratio:.2f}x against a target of {JWS_TARGET}x. The target leaves "
            f"{allowed:.0f} µs for everything beyond the {alg} verify "
            f"({floor * 1e6:.0f} µs, fast on this CPU); the RP path spends "
            f"{(ours - floor) * 1e6:.0f} µs: the strict JSON parse of the claims "
            f"(duplicate-member, depth and size checks), the compact-JWS shape checks, "
            f"the Core §3.1.3.7 claim checks, and the sans-I/O generator plumbing "
            f"(verify_jwt is a generator driven by SyncRuntime so a JWKS refetch can be "
            f"yielded). Avoidable: peek_header() in OidcProvider._verify_id_token "
            f"decodes the protected header a second time without the header cache "
            f"verify_jwt uses (the 'peek_header' part above). The faster the "
            f"signature check on a CPU, the larger this fixed overhead looks as a ratio."
        )
    figs = [
        Figure(
            f"JWS-{alg}",
            f"ID token {alg}, warm JWKS: RP path / raw verify",
            ratio,
            "x",
            f"≤ {JWS_TARGET}x",
            ratio <= JWS_TARGET,
            detail=detail,
            note=note,
        ),
        Figure(
            f"JWS-{alg}-peers",
            f"ID token {alg}: PyJWT / authbroker, joserfc / authbroker",
            min(vs_pyjwt, vs_joserfc),
            "x",
            "> 1.0x (faster than both)",
            vs_pyjwt > 1.0 and vs_joserfc > 1.0,
            detail=(
                f"PyJWT takes {vs_pyjwt:.2f}x and joserfc {vs_joserfc:.2f}x the time of "
                f"the authbroker RP path for the same token with the same claim checks "
                f"(the figure shows the smaller of the two)."
            ),
        ),
    ]
    return figs


def _breakdown(token: str, provider: OidcProvider) -> dict[str, float]:
    """Microseconds of the separable parts of the RP path (best of 5 short runs)."""
    import timeit

    from authbroker.crypto.jose.codec import _b64d as jose_b64d
    from authbroker.crypto.jose.codec import _json_object
    from authbroker.crypto.jose.jws import _parse_jws, peek_header
    from authbroker.providers.oidc import validate_id_token_claims

    claims = _claims(time.time())
    payload = token.split(".")[1]
    cache = provider._jwks
    assert cache is not None
    algs = provider.options.id_token_algs
    parts: dict[str, Callable[[], object]] = {
        "peek_header": lambda: peek_header(token),
        "JWS shape + header parse": lambda: _parse_jws(token, 16 * 1024),
        "claims JSON parse": lambda: _json_object(jose_b64d(payload), "token payload"),
        "claim checks": lambda: validate_id_token_claims(
            claims, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE, now=time.time()
        ),
        "JwksCache.verify_jwt via SyncRuntime": lambda: SyncRuntime().run(
            cache.verify_jwt(token, algorithms=algs)
        ),
    }
    out = {}
    for name, fn in parts.items():
        out[name] = min(timeit.repeat(fn, number=300, repeat=5)) / 300 * 1e6
    return out


def _raw_nested(rp_private: Any, sig_public: Any) -> Callable[[str], None]:
    oaep = apadding.OAEP(mgf=apadding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    inner_verify = _raw_verify("RS256", sig_public)

    def decrypt_and_verify(token: str) -> None:
        h64, ek64, iv64, ct64, tag64 = token.split(".")
        cek = rp_private.decrypt(_b64d(ek64), oaep)
        mac_key, enc_key = cek[:16], cek[16:]
        aad = h64.encode("ascii")
        iv, ct = _b64d(iv64), _b64d(ct64)
        al = (len(aad) * 8).to_bytes(8, "big")
        # RFC 7518 §5.2.2.2: tag = first half of HMAC-SHA-256(AAD || IV || C || AL).
        tag = hmac.new(mac_key, aad + iv + ct + al, "sha256").digest()[:16]
        if not hmac.compare_digest(tag, _b64d(tag64)):
            raise ValueError("tag")
        decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ct) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        inner = (unpadder.update(padded) + unpadder.finalize()).decode("ascii")
        inner_verify(inner)

    return decrypt_and_verify


def bench_nested(*, repeat: int, budget: float) -> list[Figure]:
    now = time.time()
    sig_private, sig_public, jwk = _signing_keys("RS256")
    # The RP's own keys: 3072-bit RSA as generated by generate_rp_keys (ASVS 11.2.3).
    enc_key = Key.generate("RSA", use="enc", alg="RSA-OAEP", kid="rp-enc-1")
    rp_keys = KeySet([Key.generate("EC", use="sig", alg="ES256", kid="rp-sig"), enc_key])
    provider = _provider(rp_keys, Key.from_jwk(jwk), encrypted=True, alg="RS256")
    inner = sign_jwt(_claims(now), sig_private, alg="RS256", headers={"typ": "JWT"})
    token = encrypt_jwe(inner, enc_key, alg="RSA-OAEP", enc="A128CBC-HS256", headers={"cty": "JWT"})
    data = {"issuer": ISSUER, "nonce": NONCE}

    def authbroker_rp() -> object:
        return SyncRuntime().run(provider._verify_id_token(token, data, time.time()))

    raw = _raw_nested(enc_key._priv, sig_public)
    authbroker_rp()
    raw(token)
    t = compare(
        {"authbroker": authbroker_rp, "floor": lambda: raw(token)},
        repeat=repeat,
        budget=budget,
        warmup=5,
    )
    ours, floor = t["authbroker"].median, t["floor"].median
    ratio = ours / floor
    note = ""
    if ratio > JWE_TARGET:
        note = (
            f"Gap: {ratio:.2f}x against {JWE_TARGET}x. The JWE layer goes through "
            f"joserfc's registry and key objects (authbroker.crypto.jose.decrypt_jwe), which "
            f"add header re-parsing and object construction on top of the RSA and AES "
            f"work; the overhead is {(ours - floor) * 1e6:.0f} µs per token."
        )
    return [
        Figure(
            "JWE-FTN",
            "FTN nested ID token (RSA-OAEP 3072 + A128CBC-HS256 + RS256) / raw",
            ratio,
            "x",
            f"≤ {JWE_TARGET}x",
            ratio <= JWE_TARGET,
            detail=(
                f"per token: authbroker RP path {ours * 1e6:.0f} µs, raw RSA-OAEP decrypt + "
                f"HMAC tag + AES-CBC decrypt + RS256 verify {floor * 1e6:.0f} µs."
            ),
            note=note,
        )
    ]
