"""What each real OpenID Provider publishes (algorithms, client authentication).

The simulator accepts exactly these sets, so a misconfigured RP fails against it as it
would against the real service (each entry cites its public source).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Published:
    """What the real OP of a profile publishes; the simulator accepts exactly this.

    The lists come from the provider's own documentation or metadata (``source``),
    never from the RP's configuration, so a misconfigured RP fails here as it would
    against the real service.
    """

    id_token_signing: tuple[str, ...]
    #: request_object_signing_alg_values_supported
    request_object_signing: tuple[str, ...]
    token_endpoint_auth_methods: tuple[str, ...]
    #: token_endpoint_auth_signing_alg_values_supported (private_key_jwt)
    token_endpoint_auth_signing: tuple[str, ...]
    #: id_token/userinfo_encryption_alg_values_supported and _enc_values_supported
    encryption_algs: tuple[str, ...]
    encryption_encs: tuple[str, ...]
    #: UserInfo JWT issued by a separate resource server (its base-URL path), or None.
    userinfo_server: str | None = None
    source: str = ""


#: Published algorithm sets per profile (docs/providers/oidc.md "Simulator fidelity").
PUBLISHED: Mapping[str, Published] = {
    # Telia Tunnistus: integration guide v2.35 §2.1.1, §2.4.2, §2.6 and client metadata /
    # entity statement (RS256 only for our JWTs; RSA-OAEP/RSA1_5/A128KW, no RSA-OAEP-256).
    "ftn": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256",),
        token_endpoint_auth_methods=("private_key_jwt",),
        token_endpoint_auth_signing=("RS256",),
        encryption_algs=("RSA-OAEP", "RSA1_5", "A128KW"),
        encryption_encs=("A128CBC-HS256", "A128GCM"),
        source="https://github.com/JarmoTelia/tunnistus",
    ),
    # TARA TechnicalSpecification v1.21: RS256 ID tokens, client_secret_basic/_post,
    # no request objects, no encryption.
    "tara": Published(
        id_token_signing=("RS256",),
        request_object_signing=(),
        token_endpoint_auth_methods=("client_secret_basic", "client_secret_post"),
        token_endpoint_auth_signing=(),
        encryption_algs=(),
        encryption_encs=(),
        source="https://e-gov.github.io/TARA-Doku/TechnicalSpecification",
    ),
    # Norwegian BankID: RS256 ID tokens (historic metadata); private_key_jwt on request
    # (algorithms unpublished: Keycloak's RS256/PS256/ES256 assumed); signed request
    # objects supported; encrypted ID tokens not documented; UserInfo from TINFO.
    "bankid-no": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256", "PS256", "ES256"),
        token_endpoint_auth_methods=(
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ),
        token_endpoint_auth_signing=("RS256", "PS256", "ES256"),
        encryption_algs=(),
        encryption_encs=(),
        userinfo_server="/tinfo",
        source="https://developer.bankid.no/bankid-oidc-provider/",
    ),
    # Idura: RS256 ID tokens; private_key_jwt RS256/ES256 (second-hand); JWE algorithms
    # unpublished (RSA-OAEP-256 / RSA-OAEP assumed, as a public Idura client uses).
    "broker-oidc": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256", "ES256"),
        token_endpoint_auth_methods=(
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ),
        token_endpoint_auth_signing=("RS256", "ES256"),
        encryption_algs=("RSA-OAEP-256", "RSA-OAEP"),
        encryption_encs=("A128CBC-HS256", "A256GCM", "A128GCM"),
        source="https://docs.idura.app/verify/e-ids/finnish-trust-network",
    ),
}

#: A profile-less OP (conformance tests): a generic, FAPI-style modern OP.
GENERIC = Published(
    id_token_signing=("RS256", "PS256", "ES256"),
    request_object_signing=("PS256", "ES256", "RS256"),
    token_endpoint_auth_methods=("client_secret_basic", "private_key_jwt"),
    token_endpoint_auth_signing=("PS256", "ES256", "RS256"),
    encryption_algs=("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A128KW", "ECDH-ES"),
    encryption_encs=("A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"),
)
