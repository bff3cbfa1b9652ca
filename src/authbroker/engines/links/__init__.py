"""Personal direct links with SMS one-time codes: limited-scope access without strong
login (docs/direct-links.md).

:class:`LinkEngine` holds the rules, one routine per operation; :class:`DirectLinks`
and :class:`AsyncDirectLinks` run them blocking or with asyncio. Modules by concern:
:mod:`.tokens` (link tokens, derived keys), :mod:`.records` (store layout),
:mod:`.limits`, :mod:`.sending` (send caps, the SMS), :mod:`.engine`,
:mod:`.facades`, :mod:`.options` (the ``[links]`` table).
"""

from .engine import DEFAULT_REGIONS, LinkEngine, SendVeto
from .facades import AsyncDirectLinks, DirectLinks
from .limits import LinkLimits
from .options import CONFIG_SECTION, links_options
from .records import link_live_gen, user_ref
from .tokens import LINK_SALT
from .values import IssuedLink, LinkGrant, OtpChallenge

__all__ = [
    "CONFIG_SECTION",
    "DEFAULT_REGIONS",
    "LINK_SALT",
    "AsyncDirectLinks",
    "DirectLinks",
    "IssuedLink",
    "LinkEngine",
    "LinkGrant",
    "LinkLimits",
    "OtpChallenge",
    "SendVeto",
    "link_live_gen",
    "links_options",
    "user_ref",
]
