"""The hosted pages as a Django view.

``csrf_exempt`` because the core runs its own CSRF check on every hosted POST, at
least as strict as Django's: the form token is an HMAC of this browser's flow-cookie
binding, compared in constant time, plus Fetch-Metadata/``Origin`` same-origin checks
(SES-06, :meth:`authbroker.web.core.context.WebContext.check_post`). Django's token would
not be on these forms (the core renders them), so its middleware would refuse them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ...web.core import WebResponse
from . import conf
from .responses import read_body, to_django, web_request


@csrf_exempt
def hosted(request: HttpRequest, rest: str = "") -> HttpResponse:
    adapter = conf.adapter()
    body = read_body(request)
    if body is None:
        return to_django(WebResponse.json({"error": "body_too_large"}, 413))
    return to_django(adapter.serve(web_request(adapter, request, body)))
