"""The effect runner: module-specific effects go to the ``other`` handler, and typed
errors from any effect are thrown back into the routine so it can clean up."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from authbroker.errors import AuthBrokerError, ProviderUnavailable
from authbroker.flow import run_async, run_sync, store_put, store_take
from authbroker.store.memory import AsyncMemoryStore, MemoryStore


class Ask:
    def __init__(self, value: int) -> None:
        self.value = value


def routine(log: list[str]) -> Generator[Any, Any, int]:
    yield from store_put("k", b"v", 10)
    doubled = yield Ask(21)
    try:
        yield Ask(-1)
    except ProviderUnavailable:
        log.append("cleaned up")
    taken = yield from store_take("k")
    assert taken == b"v"
    return int(doubled)


def handle(effect: Ask) -> int:
    if effect.value < 0:
        raise ProviderUnavailable("down")
    return effect.value * 2


def test_sync_runner_other_effects_and_errors() -> None:
    log: list[str] = []
    assert run_sync(routine(log), None, MemoryStore(), other=handle) == 42
    assert log == ["cleaned up"]


async def test_async_runner_other_effects_and_errors() -> None:
    log: list[str] = []

    async def ahandle(effect: Ask) -> int:
        return handle(effect)

    assert await run_async(routine(log), None, AsyncMemoryStore(), other=ahandle) == 42
    assert log == ["cleaned up"]


def test_unknown_effect_without_handler_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        run_sync(routine([]), None, MemoryStore())


def test_uncaught_typed_error_propagates() -> None:
    def failing() -> Generator[Any, Any, None]:
        yield Ask(-1)

    with pytest.raises(AuthBrokerError):
        run_sync(failing(), None, None, other=handle)
