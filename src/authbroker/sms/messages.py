"""Localized one-time-code messages (fi, sv, en, et, nb).

Every message ends with the origin-bound line of the WICG "Origin-bound one-time
codes delivered via SMS" format (§3): ``@host #code`` on the last line, which lets
browsers offer the code only on that site (``autocomplete="one-time-code"``, WebOTP)
and tells the user which site the code belongs to. Only the host is used: no scheme,
no port (the format carries a host, and browsers match it against the page's host).

The explanatory text comes first and the code is not the first word, so a lock-screen
preview shows the warning before the code (OWASP MFA Cheat Sheet on SMS previews).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import ConfigError, InvalidInput

__all__ = ["LANGUAGES", "TEMPLATES", "normalize_language", "origin_host", "render_code_message"]

#: Text per language; ``{service}``, ``{code}`` and ``{minutes}`` are filled in.
TEMPLATES: dict[str, str] = {
    "fi": (
        "Kertakäyttökoodisi palveluun {service}: {code}. "
        "Koodi on voimassa {minutes} min. Älä kerro koodia kenellekään."
    ),
    "sv": (
        "Din engångskod till {service}: {code}. "
        "Koden gäller i {minutes} min. Lämna aldrig ut koden till någon."
    ),
    "en": (
        "Your one-time code for {service}: {code}. "
        "It is valid for {minutes} min. Never share this code with anyone."
    ),
    "et": (
        "Teie ühekordne kood teenusesse {service}: {code}. "
        "Kood kehtib {minutes} min. Ärge andke koodi kellelegi."
    ),
    "nb": (
        "Engangskoden din for {service}: {code}. "
        "Koden er gyldig i {minutes} min. Ikke del koden med noen."
    ),
}

LANGUAGES: tuple[str, ...] = tuple(TEMPLATES)

# Norwegian is often tagged "no" (macrolanguage) or "nn"; Bokmål text serves both.
_ALIASES = {"no": "nb", "nn": "nb", "se": "sv", "ee": "et"}
_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


def normalize_language(language: str) -> str:
    """``"fi-FI"`` → ``"fi"``; unknown languages are refused (no silent fallback)."""
    if not isinstance(language, str):
        raise InvalidInput("language must be a string", code="bad_language")
    base = language.strip().lower().replace("_", "-").split("-")[0]
    base = _ALIASES.get(base, base)
    if base not in TEMPLATES:
        raise InvalidInput("unsupported message language", code="bad_language")
    return base


def origin_host(base_url: str) -> str:
    """The host for the ``@host`` line, from the application's public base URL."""
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError as exc:
        raise ConfigError("not a usable URL", key="links.base_url") from exc
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ConfigError("host name cannot be IDNA-encoded", key="links.base_url") from exc
    if not _HOST_RE.fullmatch(host):
        raise ConfigError("needs a host name", key="links.base_url")
    return host


def render_code_message(language: str, *, code: str, host: str, service: str, minutes: int) -> str:
    """The SMS text: localized sentence, then ``@host #code`` as the last line."""
    if not code.isascii() or not code.isdigit():
        raise InvalidInput("codes are ASCII digits", code="bad_code")
    template = TEMPLATES[normalize_language(language)]
    text = template.format(service=service, code=code, minutes=minutes)
    return f"{text}\n\n@{host} #{code}"
