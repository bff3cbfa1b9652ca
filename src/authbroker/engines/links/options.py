"""The ``[links]`` table of ``authbroker.toml``: its schema and the constructor
arguments of :class:`~authbroker.engines.links.DirectLinks` built from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ...config import Settings
from ...config_schema import Option, Schema
from ...errors import ConfigError
from .limits import LinkLimits

__all__ = ["CONFIG_SECTION", "links_options"]

_LIMIT_MEANINGS: Mapping[str, str] = {
    "code_digits": "digits of an SMS code (6..10)",
    "code_ttl": "seconds an SMS code is valid (30..600)",
    "max_attempts_per_challenge": "wrong codes allowed per sent code",
    "max_failures_per_link": "wrong codes allowed per link between two successes",
    "max_failures_per_user": "wrong codes allowed per user per user_failure_window",
    "user_failure_window": "seconds over which max_failures_per_user counts",
    "resend_cooldown": "seconds before a code may be sent again",
    "sends_per_link": "codes sent per link per send_window",
    "sends_per_phone": "codes sent per phone number per send_window",
    "sends_per_ip": "codes sent per client IP per send_window",
    "send_window": "seconds over which the send limits count",
    "global_daily_sends": "codes sent per day in total",
    "max_link_ttl": "longest link lifetime in seconds",
    "grant_ttl": "seconds a grant lasts after a correct code",
    "challenge_record_ttl": "seconds a challenge can be re-sent after its code expired",
}

#: The ``[links]`` table: :func:`links_options` reads these keys and nothing else.
CONFIG_SECTION = Schema(
    "links",
    "Direct links with SMS codes.",
    (
        Option("base_url", "string", None, "host of link URLs (default: broker.base_url)"),
        Option("link_path", "string", None, "path of link URLs (default: route_prefix + /link)"),
        Option("service_name", "string", None, "service name shown in the SMS"),
        Option("default_region", "string", None, "region of phone numbers without +"),
        Option("allowed_regions", "string list", None, "regions whose numbers may get codes"),
        *(
            Option(
                f.name,
                "integer" if f.type == "int" else "number",
                f.default,
                _LIMIT_MEANINGS[f.name],
            )
            for f in fields(LinkLimits)
        ),
    ),
)


def links_options(settings: Settings) -> dict[str, Any]:
    """Constructor arguments from :class:`~authbroker.config.Settings` and its ``[links]``.

    ``secret_keys`` come from ``AUTHBROKER_SECRET_KEYS``; the link URL is
    ``base_url + route_prefix + "/link/<token>"`` unless ``[links]`` sets ``base_url``
    or ``link_path``; ``[links]`` also holds :class:`LinkLimits` fields,
    ``service_name``, ``allowed_regions`` and ``default_region``.
    """
    table = dict(settings.section("links"))
    options: dict[str, Any] = {
        "secret_keys": settings.secret_keys,
        "base_url": str(table.pop("base_url", settings.base_url)),
        "link_path": str(table.pop("link_path", settings.route_prefix.rstrip("/") + "/link")),
    }
    for key in ("service_name", "default_region"):
        if key in table:
            options[key] = str(table.pop(key))
    if "allowed_regions" in table:
        regions = table.pop("allowed_regions")
        if not isinstance(regions, list | tuple) or not all(isinstance(r, str) for r in regions):
            raise ConfigError("must be a list of region codes", key="links.allowed_regions")
        options["allowed_regions"] = tuple(regions)
    options["limits"] = LinkLimits.from_mapping(table)
    return options
