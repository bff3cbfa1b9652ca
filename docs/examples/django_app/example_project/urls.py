from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home),
    path("ledger", views.Ledger.as_view()),
    path("invoices/<str:invoice>", views.invoice),
    path("auth/", include("authbroker.integrations.django.urls")),
]
