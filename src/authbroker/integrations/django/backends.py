"""An authentication backend, for applications that also want Django's own session.

The middleware already gives ``request.user`` for every request carrying the
broker's session. To log the user into Django's session as well (e.g. for the admin),
call ``django.contrib.auth.login(request, request.user, backend=
"authbroker.integrations.django.backends.AuthBrokerBackend")`` in a view after the
broker's login; ``authenticate(request, principal=request.auth_principal)`` returns
the linked user. Logging out then needs both ``/auth/logout`` and Django's logout.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend

from ...web.core import Principal
from .users import user_for_principal


class AuthBrokerBackend(BaseBackend):
    def authenticate(self, request: Any, principal: Principal | None = None, **kw: Any) -> Any:
        if not isinstance(principal, Principal):
            return None
        return user_for_principal(principal)

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            return model._default_manager.get(pk=user_id)
        except model.DoesNotExist:
            return None
