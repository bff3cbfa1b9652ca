"""A minimal Django project with authbroker (every provider on its simulator)."""

from __future__ import annotations

import os
from pathlib import Path

from authbroker.web import PUBLIC, route

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret-" + "x" * 32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "example_project.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "authbroker.integrations.django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "authbroker.integrations.django.middleware.AuthBrokerMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "authbroker.integrations.django.backends.AuthBrokerBackend",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

AUTHBROKER = {
    # A simulated broker and direct links texting to an outbox (example_project.services);
    # a real deployment gives CONFIG (the TOML file) or OVERRIDES instead.
    "SERVICES": "example_project.services.make_services",
    "RULES": [route("/", PUBLIC)],
    "OPTIONS": {"link_landing": lambda scope, resource: f"/invoices/{resource}"},
}
