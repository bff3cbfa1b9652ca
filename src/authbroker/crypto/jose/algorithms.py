"""Algorithm tables and allow-list checks shared by JWS, JWE and key selection.

One table per family says which key type and curve an algorithm needs; the checks
refuse ``none`` and RSA1_5 whatever a caller lists (JOSE-01, ASVS 11.3.1) and any
``crit`` or unencoded payload (JOSE-04).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final, Literal, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from ...errors import (
    ConfigError,
    InvalidInput,
)

# --- algorithm tables -------------------------------------------------------------------

_SHA = {256: hashes.SHA256(), 384: hashes.SHA384(), 512: hashes.SHA512()}


class _SigAlg(NamedTuple):
    family: Literal["RS", "PS", "ES", "Ed", "HS"]
    kty: str
    crvs: frozenset[str] | None  # None: any (RSA, oct)
    bits: int  # hash size; EC: also selects the curve


_SIG_ALGS: Final[dict[str, _SigAlg]] = {
    **{f"RS{n}": _SigAlg("RS", "RSA", None, n) for n in (256, 384, 512)},
    **{f"PS{n}": _SigAlg("PS", "RSA", None, n) for n in (256, 384, 512)},
    "ES256": _SigAlg("ES", "EC", frozenset({"P-256"}), 256),
    "ES384": _SigAlg("ES", "EC", frozenset({"P-384"}), 384),
    "ES512": _SigAlg("ES", "EC", frozenset({"P-521"}), 512),
    # RFC 8037 "EdDSA" and the fully specified RFC 9864 "Ed25519".
    "EdDSA": _SigAlg("Ed", "OKP", frozenset({"Ed25519"}), 0),
    "Ed25519": _SigAlg("Ed", "OKP", frozenset({"Ed25519"}), 0),
    **{f"HS{n}": _SigAlg("HS", "oct", None, n) for n in (256, 384, 512)},
}

_PSS = {
    n: padding.PSS(mgf=padding.MGF1(_SHA[n]), salt_length=_SHA[n].digest_size)
    for n in (256, 384, 512)
}
_PKCS1 = padding.PKCS1v15()
_ECDSA = {n: ec.ECDSA(_SHA[n]) for n in (256, 384, 512)}
_EC_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}

_ECDH_CRVS: Final = frozenset({"P-256", "P-384", "P-521", "X25519"})
_JWE_ALG_KTY: Final[dict[str, tuple[str, ...]]] = {
    "RSA-OAEP": ("RSA",),
    "RSA-OAEP-256": ("RSA",),
    "ECDH-ES": ("EC", "OKP"),
    "ECDH-ES+A128KW": ("EC", "OKP"),
    "ECDH-ES+A192KW": ("EC", "OKP"),
    "ECDH-ES+A256KW": ("EC", "OKP"),
    # Only when a caller lists them explicitly (JOSE-06):
    "dir": ("oct",),
    "A128KW": ("oct",),
    "A192KW": ("oct",),
    "A256KW": ("oct",),
    "A128GCMKW": ("oct",),
    "A192GCMKW": ("oct",),
    "A256GCMKW": ("oct",),
    "PBES2-HS256+A128KW": ("oct",),
    "PBES2-HS384+A192KW": ("oct",),
    "PBES2-HS512+A256KW": ("oct",),
}
_JWE_ENCS: Final = frozenset(
    {"A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM"}
)
#: Never accepted, whatever the caller lists (ASVS 11.3.1, Appendix C: PKCS#1 v1.5
#: key transport is a padding oracle; JOSE-01: "none").
_NEVER: Final = frozenset({"none", "rsa1_5"})

_EC_CRVS: Final = frozenset({"P-256", "P-384", "P-521"})
_OKP_CRVS: Final = frozenset({"Ed25519", "X25519"})
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SIG_OPS: Final = frozenset({"sign", "verify"})
_ENC_OPS: Final = frozenset(
    {"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}
)


def _allowed(algorithms: Collection[str] | str, what: str) -> Collection[str]:
    if isinstance(algorithms, str) or not algorithms:
        # A bare string would turn "RS256" into {"R", "S", ...}; an empty list means
        # the caller forgot the allow-list. Both are programming errors.
        raise ConfigError(f"{what} must be a non-empty collection of names", code="alg_list")
    return algorithms


def _check_alg(alg: Any, allowed: Collection[str], table: Mapping[str, Any]) -> str:
    if not isinstance(alg, str):
        raise InvalidInput("token header has no valid alg", code="bad_header")
    # JOSE-01: "none" in any spelling is refused even when listed.
    if alg.lower() in _NEVER:
        raise InvalidInput("token algorithm is refused", code="alg_refused")
    if alg not in allowed or alg not in table:
        raise InvalidInput("token algorithm is not allowed", code="alg_not_allowed")
    return alg


def _check_common_header(header: Mapping[str, Any]) -> str | None:
    # JOSE-04: we implement no extension, so any crit is unsupported (RFC 7515
    # §4.1.11); unencoded payloads (RFC 7797) are never accepted.
    if "crit" in header:
        raise InvalidInput("token declares critical extensions", code="crit_unsupported")
    if "b64" in header and header["b64"] is not True:
        raise InvalidInput("unencoded payloads are not accepted", code="b64_unsupported")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidInput("token kid is not a string", code="bad_header")
    return kid
