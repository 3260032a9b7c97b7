"""`create_app()`: the one ASGI application that serves every printsrv API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

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
from printsrv.platform.observability import REQUEST_TALLY, RequestObserver, watch_pool
from printsrv.platform.threads import in_thread
from printsrv.printing.tracker import run_tracker
from printsrv.release.expiry import keep_swept
from printsrv.rest import convert, create_rest_app
from printsrv.rest import responses as rest_responses
from printsrv.rest.metrics import metrics
from printsrv.rpc import jsonrpc, xmlrpc
from printsrv.web import web_routes
from printsrv.web.admin import admin_routes

REST_ROOT = "/restful/v1"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path == REST_ROOT or request.url.path.startswith(REST_ROOT + "/"):
        # A REST path the mount cannot take (an encoded newline in it: the mount's pattern
        # stops at line ends) is still answered in REST's envelope (schemathesis found it).
        return await rest_responses.handle_http_error(request, exc)
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


class ApiDispatcher:
    """Hands the requests of the APIs other systems call straight to their adapters: REST by
    its prefix, JSON-RPC and XML-RPC by their paths. The rest go on to Starlette's exception
    middleware and router (the web app, convert-to, metrics, and other methods: 405).

    Found by a prefix test and a dictionary instead of the router's try of each route in
    turn (a regular expression each), these requests also skip a layer of exception
    handling and the mount: their adapters answer every error in their own envelope.
    In-process instruction counts of a REST poll: docs/performance.md. It sits inside the
    request middleware, so these requests get their id, log line, metrics and header limit.
    """

    def __init__(self, app: ASGIApp, *, rest: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.rest = rest
        self.routes = {route.path: (route, _endpoint_app(route.endpoint)) for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root_path: str = scope.get("root_path", "")
            path: str = scope["path"]
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :]
            if path.startswith(REST_ROOT + "/"):
                # What Starlette's Mount would set: the REST app routes below its prefix.
                scope["app_root_path"] = scope.get("app_root_path", root_path)
                scope["root_path"] = root_path + REST_ROOT
                await self.rest(scope, receive, send)
                return
            found = self.routes.get(path)
            if found is not None and scope["method"] in (found[0].methods or ()):
                route, endpoint = found
                scope["route"] = route
                try:
                    await endpoint(scope, receive, send)
                except errors.PrintsrvError as error:
                    # Before any answer (no config to trust, say), as the router's handler.
                    await PlainTextResponse(error.message + "\n", answer_for(error).status)(
                        scope, receive, send
                    )
                return
        await self.app(scope, receive, send)


def _endpoint_app(endpoint: Callable[..., Any]) -> ASGIApp:
    """An endpoint as an ASGI app: a `view(request) -> Response` is called and its answer
    sent; an ASGI app (JSON-RPC's) is itself."""
    if not inspect.iscoroutinefunction(endpoint):
        return cast(ASGIApp, endpoint)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


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
            REQUEST_TALLY.flush()

    rest = create_rest_app()
    api_routes = [
        Route("/jsonrpc/v1", jsonrpc.endpoint, methods=["POST"]),
        Route("/jsonrpc", jsonrpc.endpoint, methods=["POST"]),
        Route("/xmlrpc/v1", xmlrpc.endpoint, methods=["POST"]),
    ]
    app = Starlette(
        routes=[
            # ApiDispatcher hands these to their adapters before the router; listed here
            # too for what goes on to the router (their other methods: 405).
            *api_routes,
            Mount(REST_ROOT, app=rest),
            # LibreOffice Online's path, and Collabora's newer name for it.
            *(
                Route(path, convert.convert_to, methods=["POST"])
                for prefix in ("/lool", "/cool")
                for path in (f"{prefix}/convert-to", f"{prefix}/convert-to/{{format}}")
            ),
            Route("/metrics", metrics, methods=["GET"]),
            *web_routes(),
            *admin_routes(),
        ],
        exception_handlers={HTTPException: _http_error, errors.PrintsrvError: _service_error},
        middleware=[
            # Outermost, so that even a refused request gets an id, a log line and a count.
            Middleware(RequestObserver, access_log_enabled=access_log_enabled),
            Middleware(HeaderLimitMiddleware),
            Middleware(ApiDispatcher, rest=rest, routes=api_routes),
        ],
        lifespan=lifespan,
    )
    return app
