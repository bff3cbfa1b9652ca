"""Configuration validation and provider health checks (CLI ``providers``, ``check-config``).

Operators meet most failures here first: an expired pinned CA, a discovery document
that moved, a secret missing from the environment. Each finding names the exact
configuration key, so the fix is obvious without reading code.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from .config import ProviderConfig, Settings
from .errors import AuthBrokerError, ConfigError

__all__ = ["Check", "Problem", "check_provider", "validate_settings"]

#: Certificates expiring sooner than this are reported as a failing check.
EXPIRY_WARNING = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    message: str


#: Options whose values are certificates (files, inline PEM or package references).
CERTIFICATE_OPTIONS = (
    "ca_file",
    "cert_file",
    "client_cert",
    "trust_anchors",
    "trusted_ca_certificates",
    "ocsp_designated_certificate",
)
#: Answers that prove an endpoint exists although a bare GET is not how it is used:
#: POST-only APIs (BankID, MSSPs) answer 405, protected ones 401/403. 404 and every
#: 5xx fail the check: a moved or broken endpoint is exactly what an operator must see.
REACHABLE = frozenset({401, 403, 405})


def _endpoints(cfg: ProviderConfig) -> Iterable[tuple[str, str]]:
    for key, value in cfg.options.items():
        if key == "issuer":
            continue
        if (
            isinstance(value, str)
            and value.startswith(("http://", "https://"))
            and (key.endswith(("_url", "_uri", "endpoint")) or key in ("base_url", "url"))
        ):
            yield key, value


def _certificates(cfg: ProviderConfig) -> Iterable[tuple[str, object]]:
    for key in CERTIFICATE_OPTIONS:
        value = cfg.options.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.strip():
                yield key, item


def _load_certificates(cfg: ProviderConfig, key: str, item: object) -> list[x509.Certificate]:
    from .config import builtin_profiles_dir
    from .crypto.pki import load_certificate_sources

    dirs = [Path(str(cfg.options["profile_dir"]))] if "profile_dir" in cfg.options else []
    return load_certificate_sources([item], base_dirs=[*dirs, builtin_profiles_dir()], key=key)


def _check_certs(cfg: ProviderConfig, key: str, item: object, now: dt.datetime) -> list[Check]:
    try:
        certs = _load_certificates(cfg, key, item)
    except ConfigError as exc:
        return [Check(f"certificate {key}", False, exc.reason)]
    out: list[Check] = []
    for cert in certs:
        expires = cert.not_valid_after_utc
        cn = cert.subject.rfc4514_string()
        if now > expires or now < cert.not_valid_before_utc:
            out.append(
                Check(f"certificate {cn}", False, f"not valid now (expires {expires:%Y-%m-%d})")
            )
        elif expires - now < EXPIRY_WARNING:
            out.append(Check(f"certificate {cn}", False, f"expires soon: {expires:%Y-%m-%d}"))
        else:
            out.append(Check(f"certificate {cn}", True, f"valid until {expires:%Y-%m-%d}"))
    return out


def _tls(cfg: ProviderConfig) -> ssl.SSLContext | bool:
    """The provider's own TLS settings (pinned CA, client certificate) where it has
    them: a BankID or MSSP endpoint refuses a connection without the RP certificate."""
    from .http import MtlsConfig

    ca = cfg.options.get("ca_file")
    cert = cfg.options.get("cert_file") or cfg.options.get("client_cert")
    if not isinstance(ca, str) and not isinstance(cert, str):
        return True
    key = cfg.options.get("key_file") or cfg.options.get("client_key")
    password = cfg.options.get("key_password")
    env = cfg.options.get("key_password_env")
    if isinstance(env, str):
        password = os.environ.get(env)
    try:
        return MtlsConfig(
            cert_file=cert if isinstance(cert, str) else None,
            key_file=key if isinstance(key, str) else None,
            key_password=password if isinstance(password, str) else None,
            ca_file=ca if isinstance(ca, str) else None,
        ).ssl_context()
    except (OSError, ssl.SSLError):
        return True  # reported by the certificate checks below


def _get(client: httpx.Client, name: str, url: str) -> tuple[Check, httpx.Response | None]:
    try:
        resp = client.get(url)
    except httpx.HTTPError as exc:
        return Check(name, False, f"unreachable ({type(exc).__name__})"), None
    ok = 200 <= resp.status_code < 400 or resp.status_code in REACHABLE
    return Check(name, ok, f"HTTP {resp.status_code}"), resp


def _check_bankid_api(client: httpx.Client, api_url: str) -> Check:
    """BankID's RP API has no GET resource: a ``/collect`` of an unknown order proves
    the mTLS handshake (our certificate, the pinned CA) and the API itself, which
    answers 400 with an ``errorCode`` (RP API v6.0, "Errors")."""
    try:
        resp = client.post(
            api_url.rstrip("/") + "/collect",
            json={"orderRef": "00000000-0000-4000-8000-000000000000"},
        )
    except httpx.HTTPError as exc:
        return Check("api_url", False, f"unreachable ({type(exc).__name__})")
    try:
        code = resp.json().get("errorCode") if resp.status_code == 400 else None
    except (ValueError, AttributeError):
        code = None
    if code:
        return Check("api_url", True, f"mTLS accepted, API answers ({code})")
    return Check("api_url", False, f"HTTP {resp.status_code}")


def _check_discovery(client: httpx.Client, cfg: ProviderConfig) -> list[Check]:
    """Discovery answers 200 with the configured issuer, and its JWKS has public keys."""
    issuer = str(cfg.options["issuer"])
    url = str(cfg.options.get("discovery_url") or "")
    url = url or issuer.rstrip("/") + "/.well-known/openid-configuration"
    check, resp = _get(client, "discovery", url)
    if resp is None or resp.status_code != 200:
        return [Check("discovery", False, check.detail)]
    try:
        meta = resp.json()
    except ValueError:
        return [Check("discovery", False, "not JSON")]
    if not isinstance(meta, dict) or meta.get("issuer") != issuer:
        return [Check("discovery", False, "issuer differs from the configured one")]
    checks = [Check("discovery", True, "HTTP 200, issuer matches")]
    jwks_uri = meta.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        return [*checks, Check("jwks", False, "discovery names no jwks_uri")]
    check, resp = _get(client, "jwks", jwks_uri)
    if resp is None or resp.status_code != 200:
        return [*checks, Check("jwks", False, check.detail)]
    try:
        keys = resp.json().get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list) or not keys:
        return [*checks, Check("jwks", False, "no keys")]
    private = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
    if any(isinstance(k, dict) and private & set(k) for k in keys):
        return [*checks, Check("jwks", False, "contains private key members")]
    return [*checks, Check("jwks", True, f"{len(keys)} public keys")]


def check_provider(cfg: ProviderConfig, *, timeout: float = 5.0) -> list[Check]:
    """What an operator needs to trust before a deploy: discovery (issuer equal to the
    configured one) and its JWKS, every configured endpoint answering (404 and 5xx
    fail), and every configured certificate (files, inline PEM, package references)
    valid for longer than :data:`EXPIRY_WARNING`."""
    checks: list[Check] = []
    seen: set[str] = set()
    with httpx.Client(timeout=timeout, follow_redirects=False, verify=_tls(cfg)) as client:
        if isinstance(cfg.options.get("issuer"), str):
            checks += _check_discovery(client, cfg)
        if cfg.protocol == "bankid-se" and isinstance(cfg.options.get("api_url"), str):
            checks.append(_check_bankid_api(client, str(cfg.options["api_url"])))
            seen.add(str(cfg.options["api_url"]))
        for name, url in _endpoints(cfg):
            if url in seen or name == "discovery_url":
                continue
            seen.add(url)
            checks.append(_get(client, name, url)[0])
    now = dt.datetime.now(dt.UTC)
    for key, item in _certificates(cfg):
        checks.extend(_check_certs(cfg, key, item, now))
    return checks


def validate_settings(settings: Settings) -> list[Problem]:
    """Every problem a configuration has, each with its exact key."""
    from .providers.registry import create_provider

    problems: list[Problem] = []
    if settings.environment != "simulator" and not settings.base_url.startswith("https://"):
        problems.append(Problem("broker.base_url", "must be https outside the simulator"))
    if not settings.providers:
        problems.append(Problem("providers", "no provider is enabled"))
    for name, cfg in settings.providers.items():
        if cfg.environment == "simulator":
            continue  # endpoints and keys come from the simulator at start
        try:
            create_provider(cfg, settings)
        except ConfigError as exc:
            problems.append(Problem(exc.key or f"providers.{name}", exc.reason))
        except AuthBrokerError as exc:
            problems.append(Problem(f"providers.{name}", str(exc)))
    return problems
