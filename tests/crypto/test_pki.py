"""The one certificate path validator, :func:`authbroker.crypto.pki.verify_chain`.

A small test PKI is generated with :mod:`cryptography` (P-256 keys unless a case needs
another); real repaired Finnish card certificates come from ``tests/data/web-eid``.
Every rejection asserts the exact error class and code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authbroker.crypto import pki
from authbroker.crypto.pki import paths
from authbroker.errors import ConfigError, InvalidInput, UntrustedCertificate

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DATA = Path(__file__).parents[1] / "data" / "web-eid"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue(
    cn: str,
    issuer: Issued | None = None,
    *,
    ca: bool = True,
    basic_constraints: bool = True,
    path_len: int | None = None,
    key_cert_sign: bool | None = None,
    key_usage: bool = True,
    not_before: datetime = NOW - 30 * DAY,
    not_after: datetime = NOW + 365 * DAY,
    key: PrivateKey | None = None,
    signing_key: PrivateKey | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    rsa_padding: padding.PSS | None = None,
    algorithm: hashes.SHA224 | hashes.SHA256 | None = None,
) -> Issued:
    """A certificate for ``cn`` issued by ``issuer`` (self-signed when None); key usage
    keyCertSign follows ``ca`` unless given."""
    key = key or _p256()
    issuer_name = issuer.cert.subject if issuer else _name(cn)
    signer = signing_key or (issuer.key if issuer else key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca if key_cert_sign is None else key_cert_sign,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True
        )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    if algorithm is None and not isinstance(signer, ed25519.Ed25519PrivateKey):
        algorithm = hashes.SHA256()
    return Issued(builder.sign(signer, algorithm, rsa_padding=rsa_padding), key)


@pytest.fixture(scope="module")
def root() -> Issued:
    return issue("Test Root CA")


@pytest.fixture(scope="module")
def inter(root: Issued) -> Issued:
    return issue("Test Issuing CA", root)


@pytest.fixture(scope="module")
def leaf(inter: Issued) -> Issued:
    return issue("Test User", inter, ca=False)


def rejected(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime = NOW,
    **kwargs: int,
) -> str:
    with pytest.raises(UntrustedCertificate) as err:
        pki.verify_chain(cert, intermediates, anchors, at, **kwargs)
    assert type(err.value) is UntrustedCertificate
    return err.value.code


# --- good paths -------------------------------------------------------------------------


def test_path_via_intermediate_to_root(root: Issued, inter: Issued, leaf: Issued) -> None:
    path = pki.verify_chain(leaf.cert, [inter.cert], [root.cert], NOW)
    assert path == [leaf.cert, inter.cert, root.cert]


def test_anchor_is_an_intermediate_ca(root: Issued, inter: Issued, leaf: Issued) -> None:
    # The configured issuing CA is trusted as is; its own issuer is never needed.
    assert pki.verify_chain(leaf.cert, [], [inter.cert], NOW) == [leaf.cert, inter.cert]
    # Also when a token carries more of the chain than needed.
    path = pki.verify_chain(leaf.cert, [inter.cert, root.cert], [inter.cert], NOW)
    assert path == [leaf.cert, inter.cert]


def test_expired_unrelated_anchor_is_ignored(root: Issued, inter: Issued, leaf: Issued) -> None:
    old = issue("Old Unrelated CA", not_before=NOW - 900 * DAY, not_after=NOW - 400 * DAY)
    expired_same_name = issue("Test Root CA", not_after=NOW - DAY)  # other key, same name
    anchors = [old.cert, expired_same_name.cert, root.cert]
    path = pki.verify_chain(leaf.cert, [inter.cert], anchors, NOW)
    assert path == [leaf.cert, inter.cert, root.cert]


def test_eddsa_and_rsa_pss_paths(root: Issued) -> None:
    ed_ca = issue("Ed CA", root, key=ed25519.Ed25519PrivateKey.generate())
    ed_leaf = issue("Ed User", ed_ca, ca=False)
    assert pki.verify_chain(ed_leaf.cert, [ed_ca.cert], [root.cert], NOW)[1] == ed_ca.cert

    rsa_ca = issue("RSA CA", root, key=rsa.generate_private_key(65537, 2048))
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    pss_leaf = issue("PSS User", rsa_ca, ca=False, rsa_padding=pss)
    assert pki.verify_chain(pss_leaf.cert, [rsa_ca.cert], [root.cert], NOW)[1] == rsa_ca.cert


def test_path_len_constraint_respected_at_its_limit(root: Issued) -> None:
    ca = issue("Zero CA", root, path_len=0)
    user = issue("User", ca, ca=False)
    assert pki.verify_chain(user.cert, [ca.cert], [root.cert], NOW)[-1] == root.cert
    top = issue("One Root", path_len=1)
    mid = issue("One Mid", top)
    low = issue("One Low", mid, ca=False)
    assert len(pki.verify_chain(low.cert, [mid.cert], [top.cert], NOW)) == 3


def test_repaired_finnish_card_certificate_verifies_over_the_signed_bytes() -> None:
    constants = json.loads((DATA / "token_constants.json").read_text())
    token = json.loads(
        constants[
            "AuthTokenCertificateFinnishIdCardTest.java:"
            "FINNISH_TEST_ID_CARD_BACKMAN_JUHANI_AUTH_TOKEN"
        ]
    )
    der = base64.b64decode(token["unverifiedCertificate"])
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(der)  # not DER: needs pki's repair
    cert = pki.parse_der_certificate(der)
    dvv = pki.load_certificates((DATA / "DVV_TEST_Certificates_-_G5E.crt").read_bytes())
    vrk = pki.load_certificates((DATA / "VRK_TEST_CA_for_Test_Purposes_-_G4.crt").read_bytes())
    at = datetime(2024, 12, 24, tzinfo=UTC)
    assert pki.verify_chain(cert, [], [*vrk, *dvv], at) == [cert, dvv[0]]
    assert rejected(cert, [], vrk, at) == "untrusted_issuer"


# --- parsing: the two Finnish-card slips and nothing else --------------------------------

_ECDSA_SHA256_NULL = bytes.fromhex("300c06082a8648ce3d0403020500")  # explicit NULL params


def _slipped(
    user: Issued, ca: Issued, *, null_params: bool = True, critical_false: bool = False
) -> bytes:
    """``user`` re-signed by ``ca`` with the Finnish cards' slips (basicConstraints
    "cA FALSE", and with ``null_params`` a NULL in both ecdsa AlgorithmIdentifiers)
    and, with ``critical_false``, one more non-DER encoding: "critical FALSE"."""
    cert = asn1_x509.Certificate.load(user.cert.public_bytes(serialization.Encoding.DER))
    tbs = cert["tbs_certificate"]
    for ext in tbs["extensions"]:
        if ext["extn_id"].native == "basic_constraints":
            ext["extn_value"] = asn1_core.ParsableOctetString(bytes.fromhex("3003010100"))
    if critical_false:  # subjectKeyIdentifier, its DEFAULT "critical FALSE" encoded
        body = bytes.fromhex("0603551d0e010100") + asn1_core.OctetString(b"\x04\x01k").dump()
        tbs["extensions"].append(asn1_x509.Extension.load(bytes([0x30, len(body)]) + body))
    if null_params:
        tbs["signature"] = asn1_algos.SignedDigestAlgorithm.load(_ECDSA_SHA256_NULL)
        cert["signature_algorithm"] = asn1_algos.SignedDigestAlgorithm.load(_ECDSA_SHA256_NULL)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    cert["signature_value"] = ca.key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    return bytes(cert.dump())


def test_finnish_slips_repaired_and_verified_over_the_signed_bytes(
    root: Issued, inter: Issued
) -> None:
    user = issue("User", inter, ca=False)
    for null_params in (True, False):
        der = _slipped(user, inter, null_params=null_params)
        cert = pki.parse_der_certificate(der)
        assert cert.tbs_certificate_bytes == user.cert.tbs_certificate_bytes
        assert pki.verify_chain(cert, [inter.cert], [root.cert], NOW)[1] == inter.cert
    # The original bytes, signed by another key under the CA's name.
    cert = pki.parse_der_certificate(_slipped(user, Issued(inter.cert, _p256())))
    assert rejected(cert, [inter.cert], [root.cert]) == "untrusted_issuer"


def _refused(der: bytes) -> None:
    with pytest.raises(InvalidInput) as err:
        pki.parse_der_certificate(der)
    assert type(err.value) is InvalidInput and err.value.code == "cert_decode"


def test_a_third_slip_is_refused(inter: Issued) -> None:
    # Next to the two: a DEFAULT "critical FALSE" (X.690 11.5), also not DER.
    _refused(_slipped(issue("User", inter, ca=False), inter, critical_false=True))


def test_the_slips_with_a_non_minimal_length_are_refused(inter: Issued) -> None:
    der = _slipped(issue("User", inter, ca=False), inter)
    assert der[:2] == b"\x30\x82"  # a two-byte length; X.690 10.1 wants the fewest
    _refused(b"\x30\x83\x00" + der[2:])


def test_undecodable_or_strictly_parsed_slips_are_refused(inter: Issued) -> None:
    der = _slipped(issue("User", inter, ca=False), inter)
    _refused(der + b"\x00")
    _refused(der[:-1])
    _refused(b"\x30\x00")
    with pytest.raises(InvalidInput):
        pki.parse_der_certificate(der, lenient=False)


@pytest.mark.parametrize("version", [3, 7])
def test_bad_x509_version_is_invalid_input(inter: Issued, version: int) -> None:
    # Version ::= INTEGER { v1(0), v2(1), v3(2) } (RFC 5280 4.1.2.1).
    cert = asn1_x509.Certificate.load(
        issue("User", inter, ca=False).cert.public_bytes(serialization.Encoding.DER)
    )
    cert["tbs_certificate"]["version"] = version
    _refused(cert.dump())
    cert = asn1_x509.Certificate.load(_slipped(issue("User", inter, ca=False), inter))
    cert["tbs_certificate"]["version"] = version
    _refused(cert.dump())


def test_bad_version_in_configured_certificates_is_a_config_error(
    inter: Issued, tmp_path: Path
) -> None:
    cert = asn1_x509.Certificate.load(inter.cert.public_bytes(serialization.Encoding.DER))
    cert["tbs_certificate"]["version"] = 3
    with pytest.raises(InvalidInput) as err:
        pki.load_certificates(cert.dump())
    assert err.value.code == "cert_decode"
    (tmp_path / "ca.der").write_bytes(cert.dump())
    with pytest.raises(ConfigError) as config_err:
        pki.load_certificate_sources(["ca.der"], base_dirs=[tmp_path], key="k.anchors")
    assert config_err.value.key == "k.anchors"
    assert "ca.der" in str(config_err.value)


# --- the leaf ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (NOW - 31 * DAY, "cert_not_yet_valid"),
        (NOW + 366 * DAY, "cert_expired"),
    ],
)
def test_leaf_outside_validity(at: datetime, code: str) -> None:
    # The CAs are valid far longer: the leaf's own period decides.
    long_root = issue("Long Root", not_before=NOW - 900 * DAY, not_after=NOW + 900 * DAY)
    long_ca = issue("Long CA", long_root, not_before=NOW - 900 * DAY, not_after=NOW + 900 * DAY)
    user = issue("User", long_ca, ca=False)
    assert rejected(user.cert, [long_ca.cert], [long_root.cert], at) == code


def test_leaf_validity_is_checked_before_the_path(root: Issued) -> None:
    stranger = issue("Stranger CA")
    expired = issue("User", stranger, ca=False, not_after=NOW - DAY)
    assert rejected(expired.cert, [], [root.cert]) == "cert_expired"
    early = issue("User", stranger, ca=False, not_before=NOW + DAY)
    assert rejected(early.cert, [], [root.cert]) == "cert_not_yet_valid"


def test_no_anchors(leaf: Issued, inter: Issued) -> None:
    assert rejected(leaf.cert, [inter.cert], []) == "no_trust_anchors"


def test_leaf_with_unknown_critical_extension(inter: Issued, root: Issued) -> None:
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    user = issue("User", inter, ca=False, extensions=[(ext, True)])
    assert rejected(user.cert, [inter.cert], [root.cert]) == "cert_critical_extension"
    # The same extension marked non-critical may be ignored (RFC 5280 4.2).
    fine = issue("User", inter, ca=False, extensions=[(ext, False)])
    assert pki.verify_chain(fine.cert, [inter.cert], [root.cert], NOW)[-1] == root.cert


def test_leaf_with_weak_key(inter: Issued, root: Issued) -> None:
    weak = issue("User", inter, ca=False, key=rsa.generate_private_key(65537, 1024))
    assert rejected(weak.cert, [inter.cert], [root.cert]) == "cert_algorithm"
    k1 = issue("User", inter, ca=False, key=ec.generate_private_key(ec.SECP256K1()))
    assert rejected(k1.cert, [inter.cert], [root.cert]) == "cert_algorithm"


def test_leaf_signed_with_sha1() -> None:
    # A public Web eID vector signed sha1WithRSAEncryption (cryptography can no longer
    # create such certificates); its issuer's name is used for a stand-in anchor.
    constants = json.loads((DATA / "token_constants.json").read_text())
    der = base64.b64decode(constants["AuthTokenCertificateTest.java:MISSING_KEY_USAGE_CERT"])
    cert = pki.parse_der_certificate(der)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA1)
    at = cert.not_valid_before_utc + DAY
    assert rejected(cert, [], [issue("Any CA").cert], at) == "cert_algorithm"


# --- issuers on the path ------------------------------------------------------------------


def test_expired_intermediate_rejected(root: Issued) -> None:
    old = issue("Old CA", root, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    user = issue("User", old, ca=False, not_before=NOW - 10 * DAY)
    assert rejected(user.cert, [old.cert], [root.cert]) == "untrusted_issuer"


def test_expired_anchor_on_the_path_rejected() -> None:
    anchor = issue("Expired Issuing CA", not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    user = issue("User", anchor, ca=False, not_before=NOW - 10 * DAY)
    assert rejected(user.cert, [], [anchor.cert]) == "untrusted_issuer"


def test_intermediate_not_yet_valid_rejected(root: Issued) -> None:
    future = issue("Future CA", root, not_before=NOW + DAY)
    user = issue("User", future, ca=False)
    assert rejected(user.cert, [future.cert], [root.cert]) == "untrusted_issuer"


def test_non_ca_issuer_rejected(root: Issued) -> None:
    # basicConstraints cA FALSE decides even with keyCertSign set.
    not_ca = issue("Not A CA", root, ca=False, key_cert_sign=True)
    user = issue("User", not_ca, ca=False)
    assert rejected(user.cert, [not_ca.cert], [root.cert]) == "untrusted_issuer"
    # Also as a configured anchor.
    assert rejected(user.cert, [], [not_ca.cert]) == "untrusted_issuer"
    no_bc = issue("No BC CA", root, basic_constraints=False, key_usage=False)
    user2 = issue("User", no_bc, ca=False)
    assert rejected(user2.cert, [no_bc.cert], [root.cert]) == "untrusted_issuer"


def test_issuer_without_key_cert_sign_rejected(root: Issued) -> None:
    ca = issue("No KCS CA", root, key_cert_sign=False)
    user = issue("User", ca, ca=False)
    assert rejected(user.cert, [ca.cert], [root.cert]) == "untrusted_issuer"
    assert rejected(user.cert, [], [ca.cert]) == "untrusted_issuer"
    # Without a key usage extension, basicConstraints alone makes a CA (RFC 5280 4.2.1.3).
    bare = issue("Bare CA", root, key_usage=False)
    user2 = issue("User", bare, ca=False)
    assert pki.verify_chain(user2.cert, [bare.cert], [root.cert], NOW)[1] == bare.cert


def test_path_len_exceeded_rejected() -> None:
    top = issue("Zero Root", path_len=0)
    mid = issue("Zero Mid", top)
    low = issue("User", mid, ca=False)
    assert rejected(low.cert, [mid.cert], [top.cert]) == "untrusted_issuer"
    # An intermediate's own constraint counts too.
    top2 = issue("Root Two")
    a = issue("CA A", top2, path_len=0)
    b = issue("CA B", a)
    user = issue("User", b, ca=False)
    assert rejected(user.cert, [b.cert, a.cert], [top2.cert]) == "untrusted_issuer"


def test_wrong_signature_rejected(root: Issued, inter: Issued) -> None:
    # Right issuer name, wrong key: the leaf.
    forged = issue("User", inter, ca=False, signing_key=_p256())
    assert rejected(forged.cert, [inter.cert], [root.cert]) == "untrusted_issuer"
    assert rejected(forged.cert, [], [inter.cert]) == "untrusted_issuer"
    # ... and an intermediate claiming to be issued by the root.
    rogue = issue("Test Issuing CA", root, signing_key=_p256())
    user = issue("User", rogue, ca=False)
    assert rejected(user.cert, [rogue.cert], [root.cert]) == "untrusted_issuer"


def test_issuer_with_unprocessed_critical_extension_rejected(root: Issued) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), b"\x05")
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("example.fi")], excluded_subtrees=None
    )
    for ext in (unknown, constraints, x509.PolicyConstraints(0, None)):
        ca = issue("Constrained CA", root, extensions=[(ext, True)])
        user = issue("User", ca, ca=False)
        assert rejected(user.cert, [ca.cert], [root.cert]) == "untrusted_issuer"
        assert rejected(user.cert, [], [ca.cert]) == "untrusted_issuer"


def test_weak_signature_on_the_path_rejected(root: Issued, inter: Issued) -> None:
    # SHA-224 is below the floor (SHA-256/384/512 or EdDSA), like SHA-1.
    weakly_signed = issue("Weakly Signed CA", root, algorithm=hashes.SHA224())
    user = issue("User", weakly_signed, ca=False)
    assert rejected(user.cert, [weakly_signed.cert], [root.cert]) == "untrusted_issuer"
    # Trusted as an anchor, its own signature is never checked.
    assert pki.verify_chain(user.cert, [], [weakly_signed.cert], NOW)[1] == weakly_signed.cert
    weak_leaf = issue("User", inter, ca=False, algorithm=hashes.SHA224())
    assert rejected(weak_leaf.cert, [inter.cert], [root.cert]) == "cert_algorithm"


def test_issuer_with_weak_key_rejected(root: Issued) -> None:
    weak = issue("Weak CA", root, key=rsa.generate_private_key(65537, 1024))
    user = issue("User", weak, ca=False)
    assert rejected(user.cert, [weak.cert], [root.cert]) == "untrusted_issuer"
    assert rejected(user.cert, [], [weak.cert]) == "untrusted_issuer"


# --- untrusted intermediates, loops and bounds --------------------------------------------


def test_untrusted_intermediate_never_ends_a_path(root: Issued, inter: Issued) -> None:
    # A self-signed "root" from the token with the anchor's very name: not trusted.
    impostor = issue("Test Root CA")
    bad_inter = issue("Test Issuing CA", impostor)
    user = issue("User", bad_inter, ca=False)
    code = rejected(user.cert, [bad_inter.cert, impostor.cert], [root.cert])
    assert code == "untrusted_issuer"
    # The token's own issuing CA, however valid, is no anchor either.
    leaf = issue("User", inter, ca=False)
    assert rejected(leaf.cert, [inter.cert, root.cert], [issue("Other").cert]) == (
        "untrusted_issuer"
    )


def test_cross_signed_loop_terminates(monkeypatch: pytest.MonkeyPatch, root: Issued) -> None:
    key_a, key_b = _p256(), _p256()
    a_by_b = issue("Loop A", Issued(issue("Loop B", key=key_b).cert, key_b), key=key_a)
    b_by_a = issue("Loop B", Issued(a_by_b.cert, key_a), key=key_b)
    user = issue("User", Issued(a_by_b.cert, key_a), ca=False)
    intermediates = [a_by_b.cert, b_by_a.cert, user.cert, a_by_b.cert]
    calls = _count_signature_checks(monkeypatch)
    code = rejected(user.cert, intermediates, [root.cert], max_depth=50)
    assert code == "untrusted_issuer"
    # No certificate is used twice on a path: the loop is cut, not run to the bounds.
    assert calls() <= 4
    # Self-issued loop: a certificate that names itself as issuer.
    selfish = issue("Selfish CA")
    user2 = issue("User", selfish, ca=False)
    assert rejected(user2.cert, [selfish.cert], [root.cert]) == "untrusted_issuer"


def _count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    calls = 0
    original = pki.is_issued_by

    def counting(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        nonlocal calls
        calls += 1
        return original(cert, issuer)

    # verify_chain looks the function up in the module that defines it.
    monkeypatch.setattr(paths, "is_issued_by", counting)
    return lambda: calls


def _ladder(cas: int) -> tuple[list[Issued], Issued]:
    """A root and ``cas - 1`` intermediates below it, and a leaf: ``cas`` CAs above it."""
    chain = [issue("Ladder 0")]
    for i in range(1, cas):
        chain.append(issue(f"Ladder {i}", chain[-1]))
    return chain, issue("User", chain[-1], ca=False)


def test_depth_bound() -> None:
    chain, user = _ladder(3)
    intermediates = [c.cert for c in chain[1:]]
    path = pki.verify_chain(user.cert, intermediates, [chain[0].cert], NOW, max_depth=3)
    assert len(path) == 4
    assert rejected(user.cert, intermediates, [chain[0].cert], max_depth=2) == "untrusted_issuer"
    # The default bound.
    chain, user = _ladder(pki.MAX_CHAIN_DEPTH + 1)
    intermediates = [c.cert for c in chain[1:]]
    assert rejected(user.cert, intermediates, [chain[0].cert]) == "untrusted_issuer"
    path = pki.verify_chain(user.cert, intermediates, [chain[1].cert], NOW)
    assert len(path) == pki.MAX_CHAIN_DEPTH + 1


def test_signature_checks_are_bounded(
    monkeypatch: pytest.MonkeyPatch, root: Issued, inter: Issued, leaf: Issued
) -> None:
    decoys = [issue("Test Issuing CA", root, signing_key=_p256()).cert for _ in range(40)]
    calls = _count_signature_checks(monkeypatch)
    # The genuine CA comes after more decoys than the budget allows: fail closed.
    assert rejected(leaf.cert, [*decoys, inter.cert], [root.cert]) == "untrusted_issuer"
    assert calls() == pki.MAX_SIGNATURE_CHECKS
    few = decoys[: pki.MAX_SIGNATURE_CHECKS // 2]
    assert pki.verify_chain(leaf.cert, [*few, inter.cert], [root.cert], NOW)[1] == inter.cert


# --- OCSP: a delegated responder is a one-link path --------------------------------------

_OCSP_SIGNING = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
_NONCE = b"0123456789abcdef"


def _ocsp_answer(user: Issued, ca: Issued, responder: Issued) -> bytes:
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=user.cert,
            issuer=ca.cert,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + DAY,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
        .certificates([responder.cert])
        .add_extension(x509.OCSPNonce(_NONCE), critical=False)
        .sign(responder.key, hashes.SHA256())
    )
    return response.public_bytes(serialization.Encoding.DER)


def test_delegated_ocsp_responder_accepted(inter: Issued, leaf: Issued) -> None:
    responder = issue("OCSP", inter, ca=False, extensions=[_OCSP_SIGNING])
    der = _ocsp_answer(leaf, inter, responder)
    result = pki.verify_ocsp_response(der, leaf.cert, inter.cert, at=NOW, nonce=_NONCE)
    assert result.status == "good" and "OCSP" in result.responder


_UNKNOWN_CRITICAL = (
    x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.3"), b"\x05\x00"),
    True,
)


@pytest.mark.parametrize(
    "kind", ["no-eku", "expired", "other-ca", "sha224-signed", "unknown-critical", "ca-key"]
)
def test_unauthorized_ocsp_responder_refused(
    root: Issued, inter: Issued, leaf: Issued, kind: str
) -> None:
    # RFC 6960 4.2.2.2: issued by the CA itself, with id-kp-OCSPSigning, valid now;
    # and, as any certificate on a path, SHA-2 signed, no critical extension unprocessed.
    options: dict[str, object] = {"ca": False, "extensions": [_OCSP_SIGNING]}
    if kind == "no-eku":
        options["extensions"] = []
    elif kind == "expired":
        options["not_after"] = NOW - DAY
    elif kind == "sha224-signed":
        options["algorithm"] = hashes.SHA224()
    elif kind == "unknown-critical":
        options["extensions"] = [_OCSP_SIGNING, _UNKNOWN_CRITICAL]
    elif kind == "ca-key":  # signed by the CA's own issuer, not the CA
        options["signing_key"] = root.key
    ca = issue("Other CA") if kind == "other-ca" else inter
    responder = issue("OCSP", ca, **options)  # type: ignore[arg-type]
    der = _ocsp_answer(leaf, inter, responder)
    with pytest.raises(UntrustedCertificate) as err:
        pki.verify_ocsp_response(der, leaf.cert, inter.cert, at=NOW, nonce=_NONCE)
    assert err.value.code == "ocsp_responder"
