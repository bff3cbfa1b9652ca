"""``path("auth/", include("authbroker.integrations.django.urls"))`` — mount it at the
broker's route prefix (``[broker] route_prefix``, ``/auth`` by default): the core
serves paths under that prefix (``manage.py check`` warns when they differ)."""

from __future__ import annotations

from django.urls import re_path

from .views import hosted

app_name = "authbroker"
urlpatterns = [re_path(r"^(?P<rest>.*)$", hosted, name="hosted")]
