"""HTTP drivers: retries only where safe, size caps, timeouts and mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authbroker.errors import InvalidInput, ProviderUnavailable
from authbroker.http import (
    MAX_RESPONSE_BYTES,
    AsyncDriver,
    HttpRequest,
    HttpResponse,
    MtlsConfig,
    SyncDriver,
)
from authbroker.testing.simulators.server import LoopbackServer, SimRequest, SimResponse


def echo(req: SimRequest) -> SimResponse:
    if req.path == "/big":
        return SimResponse(200, b"x" * (MAX_RESPONSE_BYTES + 10))
    if req.path == "/cert":
        subject = dict(x[0] for x in req.client_cert["subject"]) if req.client_cert else {}
        return SimResponse.json({"cn": subject.get("commonName")})
    return SimResponse.json({"method": req.method, "body": req.body.decode(), "path": req.path})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sync_roundtrip_and_json() -> None:
    with LoopbackServer(echo) as srv:
        driver = SyncDriver()
        resp = driver.send(HttpRequest.post_json(srv.url + "/x", {"a": 1}))
        assert resp.status == 200
        assert resp.json_object() == {"method": "POST", "body": '{"a":1}', "path": "/x"}
        assert resp.content_type == "application/json"
        driver.close()


async def test_async_roundtrip_form() -> None:
    with LoopbackServer(echo) as srv:
        driver = AsyncDriver()
        resp = await driver.send(HttpRequest.post_form(srv.url + "/f", {"a": "b c"}))
        assert resp.json_object()["body"] == "a=b+c"
        await driver.aclose()


def test_response_size_cap_sync() -> None:
    with LoopbackServer(echo) as srv:
        with pytest.raises(InvalidInput) as err:
            SyncDriver().send(HttpRequest.get(srv.url + "/big"))
        assert err.value.code == "response_too_large"


async def test_response_size_cap_async() -> None:
    with LoopbackServer(echo) as srv, pytest.raises(InvalidInput):
        await AsyncDriver().send(HttpRequest.get(srv.url + "/big"))


def test_json_errors_are_typed() -> None:
    with pytest.raises(InvalidInput):
        HttpResponse(200, {}, b"{not json").json()
    with pytest.raises(InvalidInput):
        HttpResponse(200, {}, b"[1]").json_object()
    with pytest.raises(InvalidInput):
        HttpResponse(200, {}, b"\xff\xfe").json()


def test_connect_failure_retries_get_but_not_post(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    driver = SyncDriver(retries=2, backoff=0.0)
    calls: list[str] = []
    original = driver._client

    def counting(req: HttpRequest):  # type: ignore[no-untyped-def]
        calls.append(req.method)
        return original(req)

    monkeypatch.setattr(driver, "_client", counting)
    with pytest.raises(ProviderUnavailable) as err:
        driver.send(HttpRequest.get(f"http://127.0.0.1:{port}/", tag="discovery"))
    assert calls == ["GET"] * 3
    assert "discovery" in str(err.value)
    calls.clear()
    with pytest.raises(ProviderUnavailable):
        driver.send(HttpRequest.post_json(f"http://127.0.0.1:{port}/", {}))
    assert calls == ["POST"]


def test_request_repr_hides_query_and_body() -> None:
    req = HttpRequest.post_form("https://idp/token?code=SECRET", {"client_secret": "S3CR3T"})
    assert "SECRET" not in repr(req) and "S3CR3T" not in repr(req)


# --- mutual TLS -------------------------------------------------------------------


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None
) -> str:
    data = cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data = (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + data
        )
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test CA", ca_key, None, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("Other CA", other_key, None, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("127.0.0.1", srv_key, (ca.subject, ca_key), server=True)
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("rp-client", cli_key, (ca.subject, ca_key))
    return {
        "ca": _write(d / "ca.pem", ca),
        "other_ca": _write(d / "other.pem", other_ca),
        "server": _write(d / "server.pem", srv, srv_key),
        "client": _write(d / "client.pem", cli, cli_key),
    }


def _server_ctx(pki: dict[str, str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_mtls_success_and_client_identity(pki: dict[str, str]) -> None:
    with LoopbackServer(echo, tls=_server_ctx(pki)) as srv:
        mtls = MtlsConfig(cert_file=pki["client"], ca_file=pki["ca"])
        resp = SyncDriver().send(HttpRequest.get(srv.url + "/cert", mtls=mtls))
        assert resp.json_object() == {"cn": "rp-client"}


async def test_mtls_async(pki: dict[str, str]) -> None:
    with LoopbackServer(echo, tls=_server_ctx(pki)) as srv:
        mtls = MtlsConfig(cert_file=pki["client"], ca_file=pki["ca"])
        resp = await AsyncDriver().send(HttpRequest.get(srv.url + "/cert", mtls=mtls))
        assert resp.json_object() == {"cn": "rp-client"}


def test_mtls_server_not_from_pinned_ca_refused(pki: dict[str, str]) -> None:
    with LoopbackServer(echo, tls=_server_ctx(pki)) as srv:
        mtls = MtlsConfig(cert_file=pki["client"], ca_file=pki["other_ca"])
        with pytest.raises(ProviderUnavailable):
            SyncDriver(retries=0).send(HttpRequest.get(srv.url + "/cert", mtls=mtls))


def test_mtls_without_client_cert_refused(pki: dict[str, str]) -> None:
    with LoopbackServer(echo, tls=_server_ctx(pki)) as srv:
        mtls = MtlsConfig(ca_file=pki["ca"])
        with pytest.raises(ProviderUnavailable):
            SyncDriver(retries=0).send(HttpRequest.get(srv.url + "/cert", mtls=mtls))
        assert srv.requests["/cert"] == 0


def test_mtls_config_repr_hides_password() -> None:
    assert "pw" not in repr(MtlsConfig(cert_file="c", key_password="pw"))
