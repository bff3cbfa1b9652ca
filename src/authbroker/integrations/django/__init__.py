"""Django: an installable app (``"authbroker.integrations.django"`` in
``INSTALLED_APPS``).

* ``path("auth/", include("authbroker.integrations.django.urls"))`` serves the hosted
  pages (:mod:`.views`);
* :class:`~.middleware.AuthBrokerMiddleware` checks every routed request — the guard
  declared on the view (:mod:`.decorators`), else the path-rule table
  (``AUTHBROKER["RULES"]``), else ``DEFAULT_GUARD`` (deny by default) — and sets
  ``request.auth_principal``, ``request.auth_identity`` and, for a strongly
  identified session, ``request.user`` (the Django user linked to the identity by
  :class:`~.models.IdentityLink`, see :mod:`.users`);
* ``manage.py check`` runs the broker's configuration validation (:mod:`.checks`).

Settings live in ``settings.AUTHBROKER`` (:mod:`.conf`). The session is the broker's
own cookie; Django's session is left alone (see docs/integrations/django.md).
"""
