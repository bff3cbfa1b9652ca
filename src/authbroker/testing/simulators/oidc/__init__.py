"""A configurable OpenID Provider on loopback, for every OIDC profile.

The simulator is a real, strict peer (DESIGN principle 1): it publishes discovery
metadata and a JWKS, validates authorization requests (exact ``redirect_uri``,
PKCE S256 only, signed request objects per RFC 9101 with the checks of security
requirements OIDC-13/X-28, pushed requests per RFC 9126 with single-use
``request_uri``), authenticates the client at the token endpoint
(``client_secret_basic`` or ``private_key_jwt`` with single-use ``jti``), issues
one-time authorization codes (a replayed code is refused and revokes the tokens
issued from it), signs (and, per profile, encrypts) ID tokens and serves UserInfo
as JSON, a signed JWT or a nested JWE.

It reads the same provider config as the RP (``profile``, ``client_auth``,
``request_object``, ``par``, ``id_token_encrypted``, ``userinfo``...), so the two
sides always agree, and it generates the RP's keys and client secret on the fly
(returned in ``overrides``).

Tests reach :class:`OpControl` through ``RunningSimulator.extra["control"]``:
``auto_approve`` picks a test person without the consent page, ``deny`` answers
with an error, and ``misbehave(...)`` switches on the mutations listed in
:data:`MISBEHAVIOURS` (both the legacy ``rp-*`` and the current
``oidcc-client-test-*`` variants of the OpenID Foundation conformance suite).
``extra["requests"]`` counts requests per endpoint (``count("token")``).

The package splits the simulator by concern: ``persons`` (test persons), ``published``
(each real OP's published algorithms), ``keys``, ``control`` (misbehaviours and
:class:`OpControl`), ``core``/``tokens``/``rp_requests``/``consent``/``logout``/``provider`` (the
layers of :class:`OpenIdProviderSim`, each on top of the previous one).
"""

from .control import MISBEHAVIOURS, OpControl
from .logout import LOGOUT_MISBEHAVIOURS
from .persons import PERSONS, TestPerson
from .provider import OpenIdProviderSim, start
from .published import PUBLISHED, Published

__all__ = [
    "LOGOUT_MISBEHAVIOURS",
    "MISBEHAVIOURS",
    "PERSONS",
    "PUBLISHED",
    "OpControl",
    "OpenIdProviderSim",
    "Published",
    "TestPerson",
    "start",
]
