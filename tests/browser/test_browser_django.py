"""Real-browser logins on the Django example project (docs/examples/django_app),
served through Django's WSGI handler by a threaded werkzeug server on loopback with
every provider on its simulator: FTN, Swedish BankID by QR code, and a direct link
plus SMS code (:mod:`browser_support`). Each login also links a Django user."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from browser_support import (  # noqa: F401 - browser, page: the Chromium fixtures
    PHONE,
    bankid_qr_login,
    body_text,
    browser,
    ftn_login,
    link_login,
    page,
    serving_wsgi,
)

pytestmark = pytest.mark.browser
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "django_app"


def linked(provider: str) -> bool:
    """Whether an identity of ``provider`` is linked to a Django user. The ORM refuses
    to run beside the event loop of Playwright's sync API, so it runs in a thread."""
    from authbroker.integrations.django.models import IdentityLink

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(IdentityLink.objects.filter(provider=provider).exists).result()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The example project on a loopback port; yields its base URL and its services
    module (``STATE`` holds the broker and the direct links, ``OUTBOX`` the texts).

    Tests ask for it before ``page``: the Django set-up (migrations) and clean-up run
    outside Playwright's event loop."""
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    os.environ.setdefault("EXAMPLE_DB", str(tmp_path_factory.mktemp("django") / "db.sqlite3"))
    import django
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from example_project import services

    from authbroker.integrations.django import conf
    from authbroker.integrations.django.models import IdentityLink

    users = get_user_model().objects
    first_user = (users.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    first_link = (
        IdentityLink.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    ) + 1

    def build(base: str) -> Any:
        # The services read the app's address when the adapter is built: build it now.
        os.environ["EXAMPLE_BASE_URL"] = base
        conf.reset()
        conf.adapter()
        return WSGIHandler()

    try:
        with serving_wsgi(build) as base:
            yield base, services
    finally:
        os.environ.pop("EXAMPLE_BASE_URL", None)
        broker = services.STATE.pop("broker", None)
        services.STATE.pop("links", None)
        conf.reset()
        if broker is not None:
            broker.close()
        # Leave the users this module linked out of other modules' counts.
        IdentityLink.objects.filter(pk__gte=first_link).delete()
        users.filter(pk__gte=first_user).delete()


def test_ftn_login_in_browser(served: Any, page: Any) -> None:  # noqa: F811
    base, _ = served
    ftn_login(page, base, "/ledger")
    text = body_text(page)
    assert '"ledger":"ok"' in text and '"username":"u_' in text
    assert linked("ftn")


def test_bankid_qr_login_in_browser(served: Any, page: Any) -> None:  # noqa: F811
    base, services = served
    sim = services.STATE["broker"].simulator("bankid-se")
    assert sim is not None
    bankid_qr_login(page, base, "/ledger", sim.extra["simulator"].scan)
    text = body_text(page)
    assert '"ledger":"ok"' in text and '"username":"u_' in text
    assert linked("bankid-se")


def test_direct_link_with_sms_code_in_browser(served: Any, page: Any) -> None:  # noqa: F811
    base, services = served
    url = services.STATE["links"].issue("acct-1", PHONE, "invoice:approve", "INV-3", ttl=600)
    link_login(page, base, url, services.OUTBOX, "/invoices/INV-3")
    assert '"kind":"link"' in body_text(page)
