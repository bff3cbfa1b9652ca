"""Verification of CMS ``SignedData`` (RFC 5652) over a known content.

The Finnish Mobile ID (Mobiilivarmenne) returns the user's signature as a PKCS#7 /
CMS SignedData (FiCom guideline, MID §3.5); :mod:`cryptography` can build such
structures but not verify them, so this module parses the DER with ``asn1crypto``
and checks the signature with :mod:`cryptography` keys.

What :func:`verify_signed_data` enforces (security requirement MID-03):

* strict DER (the structure must re-encode to exactly the bytes received), a size cap;
* content type ``signedData``, encapsulated content type ``data``; attached content,
  if present, must be exactly the expected bytes;
* exactly one SignerInfo, digest algorithm on an allow-list (SHA-256 or stronger);
* signed attributes present, each attribute type once, with ``contentType`` = data
  and ``messageDigest`` = hash of the expected bytes (RFC 5652 §5.3, §11.1-11.2);
* the signature checked over the DER ``SET OF`` encoding of the signed attributes
  (RFC 5652 §5.4), with the key of the one certificate the signer identifier names.

The returned signer certificate is not trusted yet: :func:`verify_signer_certificate`
checks the signer profile (key usage) and has its path validated by
:func:`authbroker.crypto.pki.verify_chain`, the project's one path validator, against the
caller's trust anchors.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms as _cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..errors import InvalidInput, InvalidSignature, UntrustedCertificate
from . import pki

__all__ = [
    "ALLOWED_DIGESTS",
    "KEY_USAGES",
    "MAX_CMS_BYTES",
    "SignedDataResult",
    "verify_signed_data",
    "verify_signer_certificate",
]

#: Digest algorithms accepted for the message digest and the signature.
ALLOWED_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: A Mobile ID signature with its certificate chain is a few kilobytes.
MAX_CMS_BYTES = 64 * 1024

# Errors asn1crypto raises on malformed input (it has no exception hierarchy).
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    UnicodeError,
    NotImplementedError,
    RecursionError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    UnsupportedAlgorithm,
)


@dataclass(frozen=True, slots=True)
class SignedDataResult:
    """A signature that verified: who signed (certificate) and when (if stated)."""

    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]
    digest_algorithm: str
    signing_time: datetime | None


def _bad(message: str, code: str) -> InvalidInput:
    return InvalidInput(message, code=code)


def verify_signed_data(
    der: bytes,
    expected_content: bytes,
    *,
    allowed_digests: frozenset[str] = frozenset(ALLOWED_DIGESTS),
    strict_der: bool = True,
) -> SignedDataResult:
    """Verify ``der`` as a CMS SignedData by one signer over ``expected_content``.

    Raises :class:`InvalidInput` for malformed or unexpected structure and
    :class:`InvalidSignature` when a digest or the signature does not match.
    """
    if not isinstance(der, bytes) or not 0 < len(der) <= MAX_CMS_BYTES:
        raise _bad("CMS signature missing or too large", "cms_size")
    try:
        return _verify(der, expected_content, allowed_digests, strict_der)
    except _PARSE_ERRORS as exc:
        raise _bad("CMS signature cannot be parsed", "cms_malformed") from exc


def _verify(
    der: bytes, expected: bytes, allowed_digests: frozenset[str], strict_der: bool
) -> SignedDataResult:
    info = _cms.ContentInfo.load(der, strict=True)
    if strict_der and info.dump(force=True) != der:
        raise _bad("CMS signature is not DER encoded", "cms_not_der")
    if info["content_type"].native != "signed_data":
        raise _bad("CMS content is not SignedData", "cms_type")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "data":
        raise _bad("CMS encapsulated content is not data", "cms_type")
    attached = encap["content"].native if encap["content"] is not None else None
    if attached is not None and not hmac.compare_digest(bytes(attached), expected):
        raise InvalidSignature("CMS content differs from the challenge", code="cms_content")

    signer_infos = list(signed["signer_infos"])
    if len(signer_infos) != 1:
        raise _bad("CMS signature must have exactly one signer", "cms_signers")
    si = signer_infos[0]
    # RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    expected_version = "v1" if si["sid"].name == "issuer_and_serial_number" else "v3"
    if si["version"].native != expected_version:
        raise _bad("CMS SignerInfo version does not fit the signer id", "cms_version")
    if signed["version"].native != _signed_data_version(signed, expected_version):
        raise _bad("CMS SignedData version does not fit its content", "cms_version")

    digest_name = si["digest_algorithm"]["algorithm"].native
    if digest_name not in allowed_digests or digest_name not in ALLOWED_DIGESTS:
        raise _bad("CMS digest algorithm not allowed", "cms_digest_alg")
    declared = {a["algorithm"].native for a in signed["digest_algorithms"]}
    if digest_name not in declared:
        raise _bad("CMS digest algorithm not declared", "cms_digest_alg")
    hash_cls = ALLOWED_DIGESTS[digest_name]

    attrs = si["signed_attrs"]
    if attrs is None or len(attrs) == 0:
        # Without signed attributes nothing binds the content type (RFC 5652 §5.3):
        # a signature over bare content is refused.
        raise _bad("CMS signature has no signed attributes", "cms_no_attrs")
    values: dict[str, Any] = {}
    for attr in attrs:
        name = attr["type"].native
        if name in values:
            raise _bad("CMS signed attribute repeated", "cms_attrs")
        attr_values = list(attr["values"])
        if len(attr_values) != 1:
            raise _bad("CMS signed attribute must have one value", "cms_attrs")
        values[name] = attr_values[0]
    if "content_type" not in values or values["content_type"].native != "data":
        raise _bad("CMS content-type attribute missing or wrong", "cms_attrs")
    if "message_digest" not in values:
        raise _bad("CMS message-digest attribute missing", "cms_attrs")
    digest = hashlib.new(digest_name, expected).digest()
    if not hmac.compare_digest(bytes(values["message_digest"].native), digest):
        raise InvalidSignature("CMS message digest does not match the challenge", code="cms_digest")
    signing_time: datetime | None = None
    if "signing_time" in values:
        parsed = values["signing_time"].native
        if not isinstance(parsed, datetime):
            raise _bad("CMS signing time malformed", "cms_attrs")
        signing_time = parsed.astimezone(UTC)

    certificates = _certificates(signed)
    signer = _find_signer(si["sid"], certificates)

    # RFC 5652 §5.4: the signature covers the DER SET OF (tag 0x31), not the [0] tag.
    attrs_der = attrs.dump()
    signed_bytes = b"\x31" + attrs_der[1:]
    _check_signature(si, signer, signed_bytes, hash_cls)
    return SignedDataResult(
        signer=signer,
        certificates=tuple(certificates),
        digest_algorithm=digest_name,
        signing_time=signing_time,
    )


def _signed_data_version(signed: Any, signer_version: str) -> str:
    """The one version RFC 5652 §5.1 allows (eContentType is id-data here); the field
    is not signed, so any other value is a changed message, refused."""
    kinds = {c.name for c in signed["certificates"] or ()}
    kinds |= {c.name for c in signed["crls"] or ()}
    if "other" in kinds:
        return "v5"
    if "v2_attr_cert" in kinds:
        return "v4"
    return "v3" if "v1_attr_cert" in kinds or signer_version == "v3" else "v1"


def _certificates(signed: Any) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    choices = signed["certificates"]
    if choices is None:
        return out
    for choice in choices:
        if choice.name != "certificate":
            continue  # attribute/other certificate formats are never signers here
        try:
            cert = x509.load_der_x509_certificate(choice.chosen.dump())
            _ = cert.extensions, cert.issuer, cert.subject
            out.append(cert)
        except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
            raise _bad("CMS certificate cannot be parsed", "cms_cert") from exc
    if len(out) > 10:
        raise _bad("CMS carries too many certificates", "cms_cert")
    return out


def _find_signer(sid: Any, certificates: list[x509.Certificate]) -> x509.Certificate:
    """The one certificate the SignerIdentifier names (RFC 5652 §5.3)."""
    matches: list[x509.Certificate] = []
    if sid.name == "issuer_and_serial_number":
        issuer_der = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
        for cert in certificates:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer_der:
                matches.append(cert)
    elif sid.name == "subject_key_identifier":
        ski = bytes(sid.chosen.native)
        for cert in certificates:
            try:
                ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if hmac.compare_digest(ext.value.digest, ski):
                matches.append(cert)
    if len(matches) != 1:
        raise _bad("CMS signer certificate not found", "cms_signer_cert")
    return matches[0]


def _check_signature(
    si: Any, signer: x509.Certificate, data: bytes, hash_cls: type[hashes.HashAlgorithm]
) -> None:
    sig_alg = si["signature_algorithm"]
    algo = sig_alg.signature_algo
    try:
        named_hash = sig_alg.hash_algo
    except ValueError:
        named_hash = None  # plain rsaEncryption / id-ecPublicKey: digest alg applies
    if named_hash is not None and named_hash != si["digest_algorithm"]["algorithm"].native:
        raise _bad("CMS signature and digest algorithms disagree", "cms_sig_alg")
    signature = bytes(si["signature"].native)
    try:
        key = signer.public_key()
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_cls())
        elif algo == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = sig_alg["parameters"]
            if (
                params["hash_algorithm"]["algorithm"].native
                != si["digest_algorithm"]["algorithm"].native
            ):
                raise _bad("CMS PSS hash differs from the digest", "cms_sig_alg")
            key.verify(
                signature,
                data,
                padding.PSS(padding.MGF1(hash_cls()), int(params["salt_length"].native)),
                hash_cls(),
            )
        elif algo == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_cls()))
        else:
            raise _bad("CMS signature algorithm does not fit the key", "cms_sig_alg")
    except (_CryptoInvalidSignature, UnsupportedAlgorithm) as exc:
        raise InvalidSignature("CMS signature does not verify", code="cms_signature") from exc


# --- the signer's certificate -----------------------------------------------------------

#: Configuration names of key usage bits (RFC 5280 §4.2.1.3).
KEY_USAGES = frozenset({"digital_signature", "content_commitment", "non_repudiation"})


def verify_signer_certificate(
    cert: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    *,
    at: datetime,
    key_usage: frozenset[str] = frozenset({"digital_signature"}),
) -> list[x509.Certificate]:
    """Check the signer ``cert`` at ``at``: validity, the ``key_usage`` bits the
    signature profile needs, then a path to ``anchors`` through the (untrusted)
    ``intermediates`` by :func:`authbroker.crypto.pki.verify_chain` (only the configured
    anchors, never the system store). Returns the chain, leaf first.
    """
    pki.check_validity(cert, at)
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise UntrustedCertificate("certificate has no key usage", code="key_usage") from None
    except (ValueError, x509.DuplicateExtension) as exc:
        raise UntrustedCertificate("certificate extensions malformed", code="cert") from exc
    for bit in key_usage:
        attr = "content_commitment" if bit == "non_repudiation" else bit
        if not getattr(usage, attr, False):
            raise UntrustedCertificate("certificate key usage not allowed", code="key_usage")
    return pki.verify_chain(cert, intermediates, anchors, at)
