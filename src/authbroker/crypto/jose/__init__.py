"""JOSE boundary: keys, JWS/JWT verification, JWE decryption, JWKS caching.

This is the only package of authbroker that imports joserfc. Everything JOSE-shaped
that comes from outside (provider tokens, JWKS documents, encrypted ID tokens) enters
through here and leaves either as plain Python values or as an
:class:`~authbroker.errors.AuthBrokerError`; no joserfc, cryptography, binascii or
json exception escapes (development rules).

Design choices (requirements JOSE-01..JOSE-09 of docs/security-model.md):

* JWS signatures are verified here with ``cryptography`` on the public key object
  cached inside :class:`Key`, after our own strict parsing of the compact string.
  The raw string is checked (length, segment count, header size) before anything
  is decoded (JOSE-05), every segment is decoded as strict base64url (the decoder
  refuses any character outside the alphabet and non-canonical spellings), the
  header is parsed as strict JSON (no duplicate members, no NaN, bounded depth)
  and only then is a key chosen. That keeps the hot path close to a bare
  ``verify`` call and removes any library behaviour we do not control from
  signature checking.
* JWE decryption runs on ``cryptography`` directly as well (:mod:`.jwe_crypto`:
  RSA-OAEP, ECDH-ES, AES key wrap, CBC-HMAC and GCM per RFC 7518), after the same
  pre-checks; every failure after the header is one ``decrypt_failed``.
* joserfc is used for key import/export, thumbprints and JWE *encryption*
  (simulators and tests), with an explicit per-call algorithm registry.
* Trust never comes from the token: ``jwk``, ``jku``, ``x5u``, ``x5c``, ``x5t`` are
  never read (JOSE-03); ``crit`` and ``b64`` are refused (JOSE-04); ``zip`` is
  refused (JOSE-05).

Modules, by concern: :mod:`.limits` (size and strength limits), :mod:`.algorithms`
(algorithm tables, allow-list checks), :mod:`.codec` (strict base64url/JSON, header
cache), :mod:`.keys` (:class:`Key`, :class:`KeySet`), :mod:`.jws`, :mod:`.jwe`,
:mod:`.jwe_crypto` (JWE primitives) and
:mod:`.jwks` (:class:`JwksCache`). Import the public names from this package.
"""

from __future__ import annotations

from .jwe import decrypt_jwe, decrypt_nested, encrypt_jwe
from .jwks import JwksCache
from .jws import peek_header, sign_jwt, verify_jws, verify_jwt
from .keys import Key, KeyNotFound, KeySet
from .limits import (
    DEFAULT_JWE_ALGORITHMS,
    DEFAULT_JWE_ENCRYPTIONS,
    MAX_HEADER_CHARS,
    MAX_JSON_DEPTH,
    MAX_JSON_NODES,
    MAX_JWE_CHARS,
    MAX_JWKS_BYTES,
    MAX_JWKS_KEYS,
    MAX_JWS_CHARS,
    MAX_PBES2_COUNT,
    MIN_OWN_RSA_BITS,
    MIN_RSA_BITS,
)

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
    "JwksCache",
    "Key",
    "KeyNotFound",
    "KeySet",
    "decrypt_jwe",
    "decrypt_nested",
    "encrypt_jwe",
    "peek_header",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]
