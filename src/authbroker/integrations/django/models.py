"""The link between a Django user and a normalized identity."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models


class IdentityLink(models.Model):
    """One identity (provider + its stable subject) belongs to one user.

    Like django-allauth's ``SocialAccount``: created on the identity's first login
    (:func:`~authbroker.integrations.django.users.user_for_principal`). The subject
    may be a personal identity code for some providers, so ``str``/``repr`` never
    show it.
    """

    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authbroker_links"
    )
    provider: models.CharField[str, str] = models.CharField(max_length=64)
    subject: models.CharField[str, str] = models.CharField(max_length=255)
    created_at: models.DateTimeField[Any, Any] = models.DateTimeField(auto_now_add=True)
    last_login_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)

    user_id: int

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["provider", "subject"], name="authbroker_identitylink_unique"
            )
        ]

    def __str__(self) -> str:
        return f"IdentityLink(provider={self.provider}, user={self.user_id})"

    __repr__ = __str__
