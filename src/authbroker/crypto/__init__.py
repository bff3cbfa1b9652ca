"""Cryptographic boundaries: JOSE (:mod:`.jose`), X.509 paths and OCSP (:mod:`.pki`), CMS.

Pure functions and small caches over ``cryptography``/``joserfc``/``asn1crypto``:
no provider, engine or web code lives here, and nothing here imports them, so every
protocol package can use these pieces without a cycle.
"""
