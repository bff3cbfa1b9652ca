"""Service engines: each service's rules and state as sans-I/O routines.

An engine does no I/O: every operation is one routine (see :mod:`authbroker.kernel`)
that the declared blocking and asyncio facades run. Engines never import the web
layer, the CLI or :mod:`authbroker.testing`.
"""
