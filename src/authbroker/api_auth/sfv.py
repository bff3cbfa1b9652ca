"""RFC 8941 Structured Field Values, through the reference ``http-sfv`` library.

``http-sfv`` (by the RFC's author) does the parsing and serialization; this module
only puts a size limit in front of it, turns every parser exception into
:class:`~authbroker.errors.InvalidInput` and checks the exact bare-item types, because
the library represents tokens as a ``str`` subclass and booleans are ``int``\\s in
Python.
"""

from __future__ import annotations

from typing import Any

from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from ..errors import InvalidInput

__all__ = [
    "Dictionary",
    "InnerList",
    "Item",
    "ascii_bytes",
    "is_bytes",
    "is_int",
    "is_str",
    "is_true",
    "item_bytes",
    "parse_dictionary",
    "serialize_member",
]


def ascii_bytes(value: str, *, code: str, max_bytes: int) -> bytes:
    """The field value as bytes, refusing oversize or non-ASCII input before parsing."""
    if len(value) > max_bytes:
        raise InvalidInput("a signature header is too large", code="header_too_large")
    try:
        return value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise InvalidInput("a structured header is not ASCII", code=code) from exc


def parse_dictionary(value: str, *, code: str, max_bytes: int, max_members: int) -> dict[str, Any]:
    """Parse an RFC 8941 §3.2 Dictionary; members are ``http_sfv`` Items or InnerLists."""
    data = ascii_bytes(value, code=code, max_bytes=max_bytes)
    parsed = Dictionary()
    try:
        parsed.parse(data)
    except Exception as exc:  # the library raises ValueError, but be total
        raise InvalidInput("a structured header is malformed", code=code) from exc
    if len(parsed) > max_members:
        raise InvalidInput("a structured header has too many members", code="header_too_large")
    return dict(parsed.items())


def serialize_member(member: Any, *, code: str) -> str:
    """RFC 8941 §4.1 serialization of a parsed Item or InnerList."""
    try:
        return str(member)
    except Exception as exc:
        raise InvalidInput("a structured value cannot be serialized", code=code) from exc


def is_str(value: object) -> bool:
    """An sf-string (tokens are a ``str`` subclass in ``http_sfv`` and are excluded)."""
    return type(value) is str


def is_int(value: object) -> bool:
    return type(value) is int


def is_bytes(value: object) -> bool:
    return type(value) is bytes


def is_true(value: object) -> bool:
    return value is True


def item_bytes(member: object) -> bytes | None:
    """The value of an Item that is a byte sequence, else None."""
    if isinstance(member, Item) and type(member.value) is bytes:
        return member.value
    return None
