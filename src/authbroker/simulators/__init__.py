"""Deprecated: the simulators moved to :mod:`authbroker.testing.simulators`.

Kept for one minor release. ``import authbroker.simulators.oidc`` and friends still
work: each old submodule name is an alias of the moved module (the same objects).
"""

import importlib
import sys
import warnings

warnings.warn(
    "authbroker.simulators moved to authbroker.testing.simulators", DeprecationWarning, stacklevel=2
)

_SUBMODULES = (
    "autopilot",
    "bankid_se",
    "mobiilivarmenne",
    "oidc",
    "server",
    "sms_gateways",
    "testpki",
    "tupas",
    "web_eid",
)

for _name in _SUBMODULES:
    _module = importlib.import_module(f"authbroker.testing.simulators.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module
    globals()[_name] = _module
