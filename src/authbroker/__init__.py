"""authbroker: strong electronic identification for Nordic and Baltic web applications.

The short public API lives here; everything else is importable by module
(``authbroker.engines.links``, ``authbroker.engines.credentials``, ``authbroker.web.asgi``...).

    from authbroker import Broker, Done

    broker = Broker()          # authbroker.toml; tests: authbroker.testing.simulated_broker()
    step = broker.begin("ftn", return_to="/invoices", binding=browser_cookie)
    ...
    step = broker.advance(step.flow_id, callback_params, binding=browser_cookie)
    if isinstance(step, Done):
        identity = step.identity

Imports here are kept light: provider modules load only when a provider is used.
"""

from .config import Settings, load_config
from .engines.flows import AsyncBroker, Broker
from .errors import AuthBrokerError
from .identity import Identity, Loa, NationalId
from .steps import AutoPost, Challenge, Display, Done, Poll, Redirect, Step

__all__ = [
    "AsyncBroker",
    "AuthBrokerError",
    "AutoPost",
    "Broker",
    "Challenge",
    "Display",
    "Done",
    "Identity",
    "Loa",
    "NationalId",
    "Poll",
    "Redirect",
    "Settings",
    "Step",
    "load_config",
]

__version__ = "0.1.0.dev0"
