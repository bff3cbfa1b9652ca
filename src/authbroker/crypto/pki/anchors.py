"""Loading certificates and trust anchors: PEM/DER files, bundles, esteid-certificates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509

from ...errors import ConfigError, InvalidInput

__all__ = [
    "ESTEID_CERTIFICATES_PREFIX",
    "find_file",
    "load_certificate_sources",
    "load_certificates",
]

#: A configuration value ``"esteid-certificates:<name>"`` names an Estonian CA
#: certificate shipped by the ``esteid-certificates`` package (ISC licence,
#: https://github.com/thorgate/esteid-certificates), which follows the issuers'
#: repositories (SK ID Solutions, Zetes): its copy is kept current instead of ours.
ESTEID_CERTIFICATES_PREFIX = "esteid-certificates:"


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, or the single certificate of a DER blob."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_certificates(raw)
        return [x509.load_der_x509_certificate(raw)]
    except (ValueError, x509.InvalidVersion) as exc:
        raise InvalidInput("not a certificate", code="cert_decode") from exc


def load_certificate_sources(
    sources: Iterable[object], *, base_dirs: Sequence[Path] = (), key: str = "certificates"
) -> list[x509.Certificate]:
    """Certificates from configuration values: inline PEM text, file paths (see
    :func:`find_file`; ``base_dirs`` the shipped profile folder first) or
    ``esteid-certificates:<name>``. Problems raise :class:`ConfigError` naming ``key``."""
    out: list[x509.Certificate] = []
    for item in sources:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise ConfigError("must be a PEM text or a certificate file path", key=key)
        if item.startswith(ESTEID_CERTIFICATES_PREFIX):
            data, what = _esteid_certificate(item[len(ESTEID_CERTIFICATES_PREFIX) :], key), item
        elif "-----BEGIN" in item:
            data, what = item.encode(), "an inline PEM certificate"
        elif (found := find_file(item, base_dirs)) is not None:
            data, what = found.read_bytes(), f"certificate file {found.name}"
        else:
            raise ConfigError(f"certificate file not found: {item}", key=key)
        try:
            out.extend(load_certificates(data))
        except InvalidInput:
            raise ConfigError(f"{what} is unreadable", key=key) from None
    return out


def find_file(item: str, base_dirs: Sequence[Path] = ()) -> Path | None:
    """``item`` if absolute, else the first ``base_dirs / item``, else ``item``
    relative to the working directory; None when no such file exists."""
    path = Path(item)
    candidates = [path] if path.is_absolute() else [d / path for d in base_dirs] + [path]
    return next((p for p in candidates if p.is_file()), None)


def _esteid_certificate(name: str, key: str) -> bytes:
    """The CA certificate ``name`` (e.g. ``ESTEID2025``, ``Test ESTEID2025``) from the
    ``esteid-certificates`` package; only the issuing CAs it registers by name."""
    import esteid_certificates

    try:
        return bytes(esteid_certificates.get_certificate(name))
    except esteid_certificates.UnknownCertificateError:
        raise ConfigError(
            f"esteid-certificates has no certificate named {name!r}", key=key
        ) from None
