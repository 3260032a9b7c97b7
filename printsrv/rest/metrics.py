"""GET /metrics: the Prometheus exposition (platform/observability.py), for the REST admin."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from printsrv.http import installation_of
from printsrv.operations.metrics import render_metrics
from printsrv.platform.threads import in_thread
from printsrv.rest.guards import require_admin


async def metrics(request: Request) -> Response:
    """GET /metrics, for the REST admin only (Basic credentials and address allowlist)."""
    require_admin(request)
    body = await in_thread(render_metrics, installation_of(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
