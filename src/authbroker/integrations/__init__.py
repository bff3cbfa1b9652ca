"""Framework integrations: Django, Flask and FastAPI, the way their users expect.

Each is an optional extra (``pip install authbroker[django]``, ``[flask]``,
``[fastapi]``) and a thin layer over the web core (:mod:`authbroker.web.core`):
the hosted pages are mounted as the framework's own routes (a Django URLconf, a Flask
blueprint, a FastAPI ``APIRouter``) and served by the same adapter code as the
WSGI/ASGI middleware (one runtime call per request); the guards are declared where
the route is (decorator, mixin or dependency) and the path-rule table
(:func:`authbroker.web.route`) stays available. Import only the submodule of your
framework: the package imports no framework.
"""
