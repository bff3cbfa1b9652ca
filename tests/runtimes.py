"""Shorthands for tests: run a routine in the kernel's runtimes.

``run_sync(gen, driver, store)`` is ``SyncRuntime(driver, store).run(gen)``; the
library itself has no other runner.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from authbroker.kernel import AsyncRuntime, SyncRuntime

T = TypeVar("T")


def run_sync(gen: Generator[Any, Any, T], driver: Any, store: Any) -> T:
    return SyncRuntime(driver, store).run(gen)


async def run_async(gen: Generator[Any, Any, T], driver: Any, store: Any) -> T:
    return await AsyncRuntime(driver, store).run(gen)
