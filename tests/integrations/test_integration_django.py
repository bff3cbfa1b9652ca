"""The Django app and docs/examples/django_app, through Django's test client on a
simulated broker: FTN and direct-link logins, request.user linked to the identity,
per-view guards, CSRF and ``manage.py check``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "django_app"


@pytest.fixture(scope="module")
def django_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    os.environ["EXAMPLE_DB"] = str(tmp_path_factory.mktemp("django") / "db.sqlite3")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from example_project import services

    yield services
    broker = services.STATE.get("broker")
    if broker is not None:
        broker.close()


class Client:
    def __init__(self, **kw: Any) -> None:
        from django.test import Client as DjangoClient

        self.c = DjangoClient(**kw)

    def _reply(self, r: Any) -> Any:
        from integration_support import Reply

        headers = {k.lower(): v for k, v in r.headers.items()}
        return Reply(r.status_code, headers, r.content.decode())

    def get(self, path: str) -> Any:
        return self._reply(self.c.get(path))

    def post(self, path: str, data: dict[str, str]) -> Any:
        body = urlencode(data)
        return self._reply(
            self.c.post(path, body, content_type="application/x-www-form-urlencoded")
        )


def test_manage_py_check_passes_with_example_settings(django_env: Any) -> None:
    from django.core.management import call_command

    call_command("check")


def test_ftn_login_creates_linked_user_once(django_env: Any) -> None:
    from django.contrib.auth import get_user_model

    from authbroker.integrations.django.models import IdentityLink
    from integration_support import ftn_login

    client = Client()
    assert '"kind": "anonymous"' in client.get("/").text
    r = client.get("/ledger")
    assert r.status == 303 and r.location.startswith("/auth/?return_to=%2Fledger")
    assert 'data-provider="ftn"' in client.get(r.location).text
    ftn_login(client, "/ledger")
    r = client.get("/ledger")
    assert r.status == 200, r.text
    assert '"ledger": "ok"' in r.text and '"username": "u_' in r.text
    links = IdentityLink.objects.filter(provider="ftn")
    assert links.count() == 1
    assert "subject" not in str(links.get()) and links.get().subject not in repr(links.get())
    users_before = get_user_model().objects.count()
    # A second login of the same person reuses the link and the user.
    other = Client()
    ftn_login(other, "/ledger")
    assert other.get("/ledger").status == 200
    assert get_user_model().objects.count() == users_before
    assert IdentityLink.objects.filter(provider="ftn").count() == 1


def test_user_mapper_links_existing_user(django_env: Any, settings: Any = None) -> None:
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from authbroker.integrations.django import conf
    from authbroker.integrations.django.models import IdentityLink
    from integration_support import ftn_login

    IdentityLink.objects.all().delete()
    existing = get_user_model().objects.create_user("maija")
    current = dict(conf.options())
    current["USER_MAPPER"] = "test_integration_django.map_to_maija"
    with override_settings(AUTHBROKER=current):
        client = Client()
        ftn_login(client, "/ledger")
        r = client.get("/ledger")
        assert r.status == 200 and '"username": "maija"' in r.text
    assert IdentityLink.objects.get(provider="ftn").user_id == existing.pk
    conf.reset()


def map_to_maija(principal: Any) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="maija")


def test_direct_link_and_django_csrf_on_app_posts(django_env: Any) -> None:
    from integration_support import INVOICE, PHONE, link_login

    links = django_env.STATE["links"]
    client = Client(enforce_csrf_checks=True)
    client.get("/")  # builds the services
    links = django_env.STATE["links"]
    url = links.issue("acct-1", PHONE, "invoice:approve", INVOICE, ttl=600)
    # The hosted POST forms pass with Django's CSRF middleware on (authbroker's token).
    assert link_login(client, url, django_env.OUTBOX) == f"/invoices/{INVOICE}"
    r = client.get(f"/invoices/{INVOICE}")
    assert r.status == 200 and '"kind": "link"' in r.text
    # the app's own POST is Django's CSRF business: no token, refused
    assert client.post(f"/invoices/{INVOICE}", {}).status == 403
    assert "step_up=1" in client.get("/invoices/INV-8").location
    assert "step_up=1" in client.get("/ledger").location


def test_hosted_form_without_authbroker_token_is_refused(django_env: Any) -> None:
    client = Client()
    r = client.post("/auth/link/send", {"csrf": "forged"})
    assert r.status in (400, 403)


def test_guard_decorator_without_middleware_fails_closed(django_env: Any) -> None:
    from django.test import RequestFactory
    from example_project.views import Ledger, invoice

    from authbroker.errors import ConfigError

    request = RequestFactory().get("/invoices/INV-1")
    with pytest.raises(ConfigError):
        invoice(request, invoice="INV-1")
    with pytest.raises(ConfigError):
        Ledger.as_view()(RequestFactory().get("/ledger"))


def test_check_reports_bad_config(django_env: Any) -> None:
    from django.test import override_settings

    from authbroker.integrations.django.checks import check_config

    with override_settings(AUTHBROKER={"OVERRIDES": {"broker": {"nonsense": 1}}}):
        errors = check_config()
    assert errors and errors[0].id == "authbroker.E001"
    with override_settings(AUTHBROKER={"TYPO": 1}):
        assert check_config()[0].id == "authbroker.E001"
