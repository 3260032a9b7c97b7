"""`create_app()`: the one ASGI application that serves every printsrv API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from printsrv import (
    errors,
    tables,  # noqa: F401 (every table mapped before the first query)
)
from printsrv.accounts import idempotency, quotas
from printsrv.agents.sweeper import run_agent_service
from printsrv.error_table import answer_for
from printsrv.jobs.runner import run_job_runner
from printsrv.operations.installation import Installation, open_installation
from printsrv.platform.middleware import HeaderLimitMiddleware
from printsrv.platform.observability import RequestObserver, watch_pool
from printsrv.platform.threads import in_thread
from printsrv.printing.tracker import run_tracker
from printsrv.release.expiry import keep_swept
from printsrv.rest import convert, create_rest_app
from printsrv.rest.metrics import metrics
from printsrv.rest.responses import handle_http_error
from printsrv.rpc import jsonrpc, xmlrpc
from printsrv.web import web_routes

REST_PREFIX = "/restful/v1"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(f"{REST_PREFIX}/"):
        # A REST path the mount did not take: Starlette's Mount matches `.*`, which stops at
        # a newline ("/restful/v1/documents/%0A1"), so it reached this plain-text page (found
        # by fuzzing). REST clients get their envelope.
        return await handle_http_error(request, exc)
    if exc.status_code == 404:
        text = f"Not Found: printsrv has no service at {request.url.path}"
    elif exc.status_code == 405:
        text = f"Method Not Allowed: {request.method} {request.url.path}"
    else:
        text = str(exc.detail)
    return PlainTextResponse(text + "\n", exc.status_code, headers=exc.headers)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.PrintsrvError)
    return PlainTextResponse(exc.message + "\n", answer_for(exc).status)


def create_app(installation: Installation | None = None) -> Starlette:
    """Build the application; with no argument, for the installation the environment names."""
    installation = installation or open_installation()
    # `printsrv serve --no-access-log` reaches the workers through the environment.
    access_log_enabled = os.environ.get("PRINTSRV_ACCESS_LOG", "on") != "off"
    # Set by `printsrv serve`: a test process builds many apps, whose objects must stay
    # collectable.
    freeze_startup_heap = os.environ.get("PRINTSRV_FREEZE_STARTUP_HEAP") == "on"
    watch_pool(installation.db.engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Installation]]:
        # Serve nothing older than the start: the cached config may predate a change
        # committed just before it (the refresher's first read comes a moment later). With
        # the database away the refresher keeps trying; a config too old is refused.
        with contextlib.suppress(errors.DatabaseUnavailable):
            await in_thread(installation.config.refresh)
        refreshers = [
            asyncio.create_task(installation.config.keep_fresh()),
            asyncio.create_task(installation.monitor.keep_fresh()),
            asyncio.create_task(run_tracker(installation)),
            asyncio.create_task(run_job_runner(installation)),
            asyncio.create_task(run_agent_service(installation)),
            asyncio.create_task(idempotency.keep_purged(installation)),
            asyncio.create_task(keep_swept(installation)),
            asyncio.create_task(quotas.run_allocator(installation)),
        ]
        # Other processes' changes: wakes the loops above and empties the caches.
        installation.notifications.start()
        if freeze_startup_heap:
            # What startup built (modules, mappers, config) lives as long as the process.
            # Frozen out of the cyclic collector, it is no longer walked by every full
            # collection, each of which stopped all requests for 50-100 ms under load
            # (bench/jsonrpc_status p99).
            gc.collect()
            gc.freeze()
        try:
            # Lifespan state reaches every request, mounted sub-applications included.
            yield {"installation": installation}
        finally:
            for task in refreshers:
                task.cancel()
            await asyncio.gather(*refreshers, return_exceptions=True)
            # in_thread waits for its thread even when cancelled: once the refreshers are
            # gathered, none of their threads holds a connection the pool is about to close.
            await in_thread(installation.notifications.stop)
            installation.document_log.clear()
            installation.db.dispose()

    app = Starlette(
        routes=[
            # First: the router tries routes in order, and monitoring polls this one most.
            Route("/jsonrpc/v1", jsonrpc.endpoint, methods=["POST"]),
            Route("/jsonrpc", jsonrpc.endpoint, methods=["POST"]),
            Mount(REST_PREFIX, app=create_rest_app()),
            Route("/xmlrpc/v1", xmlrpc.endpoint, methods=["POST"]),
            # LibreOffice Online's path, and Collabora's newer name for it.
            *(
                Route(path, convert.convert_to, methods=["POST"])
                for prefix in ("/lool", "/cool")
                for path in (f"{prefix}/convert-to", f"{prefix}/convert-to/{{format}}")
            ),
            Route("/metrics", metrics, methods=["GET"]),
            *web_routes(),
        ],
        exception_handlers={HTTPException: _http_error, errors.PrintsrvError: _service_error},
        middleware=[
            # Outermost, so that even a refused request gets an id, a log line and a count.
            Middleware(RequestObserver, access_log_enabled=access_log_enabled),
            Middleware(HeaderLimitMiddleware),
        ],
        lifespan=lifespan,
    )
    return app
