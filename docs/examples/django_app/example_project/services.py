"""The broker and the direct links of the example (``AUTHBROKER["SERVICES"]``).

Every provider runs on its simulator (:func:`authbroker.testing.simulated_broker`);
SMS codes go to :data:`OUTBOX` instead of a gateway. ``EXAMPLE_BASE_URL`` says where
the app is reachable (the simulators send the browser back there).
"""

from __future__ import annotations

import os
from typing import Any

from authbroker.config import load_config
from authbroker.engines.links import DirectLinks
from authbroker.sms.outbox import OutboxSender
from authbroker.testing import simulated_broker

OUTBOX = OutboxSender()
STATE: dict[str, Any] = {}


def make_services() -> dict[str, Any]:
    base_url = os.environ.get("EXAMPLE_BASE_URL", "http://testserver")
    settings = load_config(environment="simulator", overrides={"broker": {"base_url": base_url}})
    broker = simulated_broker(settings)
    links = DirectLinks(
        broker.store,
        OUTBOX,
        secret_keys=settings.secret_keys,
        base_url=settings.base_url,
        link_path=settings.route_prefix + "/link",
        service_name="Example",
    )
    STATE.update(broker=broker, links=links)
    return {"broker": broker, "links": links}
