"""Start the BankID simulator on loopback with mutual TLS."""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
from pathlib import Path

from ....config import ProviderConfig, Settings
from ...registry import RunningSimulator
from ..server import LoopbackServer
from .api import BankIdSimulator
from .orders import API_PREFIX
from .pki import TestPki


class _Running:
    def __init__(self, server: LoopbackServer, folder: str) -> None:
        self.server = server
        self.folder = folder

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start(config: ProviderConfig, settings: Settings) -> RunningSimulator:
    """Start the simulator; the overrides point the adapter at it over mTLS."""
    pki = TestPki(config.name)
    folder = tempfile.mkdtemp(prefix="authbroker-bankid-se-")
    password = secrets.token_urlsafe(24)
    files = pki.write(Path(folder), password.encode())
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(files["server_cert"], files["server_key"])
    tls.load_verify_locations(files["ca_file"])
    tls.verify_mode = ssl.CERT_REQUIRED
    sim = BankIdSimulator(pki)
    auto_user = config.get("simulator_auto_user")
    if auto_user:
        sim.auto_user = str(auto_user)
    server = LoopbackServer(sim.handle, tls=tls).start()
    overrides = {
        "api_url": server.url + API_PREFIX,
        "cert_file": files["cert_file"],
        "key_file": files["key_file"],
        "key_password": password,
        "ca_file": files["ca_file"],
    }
    return RunningSimulator(
        overrides=overrides,
        server=_Running(server, folder),
        extra={
            "simulator": sim,
            "server": server,
            "users": sim.users,
            "files": files,
            "key_password": password,
        },
    )
