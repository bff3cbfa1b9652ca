"""Deprecated import path: direct links moved to :mod:`authbroker.engines.links`.

Kept for one minor release; import from ``authbroker.engines.links`` instead.
"""

import warnings

from .engines.links import (
    CONFIG_SECTION,
    LINK_SALT,
    AsyncDirectLinks,
    DirectLinks,
    IssuedLink,
    LinkGrant,
    LinkLimits,
    OtpChallenge,
    link_live_gen,
    links_options,
    user_ref,
)

warnings.warn(
    "authbroker.links moved to authbroker.engines.links", DeprecationWarning, stacklevel=2
)

__all__ = [
    "CONFIG_SECTION",
    "LINK_SALT",
    "AsyncDirectLinks",
    "DirectLinks",
    "IssuedLink",
    "LinkGrant",
    "LinkLimits",
    "OtpChallenge",
    "link_live_gen",
    "links_options",
    "user_ref",
]
