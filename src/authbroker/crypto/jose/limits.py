"""Size and strength limits of the JOSE boundary (JOSE-05, JOSE-12, JOSE-13).

Every check that bounds attacker-controlled work or key strength reads its number
here, so the limits a deployment runs with are all in one place.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_JWE_ALGORITHMS",
    "DEFAULT_JWE_ENCRYPTIONS",
    "MAX_HEADER_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NODES",
    "MAX_JWE_CHARS",
    "MAX_JWKS_BYTES",
    "MAX_JWKS_KEYS",
    "MAX_JWS_CHARS",
    "MAX_PBES2_COUNT",
    "MIN_OWN_RSA_BITS",
    "MIN_RSA_BITS",
]

# --- limits (JOSE-05 of docs/security-model.md) -------------------

#: Compact JWS larger than this is refused before decoding (JOSE-05, class C4).
MAX_JWS_CHARS: Final = 16 * 1024
#: Compact JWE larger than this is refused before decoding.
MAX_JWE_CHARS: Final = 64 * 1024
#: Encoded protected header larger than this is refused.
MAX_HEADER_CHARS: Final = 2 * 1024
#: Maximum nesting of JSON containers in a header or claims set.
MAX_JSON_DEPTH: Final = 16
#: Maximum number of JSON values (members + array items) in a header or claims set.
MAX_JSON_NODES: Final = 1000
#: Maximum number of keys a JWKS may hold (JOSE-12).
MAX_JWKS_KEYS: Final = 100
#: Maximum size of a JWKS document in bytes (JOSE-12).
MAX_JWKS_BYTES: Final = 256 * 1024
#: Minimum RSA modulus accepted from peers (JOSE-13, FAPI2 §5.4.1).
MIN_RSA_BITS: Final = 2048
#: Minimum RSA modulus of keys we generate ourselves (ASVS 11.2.3).
MIN_OWN_RSA_BITS: Final = 3072
#: PBES2 iteration cap (only if a caller enables PBES2 explicitly): attacker-chosen p2c
#: must not become a CPU amplifier.
MAX_PBES2_COUNT: Final = 10_000

#: JOSE-06 default JWE allow-lists.
DEFAULT_JWE_ALGORITHMS: Final = frozenset(
    {"RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"}
)
DEFAULT_JWE_ENCRYPTIONS: Final = frozenset({"A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"})
