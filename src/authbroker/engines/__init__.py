"""Engines: each service's rules and state as routines (no I/O), and the facades that
run them (:mod:`authbroker.kernel.facade`)."""
