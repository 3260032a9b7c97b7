"""The REST adapter at /restful/v1: one module per resource, errors in the contract's envelope."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from printsrv.errors import PrintsrvError
from printsrv.rest import agents, documents, financial, jobs, openapi, release, reports, system
from printsrv.rest.responses import (
    handle_http_error,
    handle_service_error,
    handle_unexpected_error,
)
from printsrv.rest.routing import ResourceRouter


def rest_routes() -> list[Route]:
    """Every /restful/v1 route; within a resource, the first that matches wins."""
    return [
        Route("/documents", documents.list_documents, methods=["GET"]),
        Route("/documents/print", documents.print_upload, methods=["POST"]),
        Route("/documents/{ref}", documents.get_document, methods=["GET"]),
        Route("/documents/{ref}/pdf", documents.get_pdf, methods=["GET"]),
        Route("/documents/{ref}/print", documents.print_release, methods=["POST"]),
        Route("/documents/{ref}/approve", documents.approve_document, methods=["POST"]),
        Route("/documents/{ref}/deny", documents.deny_document, methods=["POST"]),
        Route("/financial/transfer", financial.transfer, methods=["POST"]),
        Route("/financial/account/balance", financial.account_balance, methods=["GET"]),
        Route("/financial/account/balance", financial.set_account_balance, methods=["POST"]),
        Route("/financial/balance", financial.balance, methods=["GET"]),
        Route("/system/version", system.version, methods=["GET"]),
        Route("/tests/http/request", system.http_request, methods=["GET"]),
        Route("/tests/echo", system.echo, methods=["POST"]),
        Route("/user/documents", documents.list_user_documents, methods=["GET"]),
        Route("/reports/accounttrx", reports.account_transactions, methods=["POST"]),
        Route("/release", release.release, methods=["POST"]),
        Route("/jobs", jobs.post_job, methods=["POST"]),
        Route("/jobs/{key}", jobs.get_job, methods=["GET"]),
        Route("/jobs/{key}/files/{name}", jobs.get_job_file, methods=["GET"]),
        Route("/agent/printers", agents.register_printers, methods=["POST"]),
        Route("/agent/jobs/next", agents.next_job, methods=["GET"]),
        Route("/agent/jobs/{job:int}/pdf", agents.job_pdf, methods=["GET"]),
        Route("/agent/jobs/{job:int}/renew", agents.renew, methods=["POST"]),
        Route("/agent/jobs/{job:int}/state", agents.report, methods=["POST"]),
        # The description of these routes (printsrv/rest/openapi.py), and a page of it.
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs_page, methods=["GET"]),
    ]


class RestApp:
    """The /restful/v1 sub-application: its routes, and every error in the REST envelope.

    Not a whole Starlette app: the outer app already runs the lifespan and the request
    middleware, so only what REST does differently sits here, in one layer: the REST
    rendering of service errors, HTTP errors (404, 405) and unexpected ones (500, whose
    traceback `handle_unexpected_error` logs). A second Starlette app cost every REST
    request two more middleware layers (docs/performance.md).
    """

    def __init__(self, routes: list[Route] | None = None) -> None:
        self.router = ResourceRouter(rest_routes() if routes is None else routes)
        handlers = {
            PrintsrvError: handle_service_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected_error,
        }
        self.app: ASGIApp = ExceptionMiddleware(self.router, handlers=handlers)

    @property
    def routes(self) -> list[Route]:
        return [route for route in self.router.routes if isinstance(route, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_rest_app() -> RestApp:
    """The /restful/v1 sub-application."""
    return RestApp()
