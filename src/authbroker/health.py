"""Configuration validation and provider health checks (CLI ``providers``, ``check-config``).

Operators meet most failures here first: an expired pinned CA, a discovery document
that moved, a secret missing from the environment. Each finding names the exact
configuration key, so the fix is obvious without reading code.
"""

from __future__ import annotations

import datetime as dt
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


def _endpoints(cfg: ProviderConfig) -> Iterable[tuple[str, str]]:
    issuer = cfg.get("issuer")
    if isinstance(issuer, str) and issuer.startswith("http"):
        yield "discovery", issuer.rstrip("/") + "/.well-known/openid-configuration"
    for key, value in cfg.options.items():
        if (
            isinstance(value, str)
            and value.startswith(("http://", "https://"))
            and (key.endswith(("_url", "_uri", "endpoint")) or key == "base_url")
        ):
            yield key, value


def _cert_paths(cfg: ProviderConfig) -> Iterable[tuple[str, Path]]:
    base = Path(cfg.get("profile_dir", "."))
    for key, value in cfg.options.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if (
                isinstance(item, str)
                and (key.endswith(("ca_file", "cert_file")) or key in ("trust_anchors",))
                and item
            ):
                path = Path(item)
                yield key, path if path.is_absolute() else base / path


def _check_certs(key: str, path: Path, now: dt.datetime) -> list[Check]:
    try:
        data = path.read_bytes()
    except OSError:
        return [Check(f"certificate {key}", False, f"cannot read {path.name}")]
    try:
        certs = (
            x509.load_pem_x509_certificates(data)
            if b"-----BEGIN" in data
            else [x509.load_der_x509_certificate(data)]
        )
    except ValueError:
        return [Check(f"certificate {key}", False, f"{path.name} is not a certificate")]
    out: list[Check] = []
    for cert in certs:
        expires = cert.not_valid_after_utc
        cn = cert.subject.rfc4514_string()[:60]
        if now > expires or now < cert.not_valid_before_utc:
            out.append(
                Check(f"certificate {cn}", False, f"not valid now (expires {expires:%Y-%m-%d})")
            )
        elif expires - now < EXPIRY_WARNING:
            out.append(Check(f"certificate {cn}", False, f"expires soon: {expires:%Y-%m-%d}"))
        else:
            out.append(Check(f"certificate {cn}", True, f"valid until {expires:%Y-%m-%d}"))
    return out


def check_provider(cfg: ProviderConfig, *, timeout: float = 5.0) -> list[Check]:
    """Reachability of the provider's endpoints and validity of its certificates."""
    checks: list[Check] = []
    seen: set[str] = set()
    with httpx.Client(timeout=timeout, follow_redirects=False, verify=True) as client:
        for name, url in _endpoints(cfg):
            if url in seen:
                continue
            seen.add(url)
            try:
                resp = client.get(url)
            except httpx.HTTPError as exc:
                checks.append(Check(name, False, f"unreachable ({type(exc).__name__})"))
                continue
            checks.append(Check(name, resp.status_code < 500, f"HTTP {resp.status_code}"))
    now = dt.datetime.now(dt.UTC)
    for key, path in _cert_paths(cfg):
        checks.extend(_check_certs(key, path, now))
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
