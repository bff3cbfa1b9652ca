"""Parsing untrusted DER certificates, repairing two encoding slips of real eID cards.

The Finnish DVV/VRK ID-card certificates (public Web eID test vectors) are not valid
DER: one carries an explicit NULL in its ecdsa-with-SHA384 AlgorithmIdentifier, the
other encodes basicConstraints "cA FALSE". :func:`parse_der_certificate` re-encodes
them and remembers the *original* signed tbsCertificate, over which
:func:`authbroker.crypto.pki.paths.is_issued_by` then verifies the issuer's signature,
so a repair can never alter what the CA signed.
"""

from __future__ import annotations

import threading

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

from ...errors import InvalidInput

__all__ = ["parse_der_certificate"]


def parse_der_certificate(der: bytes, *, lenient: bool = True) -> x509.Certificate:
    """Parse untrusted DER (from a token); malformed input is :class:`InvalidInput`.

    With ``lenient`` (the default), two encoding slips that real national eID cards
    carry and that strict DER parsers refuse are repaired (see :func:`_normalize`);
    the issuer's signature is then still verified over the *original* bytes, so
    the repair cannot be abused to alter a certificate.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = cert.extensions, cert.subject, cert.issuer
        return cert
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        if not lenient:
            raise InvalidInput("certificate cannot be decoded", code="cert_decode") from exc
        error = exc
    fixed = _normalize(der)
    if fixed is None:
        raise InvalidInput("certificate cannot be decoded", code="cert_decode") from error
    normalized, original_tbs = fixed
    try:
        cert = x509.load_der_x509_certificate(normalized)
        _ = cert.extensions, cert.subject, cert.issuer
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise InvalidInput("certificate cannot be decoded", code="cert_decode") from exc
    with _ORIGINAL_TBS_LOCK:
        while len(_ORIGINAL_TBS) >= _ORIGINAL_TBS_MAX:
            _ORIGINAL_TBS.pop(next(iter(_ORIGINAL_TBS)))
        _ORIGINAL_TBS[cert.fingerprint(hashes.SHA256())] = original_tbs
    return cert


# Certificates repaired by _normalize: fingerprint of the repaired DER -> the signed
# (original) tbsCertificate bytes. Public data; bounded.
_ORIGINAL_TBS: dict[bytes, bytes] = {}
_ORIGINAL_TBS_MAX = 1024
_ORIGINAL_TBS_LOCK = threading.Lock()

_ECDSA_SIG_OID_PREFIX = bytes.fromhex("06082a8648ce3d0403")  # ecdsa-with-SHA2 family
_BASIC_CONSTRAINTS_OID = bytes.fromhex("0603551d13")
_FALSE_DEFAULT = bytes.fromhex("010100")


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tags are not expected here")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 3 or pos + n > end:
            raise ValueError("bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise ValueError("truncated")
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[bytes]:
    out: list[bytes] = []
    pos = start
    while pos < end:
        _, _, cend = _tlv(buf, pos, end)
        out.append(buf[pos:cend])
        pos = cend
    return out


def _encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _fix_algid(element: bytes) -> bytes:
    # ecdsa-with-SHA* AlgorithmIdentifier must omit parameters (RFC 5758 3.2); some
    # card CAs (Finnish DVV test CA) encode an explicit NULL.
    tag, s, e = _tlv(element, 0, len(element))
    kids = _children(element, s, e)
    if (
        tag == 0x30
        and len(kids) == 2
        and kids[0].startswith(_ECDSA_SIG_OID_PREFIX)
        and kids[1] == b"\x05\x00"
    ):
        return _encode(0x30, kids[0])
    return element


def _fix_extension(element: bytes) -> bytes:
    # DER forbids encoding DEFAULT values (X.690 11.5): "critical FALSE" and the
    # basicConstraints "cA FALSE" seen on Finnish ID cards are dropped.
    _, s, e = _tlv(element, 0, len(element))
    kids = _children(element, s, e)
    kids = [k for i, k in enumerate(kids) if not (i == 1 and k == _FALSE_DEFAULT)]
    if kids and kids[0] == _BASIC_CONSTRAINTS_OID and kids[-1][0] == 0x04:
        _, vs, ve = _tlv(kids[-1], 0, len(kids[-1]))
        value = kids[-1][vs:ve]
        _, bs, be = _tlv(value, 0, len(value))
        inner = [k for k in _children(value, bs, be) if k != _FALSE_DEFAULT]
        kids[-1] = _encode(0x04, _encode(0x30, b"".join(inner)))
    return _encode(0x30, b"".join(kids))


def _normalize(der: bytes) -> tuple[bytes, bytes] | None:
    """Re-encode the DER-rule slips above; (repaired DER, original tbs) or None."""
    try:
        tag, s, e = _tlv(der, 0, len(der))
        if tag != 0x30 or e != len(der):
            return None
        tbs, algid, signature = _children(der, s, e)
        ttag, ts, te = _tlv(tbs, 0, len(tbs))
        if ttag != 0x30:
            return None
        parts = _children(tbs, ts, te)
        new_parts: list[bytes] = []
        for i, part in enumerate(parts):
            sig_index = 2 if parts[0][0] == 0xA0 else 1
            if i == sig_index:
                new_parts.append(_fix_algid(part))
            elif part[0] == 0xA3:
                _, xs, xe = _tlv(part, 0, len(part))
                seq = _children(part, xs, xe)[0]
                _, qs, qe = _tlv(seq, 0, len(seq))
                exts = [_fix_extension(x) for x in _children(seq, qs, qe)]
                new_parts.append(_encode(0xA3, _encode(0x30, b"".join(exts))))
            else:
                new_parts.append(part)
        new_tbs = _encode(0x30, b"".join(new_parts))
        fixed = _encode(0x30, new_tbs + _fix_algid(algid) + signature)
    except (ValueError, IndexError):
        return None
    if fixed == der:
        return None
    return fixed, tbs


def _original_tbs(cert: x509.Certificate) -> bytes | None:
    """The signed tbsCertificate of a certificate :func:`parse_der_certificate` repaired."""
    with _ORIGINAL_TBS_LOCK:
        return _ORIGINAL_TBS.get(cert.fingerprint(hashes.SHA256()))
