"""Swedish BankID, natively: the Relying Party API v6.0 over mutual TLS.

Facts below come from BankID's Relying Party API v6.0 documentation (https://developers.bankid.com/,
with the OpenAPI file openapi-auth-sign-6.1.9.yaml). Section marks below name its topics:
§1.1 environments and mutual TLS, §1.2 endpoints, §1.3 request fields, §1.4 error
responses, §1.5 collect states and hint codes, §1.6 recommended user messages (RFA),
§1.7 completion data, §1.8 timing, §1.9 animated QR, §1.10 autostart.

* Every call is a JSON ``POST`` to ``<api_url>/<path>`` with the RP client
  certificate, and the server must chain to BankID's issuer CA pinned for the
  environment, never to the system trust store (§1.1, security requirement SEB-01).
* ``begin`` starts an order: ``/auth`` or ``/sign`` (the user is on another device
  and scans an animated QR code, or on this device and the app is launched through
  the autostart link), or ``/phone/auth`` / ``/phone/sign`` when the RP and the user
  are on a phone call (§1.2, §1.3). It answers a :class:`~authbroker.flow.Poll`.
* ``advance`` calls ``/collect`` every 2 s (§1.8); pending states become localized
  messages (RFA codes, :mod:`.messages`), failed states typed errors,
  ``complete`` the :class:`~authbroker.identity.Identity`.
* ``refresh`` recomputes the animated QR payload once a second from the
  ``qrStartSecret`` kept in the server-side flow data; the secret itself never
  reaches a browser (§1.9, SEB-03).
* ``abandon`` calls ``/cancel``; an order still pending when the flow's deadline
  passes is cancelled by the next poll (SEB-05).

Same-device relay (SEB-04, 2024 session-fixation research): an attacker who starts
a flow can forward its autostart link to a victim; if the victim completes the
order, whoever polls the flow would be logged in. The broker already binds each flow
to the browser that began it. On top of that a same-device order carries a
``returnUrl`` (§1.3) holding the flow id and a fresh 256-bit nonce; the nonce is sent
only to BankID (never to the browser), and the app opens that URL in the device's
browser when the user is done. A completed same-device order is *held* until
``advance`` receives that nonce from the browser bound to the flow, so neither the
attacker's polling browser (no nonce) nor the victim's browser (no flow cookie)
gets a session. QR flows expose no autostart link, same-device flows no QR code.

Modules: :mod:`.protocol` (QR codes, launch URLs, answers), :mod:`.messages`
(RFA user messages) and :mod:`.provider` (the adapter). Import the public
names from this package.
"""

from __future__ import annotations

from .protocol import (
    CARD_READERS,
    COLLECT_INTERVAL,
    DESKTOP_LAUNCH_BASE,
    MAX_AUTH_VISIBLE,
    MAX_DEVICE_FIELD,
    MAX_NON_VISIBLE,
    MAX_RETURN_URL,
    MAX_SIGN_VISIBLE,
    MAX_USER_AGENT,
    MOBILE_LAUNCH_BASE,
    QR_START_WINDOW,
    TEST_RP_CERT_FILE,
    TEST_RP_CERT_PASSWORD,
    api_error,
    autostart_url,
    escape_simple_markdown,
    is_mobile_device,
    parse_collect,
    qr_auth_code,
    qr_payload,
    qr_seconds,
    qr_svg,
)
from .provider import CONFIG_OPTIONS, BankIdSe, from_config

__all__ = [
    "CARD_READERS",
    "COLLECT_INTERVAL",
    "CONFIG_OPTIONS",
    "DESKTOP_LAUNCH_BASE",
    "MAX_AUTH_VISIBLE",
    "MAX_DEVICE_FIELD",
    "MAX_NON_VISIBLE",
    "MAX_RETURN_URL",
    "MAX_SIGN_VISIBLE",
    "MAX_USER_AGENT",
    "MOBILE_LAUNCH_BASE",
    "QR_START_WINDOW",
    "TEST_RP_CERT_FILE",
    "TEST_RP_CERT_PASSWORD",
    "BankIdSe",
    "api_error",
    "autostart_url",
    "escape_simple_markdown",
    "from_config",
    "is_mobile_device",
    "parse_collect",
    "qr_auth_code",
    "qr_payload",
    "qr_seconds",
    "qr_svg",
]
