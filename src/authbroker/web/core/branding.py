"""Branding without forking: the app's name, logo, colours, templates, provider order.

:class:`Branding` is a :class:`~authbroker.web.core.app.WebCore` (and middleware)
argument. Colours become CSS custom properties in the hosted pages' stylesheet
(``base.html``: ``--fg``, ``--muted``, ``--accent``, ``--bg``, ``--card``); only those
names and plain colour values are accepted (an allow-list: a value is written inside
a ``<style>`` element, so nothing that could close it or load a resource passes).
``template_dirs`` are searched before the package's templates, so an application
overrides ``picker.html`` (or any page) by putting a file of that name there.
``provider_order`` lists provider names shown first, in that order; the others follow
in configuration order, and TUPAS banks stay folded under one heading.

Provider logos are not shipped: the banks' and eID schemes' brand terms restrict use
of their marks, so an application that holds the right adds them in its own template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError

__all__ = ["COLOR_VARIABLES", "Branding"]

#: The CSS custom properties of ``base.html`` an application may set.
COLOR_VARIABLES = frozenset({"fg", "muted", "accent", "bg", "card"})
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|(?:rgb|rgba|hsl|hsla)\([0-9.,%\s/]{1,48}\)|[a-zA-Z]{3,20}")
_LOGO = re.compile(
    r"/[A-Za-z0-9._~/-]{0,255}|data:image/(?:png|svg\+xml|webp);base64,[A-Za-z0-9+/=]{1,65536}"
)


@dataclass(frozen=True, slots=True)
class Branding:
    """How the hosted pages look; every field is optional.

    ``logo_url`` is a same-origin path (``/static/logo.svg``) or an image ``data:``
    URI: the pages' CSP allows images from self and data only.
    """

    app_name: str | None = None
    logo_url: str | None = None
    colors: Mapping[str, str] = field(default_factory=dict)
    template_dirs: Sequence[str | Path] = ()
    provider_order: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name, value in self.colors.items():
            if name not in COLOR_VARIABLES:
                raise ConfigError(f"unknown colour variable {name!r}", key="web.branding.colors")
            if not isinstance(value, str) or _COLOR.fullmatch(value) is None:
                raise ConfigError(
                    f"colour {name} is not a plain colour value", key="web.branding.colors"
                )
        if self.logo_url is not None and _LOGO.fullmatch(self.logo_url) is None:
            raise ConfigError(
                "logo_url must be a same-origin path or an image data: URI",
                key="web.branding.logo_url",
            )
        if self.app_name is not None and not 0 < len(self.app_name) <= 80:
            raise ConfigError("app_name must be 1-80 characters", key="web.branding.app_name")
        for folder in self.template_dirs:
            if not Path(folder).is_dir():
                raise ConfigError(
                    f"template folder {folder} does not exist", key="web.branding.template_dirs"
                )

    def order(self, names: Sequence[str]) -> list[str]:
        """``names`` with the ``provider_order`` ones first, in that order."""
        first = [n for n in self.provider_order if n in names]
        return first + [n for n in names if n not in first]
