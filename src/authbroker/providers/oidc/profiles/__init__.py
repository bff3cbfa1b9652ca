"""Claim profiles: map one OIDC provider family's verified claims to an Identity.

A provider profile names one with ``claims_profile`` (see
:data:`authbroker.providers.oidc.PROFILE_MODULES`); it is imported only when used.
"""
