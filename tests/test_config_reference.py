"""The option reference in docs/ is the one the schemas generate, and says something
about every option: an option cannot exist in code without documentation."""

from __future__ import annotations

from pathlib import Path

from authbroker.config_reference import protocol_schemas, render
from authbroker.config_schema import PROVIDER_COMMON, SECTIONS, Schema, section_schema

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "options.md"


def _schemas() -> list[Schema]:
    found = [section_schema(n) for n in SECTIONS if n != "providers"]
    found.append(PROVIDER_COMMON)
    found += [schema for _, schema in protocol_schemas()]
    return found


def test_the_reference_page_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/reference/options.md is stale: run `make options-doc`"
    )


def test_every_option_has_a_meaning_and_appears_on_the_page() -> None:
    page = PAGE.read_text(encoding="utf-8")
    schemas = _schemas()
    assert {"oidc", "bankid-se", "tupas", "mobiilivarmenne", "web-eid"} <= {
        protocol for protocol, _ in protocol_schemas()
    }
    for schema in schemas:
        assert schema.meaning.strip(), schema.name
        for option in schema.options:
            assert option.meaning.strip(), f"{schema.name}.{option.key} has no meaning"
            assert f"`{option.key}`" in page, f"{schema.name}.{option.key} is not on the page"
