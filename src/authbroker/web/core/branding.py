"""Branding without forking: the app's name, logo, colours, templates, provider order.

:class:`Branding` is a :class:`~authbroker.web.core.app.WebCore` (and middleware)
argument. Colours become CSS custom properties in the hosted pages' stylesheet
(``base.html``: ``--fg``, ``--muted``, ``--accent``, ``--bg``, ``--card``); only those
names and plain colour values are accepted (an allow-list: a value is written inside
a ``<style>`` element, so nothing that could close it or load a resource passes).
``template_dirs`` are searched before the package's templates, so an application
overrides ``picker.html`` (or any page) by putting a file of that name there.
``provider_order`` lists providers shown first, in that order (default: FTN); the others
follow in configuration order. ``provider_groups`` folds providers under one picker
entry each (default: every TUPAS bank under "Online bank"). Both name providers by
pattern: a glob on the provider's name (``tupas-*``) or ``protocol:`` and a glob on its
protocol (``protocol:tupas``).

Provider logos are not shipped: the banks' and eID schemes' brand terms restrict use
of their marks, so an application that holds the right adds them in its own template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ...errors import ConfigError
from ..i18n import N_

__all__ = ["COLOR_VARIABLES", "DEFAULT_GROUPS", "DEFAULT_ORDER", "Branding", "Section"]

#: The CSS custom properties of ``base.html`` an application may set.
COLOR_VARIABLES = frozenset({"fg", "muted", "accent", "bg", "card"})
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|(?:rgb|rgba|hsl|hsla)\([0-9.,%\s/]{1,48}\)|[a-zA-Z]{3,20}")
_LOGO = re.compile(
    r"/[A-Za-z0-9._~/-]{0,255}|data:image/(?:png|svg\+xml|webp);base64,[A-Za-z0-9+/=]{1,65536}"
)

#: A provider pattern (an allow-list): a name glob, or ``protocol:`` and a protocol glob.
_PATTERN = re.compile(r"(?:protocol:)?[A-Za-z0-9*?._-]{1,64}")
#: FTN (the Finnish Trust Network: every Finnish bank and Mobile ID in one; profile
#: `providers/ftn.toml`, an OIDC provider) first.
DEFAULT_ORDER: tuple[str, ...] = ("ftn",)
#: TUPAS banks folded under one entry, as each bank is its own provider.
DEFAULT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("picker.banks"), ("protocol:tupas",)),
)
#: One picker entry: (group label, its members) or (None, [one provider]).
Section = tuple[str | None, list[str]]


def _matches(pattern: str, name: str, protocol: str) -> bool:
    kind, _, glob = pattern.rpartition(":")
    return fnmatchcase(protocol if kind else name, glob)


def _check_patterns(patterns: Sequence[str], key: str) -> tuple[str, ...]:
    if isinstance(patterns, str):
        raise ConfigError("must be a list of patterns, not one string", key=key)
    for pattern in patterns:
        if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None:
            raise ConfigError(f"{pattern!r} is not a provider name or pattern", key=key)
    return tuple(patterns)


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
    provider_order: Sequence[str] = DEFAULT_ORDER
    #: ``{label: patterns}`` or ``[(label, patterns), ...]``; a label is a message key
    #: (translated) or the text itself. A provider joins the first group it matches.
    provider_groups: Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]] = (
        DEFAULT_GROUPS
    )
    _groups: tuple[tuple[str, tuple[str, ...]], ...] = field(init=False, repr=False, default=())

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

        order = _check_patterns(self.provider_order, "web.branding.provider_order")
        groups = self.provider_groups
        pairs = list(groups.items()) if isinstance(groups, Mapping) else list(groups)
        checked: list[tuple[str, tuple[str, ...]]] = []
        for pair in pairs:
            label, patterns = pair
            if not isinstance(label, str) or not 0 < len(label) <= 80:
                raise ConfigError("a group label is 1-80 characters", key="web.branding.groups")
            checked.append((label, _check_patterns(patterns, "web.branding.groups")))
        # Normalized once here so the picker reads one shape (frozen: set via object).
        object.__setattr__(self, "provider_order", order)
        object.__setattr__(self, "_groups", tuple(checked))

    def order(self, providers: Sequence[tuple[str, str]]) -> list[str]:
        """The names of ``(name, protocol)`` pairs, those matching ``provider_order``
        first (pattern by pattern; several matches of one in configuration order)."""
        names: list[str] = []
        for pattern in self.provider_order:
            names += [n for n, p in providers if n not in names and _matches(pattern, n, p)]
        return names + [n for n, _ in providers if n not in names]

    def sections(self, providers: Sequence[tuple[str, str]]) -> list[Section]:
        """The picker's entries for ``(name, protocol)`` pairs already in order.

        A group stands where its first member would; a group that matches one
        provider only is that provider's own entry (a fold around one choice is a
        click for nothing).
        """
        members: dict[str, list[str]] = {label: [] for label, _ in self._groups}
        placed: list[tuple[str | None, str]] = []
        for name, protocol in providers:
            label = next(
                (
                    label
                    for label, patterns in self._groups
                    if any(_matches(x, name, protocol) for x in patterns)
                ),
                None,
            )
            if label is not None:
                members[label].append(name)
            placed.append((label, name))
        out: list[Section] = []
        for label, name in placed:
            if label is None or len(members[label]) == 1:
                out.append((None, [name]))
            elif members[label][0] == name:
                out.append((label, members[label]))
        return out
