"""The example's pages, each guarded where it is declared."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views import View

from authbroker.integrations.django.decorators import (
    LoginRequiredMixin,
    link_required,
    public,
)

APPROVALS: dict[str, str] = {}


@public
def home(request: HttpRequest) -> JsonResponse:
    principal = request.auth_principal  # type: ignore[attr-defined]
    return JsonResponse({"kind": principal.kind, "level": principal.access_level})


class Ledger(LoginRequiredMixin, View):
    loa = "substantial"

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(
            {
                "ledger": "ok",
                "username": request.user.get_username(),
                "first_name": request.user.first_name,  # type: ignore[union-attr]
                "given_name": request.auth_identity.get("given_name"),  # type: ignore[attr-defined]
            }
        )


@link_required(scope="invoice:approve", resource="{invoice}")
def invoice(request: HttpRequest, invoice: str) -> JsonResponse:
    principal = request.auth_principal  # type: ignore[attr-defined]
    if request.method == "POST":  # Django's CSRF middleware has checked the token
        APPROVALS[invoice] = principal.user_id or ""
    return JsonResponse(
        {"invoice": invoice, "kind": principal.kind, "approved": invoice in APPROVALS}
    )
