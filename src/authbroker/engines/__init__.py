"""Engines: each service's rules and state as routines (no I/O of their own).

An engine exposes every operation as a routine (a generator returning ``Gen[T]``,
see :mod:`authbroker.kernel.effects`); its blocking and asyncio APIs are facades
declared with :func:`~authbroker.kernel.facade.sync_op` /
:func:`~authbroker.kernel.facade.async_op`.
"""
