"""Which Django user a strongly identified principal is.

On the first login of an identity (provider + stable subject) ``AUTHBROKER
["USER_MAPPER"]`` (``callable(principal) -> User | None``) may name an existing user
(e.g. by a personal identity code kept on the profile); otherwise a new user is
created, named by the principal's pseudonymous ``user_id`` and with an unusable
password. The link is created atomically: two concurrent first logins of the same
identity end with one link (the loser of the unique constraint reads the winner's).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from ...web.core import Principal
from . import conf
from .models import IdentityLink

__all__ = ["user_for_principal"]


def user_for_principal(principal: Principal) -> Any | None:
    """The linked user of a full session's identity (created on first login); ``None``
    for link and mobile principals, which stand for no Django user."""
    if principal.kind != "full" or not principal.user_id:
        return None
    provider = str(principal.identity.get("provider") or "")
    subject = str(principal.identity.get("subject") or "")
    if not provider or not subject:
        return None
    found = IdentityLink.objects.select_related("user").filter(provider=provider, subject=subject)
    link = found.first()
    if link is not None:
        return link.user
    mapper_path = conf.options().get("USER_MAPPER")
    try:
        with transaction.atomic():
            user = import_string(mapper_path)(principal) if mapper_path else None
            if user is None:
                user = _new_user(principal)
            IdentityLink.objects.create(
                user=user, provider=provider, subject=subject, last_login_at=timezone.now()
            )
            return user
    except IntegrityError:
        # A concurrent first login linked it first (and our new user rolled back).
        return found.get().user


def _new_user(principal: Principal) -> Any:
    model = get_user_model()
    user = model(
        **{
            str(model.USERNAME_FIELD): str(principal.user_id)[:150],
            "first_name": str(principal.identity.get("given_name") or "")[:150],
            "last_name": str(principal.identity.get("family_name") or "")[:150],
        }
    )
    user.set_unusable_password()
    user.save()
    return user
