"""The REST adapter at /restful/v1: one module per resource, errors in the contract's envelope."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from printsrv.rest import agents, documents, financial, jobs, reports, system
from printsrv.rest.responses import EXCEPTION_HANDLERS


def create_rest_app() -> Starlette:
    """The /restful/v1 sub-application."""
    routes = [
        # The busiest first: the router tries the routes in order.
        Route("/documents", documents.list_documents, methods=["GET"]),
        Route("/financial/transfer", financial.transfer, methods=["POST"]),
        Route("/system/version", system.version, methods=["GET"]),
        Route("/tests/http/request", system.http_request, methods=["GET"]),
        Route("/tests/echo", system.echo, methods=["POST"]),
        Route("/documents/print", documents.print_upload, methods=["POST"]),
        Route("/documents/{ref}", documents.get_document, methods=["GET"]),
        Route("/documents/{ref}/pdf", documents.get_pdf, methods=["GET"]),
        Route("/documents/{ref}/print", documents.print_release, methods=["POST"]),
        Route("/user/documents", documents.list_user_documents, methods=["GET"]),
        Route("/financial/account/balance", financial.account_balance, methods=["GET"]),
        Route("/financial/account/balance", financial.set_account_balance, methods=["POST"]),
        Route("/financial/balance", financial.balance, methods=["GET"]),
        Route("/reports/accounttrx", reports.account_transactions, methods=["POST"]),
        Route("/jobs", jobs.post_job, methods=["POST"]),
        Route("/jobs/{key}", jobs.get_job, methods=["GET"]),
        Route("/jobs/{key}/files/{name}", jobs.get_job_file, methods=["GET"]),
        Route("/agent/printers", agents.register_printers, methods=["POST"]),
        Route("/agent/jobs/next", agents.next_job, methods=["GET"]),
        Route("/agent/jobs/{job:int}/pdf", agents.job_pdf, methods=["GET"]),
        Route("/agent/jobs/{job:int}/renew", agents.renew, methods=["POST"]),
        Route("/agent/jobs/{job:int}/state", agents.report, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
