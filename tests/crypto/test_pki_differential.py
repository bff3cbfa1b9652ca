"""Differential tests: the project's path validator against cryptography's own.

Every certificate chain the tests use (the public Web eID vectors in
``tests/data/web-eid``, the Web eID and Mobiilivarmenne simulator hierarchies) and a
corpus of broken chains generated here at run time goes through both
:func:`authbroker.crypto.pki.verify_chain` and the stock ``cryptography`` client verifier
(:class:`cryptography.x509.verification.PolicyBuilder` with its CA/B Forum Web PKI
defaults). The verdicts must agree, or the case names a known difference from
:data:`DIFFERENCES`, which must be listed in docs/security-model.md ("Certificate
path validation"), and the difference must be exactly the documented one: the side
that refuses refuses for the documented reason (the reference's message, the
project's error code).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from authbroker.crypto import pki
from authbroker.errors import UntrustedCertificate
from authbroker.testing.simulators import mobiilivarmenne as mobiilivarmenne_sim
from authbroker.testing.simulators import testpki
from authbroker.testing.simulators.web_eid import WebEidSimulator

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DATA = Path(__file__).parents[1] / "data" / "web-eid"
DOCS = Path(__file__).parents[2] / "docs" / "security-model.md"

#: Known differences: which side accepts, and why the other side refuses (a
#: substring of cryptography's message, or the project's error code).
DIFFERENCES: dict[str, tuple[str, str]] = {
    # RFC 5280 profiles instead of the CA/B Forum Web PKI ones:
    "leaf-san": ("project", "2.5.29.17: Certificate is missing required extension"),
    "leaf-aki": ("project", "2.5.29.35: Certificate is missing required extension"),
    "eku-critical": ("project", "2.5.29.37: Certificate extension has incorrect criticality"),
    "leaf-eku": ("project", "required EKU not found"),
    # The first link, checked by pki itself:
    "repaired-encoding": ("project", "signature does not match"),
    "eddsa": ("project", "Forbidden public key algorithm"),
    # Stricter than cryptography:
    "leaf-key": ("reference", "cert_algorithm"),
    "name-constraints": ("reference", "untrusted_issuer"),
    "depth": ("reference", "untrusted_issuer"),
}

SignKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Case:
    name: str
    leaf: x509.Certificate
    intermediates: Sequence[x509.Certificate]
    anchors: Sequence[x509.Certificate]
    at: datetime = NOW
    difference: str | None = None
    max_depth: int = field(default=pki.MAX_CHAIN_DEPTH)


def project(case: Case) -> str | None:
    """None when the project accepts, else its error code."""
    try:
        path = pki.verify_chain(
            case.leaf, case.intermediates, case.anchors, case.at, max_depth=case.max_depth
        )
    except UntrustedCertificate as exc:
        return exc.code
    assert path[0] == case.leaf
    assert any(path[-1] == a for a in case.anchors)
    return None


def reference(case: Case) -> str | None:
    """None when cryptography's stock client verifier accepts, else its message."""
    verifier = PolicyBuilder().store(Store(list(case.anchors))).time(case.at)
    try:
        verifier.build_client_verifier().verify(case.leaf, list(case.intermediates))
    except VerificationError as exc:
        return str(exc)
    return None


def check(case: Case) -> None:
    ours, theirs = project(case), reference(case)
    if case.difference is None:
        assert (ours is None) == (theirs is None), (case.name, ours, theirs)
        return
    side, reason = DIFFERENCES[case.difference]
    if side == "project":
        assert ours is None, (case.name, ours)
        assert theirs is not None and reason in theirs, (case.name, theirs)
    else:
        assert theirs is None, (case.name, theirs)
        assert ours == reason, (case.name, ours)


# --- a Web-PKI-conformant generated hierarchy, and broken variants ----------------------


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: SignKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _sign(
    subject: x509.Name,
    key: SignKey,
    issuer: Ca | None,
    extensions: list[testpki.Extension],
    *,
    not_before: datetime,
    not_after: datetime,
    algorithm: hashes.HashAlgorithm | None,
    issuer_name: x509.Name | None = None,
    aki: bool = True,
) -> x509.Certificate:
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = builder.add_extension(ski, critical=False)
    if issuer is not None and aki:
        aki_value = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki_value, critical=False)
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    if algorithm is None and not isinstance(signer, ed25519.Ed25519PrivateKey):
        algorithm = hashes.SHA256()
    return builder.sign(signer, algorithm)


def make_ca(
    cn: str,
    issuer: Ca | None = None,
    *,
    ca: bool = True,
    path_len: int | None = None,
    key_cert_sign: bool = True,
    key: SignKey | None = None,
    extra: Sequence[testpki.Extension] = (),
    not_before: datetime = NOW - 300 * DAY,
    not_after: datetime = NOW + 3000 * DAY,
    algorithm: hashes.HashAlgorithm | None = None,
    issuer_key: SignKey | None = None,
) -> Ca:
    key = key or ec.generate_private_key(ec.SECP256R1())
    usage = testpki.key_usage(key_cert_sign=key_cert_sign, crl_sign=True)
    extensions = [testpki.basic_constraints(ca, path_len if ca else None), (usage, True)]
    signer = Ca(issuer.cert, issuer_key) if issuer and issuer_key else issuer
    cert = _sign(
        _name(cn),
        key,
        signer,
        [*extensions, *extra],
        not_before=not_before,
        not_after=not_after,
        algorithm=algorithm,
    )
    return Ca(cert, key)


def make_leaf(
    issuer: Ca,
    *,
    key: SignKey | None = None,
    san: bool = True,
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    extra: Sequence[testpki.Extension] = (),
    algorithm: hashes.HashAlgorithm | None = None,
    issuer_name: x509.Name | None = None,
    signer: SignKey | None = None,
    aki: bool = True,
) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    extensions: list[testpki.Extension] = [
        testpki.basic_constraints(False, critical=False),
        (testpki.key_usage(digital_signature=True), True),
    ]
    if san:
        name = x509.RFC822Name("test.user@example.fi")
        extensions.append((x509.SubjectAlternativeName([name]), False))
    if eku is not None:
        extensions.append((x509.ExtendedKeyUsage(list(eku)), False))
    return _sign(
        _name("TEST USER"),
        key,
        Ca(issuer.cert, signer or issuer.key),
        [*extensions, *extra],
        not_before=NOW - 10 * DAY,
        not_after=NOW + 700 * DAY,
        algorithm=algorithm,
        issuer_name=issuer_name,
        aki=aki,
    )


def repaired(cert: x509.Certificate, key: SignKey) -> x509.Certificate:
    """``cert`` with the Finnish cards' slips (a NULL in both ecdsa AlgorithmIdentifiers,
    basicConstraints "cA FALSE"), signed by ``key``, as pki parses it."""
    null_ecdsa = bytes.fromhex("300c06082a8648ce3d0403020500")
    asn1 = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = asn1["tbs_certificate"]
    for ext in tbs["extensions"]:
        if ext["extn_id"].native == "basic_constraints":
            ext["extn_value"] = asn1_core.ParsableOctetString(bytes.fromhex("3003010100"))
    tbs["signature"] = asn1_algos.SignedDigestAlgorithm.load(null_ecdsa)
    asn1["signature_algorithm"] = asn1_algos.SignedDigestAlgorithm.load(null_ecdsa)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    asn1["signature_value"] = key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    return pki.parse_der_certificate(asn1.dump())


def ladder(n: int) -> tuple[list[Ca], x509.Certificate]:
    """A root, ``n - 1`` intermediates under it and a leaf: ``n`` CAs above the leaf."""
    chain = [make_ca("Ladder 0")]
    for i in range(1, n):
        chain.append(make_ca(f"Ladder {i}", chain[-1]))
    return chain, make_leaf(chain[-1])


def generated_cases() -> list[Case]:
    root = make_ca("Root CA")
    inter = make_ca("Issuing CA", root)
    leaf = make_leaf(inter)
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    cases = [
        Case("good path", leaf, [inter.cert], [root.cert]),
        Case("anchor is the issuing CA", leaf, [], [inter.cert]),
        Case("token carries the root too", leaf, [inter.cert, root.cert], [inter.cert]),
        Case("no path: other anchor", leaf, [inter.cert], [make_ca("Other CA").cert]),
    ]
    expired_same = make_ca("Root CA", not_after=NOW - DAY, not_before=NOW - 900 * DAY)
    cases.append(
        Case("expired unrelated anchors", leaf, [inter.cert], [expired_same.cert, root.cert])
    )

    p384_root = make_ca(
        "2025 Root", key=ec.generate_private_key(ec.SECP384R1()), algorithm=hashes.SHA384()
    )
    p384_ca = make_ca(
        "2025 CA",
        p384_root,
        key=ec.generate_private_key(ec.SECP384R1()),
        algorithm=hashes.SHA384(),
        path_len=0,
    )
    p384_leaf = make_leaf(
        p384_ca, key=ec.generate_private_key(ec.SECP384R1()), algorithm=hashes.SHA384()
    )
    cases.append(Case("P-384 hierarchy (2025 style)", p384_leaf, [p384_ca.cert], [p384_root.cert]))
    rsa_ca = make_ca("RSA CA", root, key=rsa.generate_private_key(65537, 3072))
    cases.append(Case("RSA issuing CA", make_leaf(rsa_ca), [rsa_ca.cert], [root.cert]))

    # Wrong issuer: right name, wrong key (leaf, then intermediate).
    forged = make_leaf(inter, signer=ec.generate_private_key(ec.SECP256R1()))
    cases.append(Case("forged leaf signature", forged, [inter.cert], [root.cert]))
    rogue = make_ca("Issuing CA", root, issuer_key=ec.generate_private_key(ec.SECP256R1()))
    cases.append(Case("forged intermediate", make_leaf(rogue), [rogue.cert], [root.cert]))
    # Name mismatch: signed by the CA's key, naming another issuer.
    renamed = make_leaf(inter, issuer_name=_name("Some Other CA"))
    cases.append(Case("issuer name mismatch", renamed, [inter.cert], [root.cert]))

    old = make_ca("Old CA", root, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    cases.append(Case("expired intermediate", make_leaf(old), [old.cert], [root.cert]))
    cases.append(Case("expired anchor on the path", make_leaf(old), [], [old.cert]))
    future = make_ca("Future CA", root, not_before=NOW + DAY)
    cases.append(Case("intermediate not yet valid", make_leaf(future), [future.cert], [root.cert]))

    not_ca = make_ca("Not A CA", root, ca=False)
    cases.append(Case("CA:false intermediate", make_leaf(not_ca), [not_ca.cert], [root.cert]))
    cases.append(Case("CA:false anchor", make_leaf(not_ca), [], [not_ca.cert]))
    no_kcs = make_ca("No KCS CA", root, key_cert_sign=False)
    cases.append(
        Case("intermediate without keyCertSign", make_leaf(no_kcs), [no_kcs.cert], [root.cert])
    )

    zero = make_ca("Zero Root", path_len=0)
    mid = make_ca("Zero Mid", zero)
    cases.append(Case("pathLen exceeded at the root", make_leaf(mid), [mid.cert], [zero.cert]))
    a = make_ca("CA A", root, path_len=0)
    b = make_ca("CA B", a)
    cases.append(
        Case("pathLen exceeded at an intermediate", make_leaf(b), [b.cert, a.cert], [root.cert])
    )
    cases.append(Case("pathLen 0 respected", make_leaf(a), [a.cert], [root.cert]))

    crit_leaf = make_leaf(inter, extra=[(unknown, True)])
    cases.append(Case("unknown critical extension, leaf", crit_leaf, [inter.cert], [root.cert]))
    noncrit_leaf = make_leaf(inter, extra=[(unknown, False)])
    cases.append(
        Case("unknown non-critical extension, leaf", noncrit_leaf, [inter.cert], [root.cert])
    )
    crit_ca = make_ca("Critical CA", root, extra=[(unknown, True)])
    cases.append(
        Case("unknown critical extension, CA", make_leaf(crit_ca), [crit_ca.cert], [root.cert])
    )
    policy_ca = make_ca("Policy CA", root, extra=[(x509.PolicyConstraints(0, None), True)])
    cases.append(
        Case("critical policyConstraints, CA", make_leaf(policy_ca), [policy_ca.cert], [root.cert])
    )
    nc = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("example.fi")], excluded_subtrees=None
    )
    nc_ca = make_ca("NC CA", root, extra=[(nc, True)])
    cases.append(
        Case(
            "critical nameConstraints, CA",
            make_leaf(nc_ca),
            [nc_ca.cert],
            [root.cert],
            difference="name-constraints",
        )
    )

    server = make_leaf(inter, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    cases.append(
        Case("wrong EKU (serverAuth)", server, [inter.cert], [root.cert], difference="leaf-eku")
    )
    crit_eku = make_ca(
        "Critical EKU CA",
        root,
        extra=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), True)],
    )
    cases.append(
        Case(
            "critical EKU on the CA (ESTEID2018 style)",
            make_leaf(crit_eku),
            [crit_eku.cert],
            [root.cert],
            difference="eku-critical",
        )
    )
    cases.append(
        Case(
            "no subjectAltName (Belgian style)",
            make_leaf(inter, san=False),
            [inter.cert],
            [root.cert],
            difference="leaf-san",
        )
    )

    no_aki = make_leaf(inter, aki=False)
    cases.append(
        Case("no authorityKeyIdentifier", no_aki, [inter.cert], [root.cert], difference="leaf-aki")
    )
    weak_leaf = make_leaf(inter, key=rsa.generate_private_key(65537, 1024))
    cases.append(
        Case("RSA-1024 leaf key", weak_leaf, [inter.cert], [root.cert], difference="leaf-key")
    )
    k1_leaf = make_leaf(inter, key=ec.generate_private_key(ec.SECP256K1()))
    cases.append(
        Case("secp256k1 leaf key", k1_leaf, [inter.cert], [root.cert], difference="leaf-key")
    )
    weak_ca = make_ca("Weak CA", root, key=rsa.generate_private_key(65537, 1024))
    cases.append(Case("RSA-1024 intermediate", make_leaf(weak_ca), [weak_ca.cert], [root.cert]))
    cases.append(Case("RSA-1024 anchor", make_leaf(weak_ca), [], [weak_ca.cert]))
    sha224_leaf = make_leaf(inter, algorithm=hashes.SHA224())
    cases.append(Case("SHA-224 leaf signature", sha224_leaf, [inter.cert], [root.cert]))
    sha224_ca = make_ca("SHA-224 CA", root, algorithm=hashes.SHA224())
    cases.append(
        Case("SHA-224 intermediate signature", make_leaf(sha224_ca), [sha224_ca.cert], [root.cert])
    )
    cases.append(
        Case("SHA-224 signed anchor (never checked)", make_leaf(sha224_ca), [], [sha224_ca.cert])
    )

    ed_ca = make_ca("Ed CA", root, key=ed25519.Ed25519PrivateKey.generate())
    cases.append(
        Case("Ed25519 issuing CA", make_leaf(ed_ca), [ed_ca.cert], [root.cert], difference="eddsa")
    )
    ed_root = make_ca("Ed Root", key=ed25519.Ed25519PrivateKey.generate())
    ed_mid = make_ca("Ed Mid", ed_root)
    cases.append(
        Case("Ed25519 above the issuing CA", make_leaf(ed_mid), [ed_mid.cert], [ed_root.cert])
    )

    # The first link checked by pki (EdDSA): the issuing CA's own checks still hold,
    # and path lengths count on the whole path, not on the verifier's shorter one.
    zero_root = make_ca("Zero Ed Root", path_len=0)
    ed_low = make_ca("Ed Low CA", zero_root, key=ed25519.Ed25519PrivateKey.generate())
    ed_leaf = make_leaf(ed_low)
    cases.append(
        Case("Ed25519 CA under a pathLen 0 root", ed_leaf, [ed_low.cert], [zero_root.cert])
    )
    one_root = make_ca("One Ed Root", path_len=0)
    ed_ok = make_ca("Ed Ok CA", one_root, key=ed25519.Ed25519PrivateKey.generate(), path_len=0)
    cases.append(
        Case(
            "Ed25519 CA, pathLen 0 on it",
            make_leaf(ed_ok),
            [ed_ok.cert],
            [ed_ok.cert],
            difference="eddsa",
        )
    )
    # The first link checked by pki (the Finnish cards' two slips, generated): the
    # reference refuses each; pki only the broken ones, with path lengths counted whole.
    slipped = repaired(leaf, inter.key)
    for label, anchors in (("", [root.cert]), (", anchor is its CA", [inter.cert])):
        cases.append(
            Case(
                f"repaired leaf{label}",
                slipped,
                [inter.cert],
                anchors,
                difference="repaired-encoding",
            )
        )
    other_key = ec.generate_private_key(ec.SECP256R1())
    cases.append(Case("repaired leaf, other key", repaired(leaf, other_key), [], [inter.cert]))
    zero_top = make_ca("Zero Top", path_len=0)
    below_zero = make_ca("Below Zero CA", zero_top)
    deep = repaired(make_leaf(below_zero), below_zero.key)
    cases.append(
        Case("repaired leaf, pathLen 0 above its CA", deep, [below_zero.cert], [zero_top.cert])
    )
    ended = make_ca("Ended CA", root, not_before=NOW - 99 * DAY, not_after=NOW - DAY)
    late = repaired(make_leaf(ended), ended.key)
    cases.append(Case("repaired leaf, expired CA", late, [ended.cert], [root.cert]))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    for label, ed_bad in (
        ("CA:false", make_ca("Ed Not CA", ca=False, key=ed_key)),
        ("no keyCertSign", make_ca("Ed No KCS", key=ed_key, key_cert_sign=False)),
        ("expired", make_ca("Ed Old", key=ed_key, not_after=NOW - DAY, not_before=NOW - 99 * DAY)),
    ):
        cases.append(Case(f"Ed25519 anchor, {label}", make_leaf(ed_bad), [], [ed_bad.cert]))
    # Loops: cross-signed pair, and a self-issued CA that is not an anchor.
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    b_self = Ca(make_ca("Loop B", key=key_b).cert, key_b)
    a_by_b = make_ca("Loop A", b_self, key=key_a)
    b_by_a = make_ca("Loop B", Ca(a_by_b.cert, key_a), key=key_b)
    loop_leaf = make_leaf(Ca(a_by_b.cert, key_a))
    cases.append(
        Case("cross-signed loop", loop_leaf, [a_by_b.cert, b_by_a.cert, loop_leaf], [root.cert])
    )
    selfish = make_ca("Selfish CA")
    cases.append(
        Case(
            "self-signed intermediate, not trusted", make_leaf(selfish), [selfish.cert], [root.cert]
        )
    )
    impostor = make_ca("Root CA")
    bad_inter = make_ca("Issuing CA", impostor)
    cases.append(
        Case(
            "impostor root in the token",
            make_leaf(bad_inter),
            [bad_inter.cert, impostor.cert],
            [root.cert],
        )
    )

    # Oversized chains: beyond both bounds, and between them.
    chain, tall = ladder(10)
    cases.append(
        Case("oversized chain (10 CAs)", tall, [c.cert for c in chain[1:]], [chain[0].cert])
    )
    chain, seven = ladder(pki.MAX_CHAIN_DEPTH + 1)
    cases.append(
        Case(
            "7 CAs: above pki's bound only",
            seven,
            [c.cert for c in chain[1:]],
            [chain[0].cert],
            difference="depth",
        )
    )
    cases.append(
        Case("6 CAs: within both bounds", seven, [c.cert for c in chain[2:]], [chain[1].cert])
    )
    return cases


CASES = generated_cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_generated_chain(case: Case) -> None:
    check(case)


# --- the public Web eID vectors -----------------------------------------------------------


def _vector_anchors() -> list[x509.Certificate]:
    anchors: list[x509.Certificate] = []
    for path in sorted([*DATA.glob("*.cer"), *DATA.glob("*.crt")]):
        anchors.extend(pki.load_certificates(path.read_bytes()))
    return anchors


def _vector_leaf(name: str) -> x509.Certificate:
    value = json.loads((DATA / "token_constants.json").read_text())[name]
    der = value if not value.startswith("{") else json.loads(value)["unverifiedCertificate"]
    return pki.parse_der_certificate(base64.b64decode(der))


VECTORS: list[tuple[str, str | None]] = [
    ("AbstractTestWithValidator.java:VALID_AUTH_TOKEN", "eku-critical"),
    ("Certificates.java:JAAK_KRISTJAN_ESTEID2018_CERT", "eku-critical"),
    (
        "AuthTokenCertificateFinnishIdCardTest.java:FINNISH_TEST_ID_CARD_BACKMAN_JUHANI_AUTH_TOKEN",
        "repaired-encoding",
    ),
    (
        "AuthTokenCertificateFinnishIdCardTest.java:FINNISH_TEST_ID_CARD_BABAFO_VELI_AUTH_TOKEN",
        "repaired-encoding",
    ),
    ("AuthTokenCertificateBelgianIdCardTest.java:BELGIAN_TEST_ID_CARD_AUTH_TOKEN_ECC", "leaf-san"),
    ("AuthTokenCertificateBelgianIdCardTest.java:BELGIAN_TEST_ID_CARD_AUTH_TOKEN_RSA", "leaf-san"),
    # Refused by both: SHA-1, unknown issuers, an anchor with GeneralizedTime before
    # 2050 (TEST of ESTEID-SK 2015, RFC 5280 4.1.2.5), a forged signature.
    ("AuthTokenCertificateTest.java:MISSING_KEY_USAGE_CERT", None),
    ("AuthTokenCertificateTest.java:WRONG_PURPOSE_CERT", None),
    ("AuthTokenCertificateTest.java:OLD_MOBILE_ID_CERT", None),
    ("AuthTokenCertificateTest.java:EXPIRED_RSA_CERT", None),
    ("Certificates.java:MARILIIS_ESTEID2015_CERT", None),
    ("Certificates.java:ORGANIZATION_CERT", None),
]


@pytest.mark.parametrize(("name", "difference"), VECTORS, ids=[v[0].split(":")[1] for v in VECTORS])
def test_web_eid_vector(name: str, difference: str | None) -> None:
    leaf = _vector_leaf(name)
    at = leaf.not_valid_before_utc + 2 * DAY
    check(Case(name, leaf, [], _vector_anchors(), at, difference))


# --- the simulators' hierarchies ---------------------------------------------------------


def test_web_eid_simulator_cards() -> None:
    sim = WebEidSimulator("http://127.0.0.1:1/ocsp", now=NOW.timestamp)
    assert sim.cards
    for card in sim.cards.values():
        # Critical EKU on the card (as on Estonian cards) and no subjectAltName.
        anchor = sim.hierarchies[card.hierarchy].ca_cert  # 2018- or 2025-style CA
        check(Case(card.personal_code, card.certificate, [], [anchor], difference="eku-critical"))
    plain = sim.issue_card("38001085718", eku=None, register=False)
    check(Case("card without EKU", plain.certificate, [], [sim.ca_cert], difference="leaf-san"))
    other = WebEidSimulator("http://127.0.0.1:1/ocsp", now=NOW.timestamp)
    check(Case("card from another simulator CA", plain.certificate, [], [other.ca_cert]))


def test_mobiilivarmenne_simulator_certificates() -> None:
    sim = mobiilivarmenne_sim.TestPki()
    at = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name("TESTI, MOBIILI")
    good = sim.issue(subject, key)
    check(Case("signer", good, [], [sim.ca], at, difference="leaf-san"))
    check(Case("rogue CA signer", sim.issue(subject, key, rogue=True), [], [sim.ca], at))
    check(Case("expired signer", sim.issue(subject, key, expired=True), [], [sim.ca], at))


def test_every_difference_is_documented_and_used() -> None:
    text = DOCS.read_text()
    section = text[text.index("## Certificate path validation") :]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE))
    assert listed == set(DIFFERENCES)
    used = {c.difference for c in CASES} | {d for _, d in VECTORS}
    assert set(DIFFERENCES) <= used
