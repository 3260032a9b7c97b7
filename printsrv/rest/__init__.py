"""The REST adapter at /restful/v1: one module per resource, errors in the contract's envelope."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from printsrv.errors import PrintsrvError
from printsrv.rest import agents, documents, financial, jobs, openapi, release, reports, system
from printsrv.rest.responses import (
    handle_http_error,
    handle_service_error,
    handle_unexpected_error,
)
from printsrv.rest.routing import ResourceRoutes


def rest_routes() -> list[Route]:
    """Every /restful/v1 route; within a resource, the first that matches wins."""
    return [
        Route("/documents", documents.list_documents, methods=["GET"]),
        Route("/documents/print", documents.print_upload, methods=["POST"]),
        # Before /documents/{ref}, which would take "waiting" for a reference (and answer 404).
        Route("/documents/waiting", documents.list_waiting, methods=["GET"]),
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
        Route("/agent/jobs/states", agents.report_many, methods=["POST"]),
        Route("/agent/jobs/{job:int}/pdf", agents.job_pdf, methods=["GET"]),
        Route("/agent/jobs/{job:int}/renew", agents.renew, methods=["POST"]),
        Route("/agent/jobs/{job:int}/state", agents.report, methods=["POST"]),
        # The description of these routes (printsrv/rest/openapi.py), and a page of it.
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs_page, methods=["GET"]),
    ]


class RestApp:
    """The /restful/v1 sub-application: finds the route, calls its view, and answers every
    error in the REST envelope.

    One plain ASGI layer rather than Starlette's stack (exception middleware, router, and
    each route's request/response wrapper, which catches errors again): the outer app
    already runs the lifespan and the request middleware, and each layer cost every REST
    request its share (docs/performance.md). Errors raised before the answer starts are
    rendered here: service errors from the one error table, HTTP errors (404, 405) and
    unexpected ones (500, whose traceback `handle_unexpected_error` logs). An error while
    a streamed answer is under way cannot be answered any more; it goes on to the server.
    """

    def __init__(self, routes: list[Route] | None = None) -> None:
        self.resources = ResourceRoutes(rest_routes() if routes is None else routes)

    @property
    def routes(self) -> list[Route]:
        return self.resources.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            route = self.resources.match(scope)
            response = await route.endpoint(request)
        except Exception as error:
            response = await _error_response(request, error)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await response(scope, receive, tracked)
        except Exception as error:
            if started:
                raise
            await (await _error_response(request, error))(scope, receive, send)


async def _error_response(request: Request, error: Exception) -> Response:
    if isinstance(error, PrintsrvError):
        return await handle_service_error(request, error)
    if isinstance(error, HTTPException):
        return await handle_http_error(request, error)
    return await handle_unexpected_error(request, error)


def create_rest_app() -> RestApp:
    """The /restful/v1 sub-application."""
    return RestApp()
