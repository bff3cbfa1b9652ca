"""Flow steps: what ``begin`` and ``advance`` tell the web layer (or CLI) to do next.

Redirect the browser (:class:`Redirect`), auto-post a form (:class:`AutoPost`), poll
while showing something (:class:`Poll`), have the browser sign a challenge
(:class:`Challenge`), or finish (:class:`Done`). They are plain values, so the flow
engine, the providers and every web adapter share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from .identity import Identity

__all__ = ["AutoPost", "Challenge", "Display", "Done", "Poll", "Redirect", "Step"]


@dataclass(frozen=True, slots=True)
class Display:
    """What a decoupled flow (BankID, Mobile ID) asks the user interface to show.

    ``message`` is keyed by language (``{"sv": ..., "en": ..., "fi": ...}``).
    ``qr`` is never the QR secret, only the payload valid for the current second;
    the web layer asks the server for a fresh one every second.
    """

    message: Mapping[str, str] = field(default_factory=dict)
    status: str = ""
    hint_code: str = ""
    qr: str | None = None
    autostart_url: str | None = None
    verification_code: str | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to ``url`` (OIDC authorization request)."""

    url: str
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class AutoPost:
    """Have the browser POST ``fields`` to ``url`` (TUPAS request form)."""

    url: str
    fields: Mapping[str, str]
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Poll:
    """Call ``advance`` again after ``interval`` seconds, showing ``display``."""

    interval: float
    display: Display = field(default_factory=Display)
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Challenge:
    """The browser must sign ``nonce`` (Web eID) and post the token to ``advance``."""

    nonce: str
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Done:
    """The flow completed; ``return_to`` is the checked local path to continue at."""

    identity: Identity
    flow_id: str = ""
    return_to: str = "/"


Step: TypeAlias = Redirect | AutoPost | Poll | Challenge | Done
