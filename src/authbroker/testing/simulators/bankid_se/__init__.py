"""A Swedish BankID RP API v6.0 server on loopback, with mutual TLS.

It behaves like the real service as far as an adapter can observe
(BankID RP API v6.0, https://developers.bankid.com/; section marks as in
:mod:`authbroker.providers.bankid_se`): JSON ``POST`` only, the RP client
certificate is required in the TLS handshake and checked for access, requests are
validated field by field (``invalidParameters``), an order for a person who already
has one gives ``alreadyInProgress`` and supersedes the old order, orders not started
within 30 s fail with ``startFailed``, finished orders can be collected once.

The "user" side is scripted: :data:`TEST_USERS` maps a personnummer to names and the
states the order goes through once that user has picked it up (by scanning the
animated QR code, which is verified against the order's secret and time, through
the autostart token, or at once for phone orders). Each ``/collect`` moves one
state on. A completed order carries ``completionData`` with a real ECDSA signature
over an XML-like document (clearly labelled as simulated) and a real DER OCSP
response from a test responder, with the nonce recipe of §1.7.

Tests reach the :class:`BankIdSimulator` through ``RunningSimulator.extra["simulator"]``:
``scan``/``autostart`` pick an order up, ``inject`` queues a raw answer (errors,
malformed JSON), ``clock`` is replaceable, ``pending_orders`` lists what is left.

The package splits the simulator by concern: ``orders`` (test users, order records and
timings), ``validation`` (request field checks), ``pki`` (the RP, server and user test
certificates), ``api`` (the RP API state machine) and ``launch`` (:func:`start`).
"""

from .api import BankIdSimulator
from .launch import start
from .orders import (
    API_PREFIX,
    RP_COMMON_NAME,
    TEST_USERS,
    SimOrder,
    SimUser,
    render_simple_markdown,
)

__all__ = [
    "API_PREFIX",
    "RP_COMMON_NAME",
    "TEST_USERS",
    "BankIdSimulator",
    "SimOrder",
    "SimUser",
    "render_simple_markdown",
    "start",
]
