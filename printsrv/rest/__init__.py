"""The REST adapter at /restful/v1: one module per resource, errors in the contract's envelope."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from printsrv.rest import system
from printsrv.rest.responses import EXCEPTION_HANDLERS


def create_rest_app() -> Starlette:
    """The /restful/v1 sub-application."""
    routes = [
        Route("/system/version", system.version, methods=["GET"]),
        Route("/tests/http/request", system.http_request, methods=["GET"]),
        Route("/tests/echo", system.echo, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
