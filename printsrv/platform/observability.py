"""Watching a running server: request ids, access and application logs, Prometheus metrics.

Every request gets an id (a sane incoming `X-Request-Id` is kept, else a new one), which
goes back in the `X-Request-Id` header and into every log line written while the request
runs. With PRINTSRV_LOG_FORMAT=json each log line is one JSON object. Nothing here ever
logs headers, bodies or query strings, which is where credentials travel.

Metrics follow the Prometheus conventions. With several workers, prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `printsrv serve`) adds them up across
processes; figures kept in the database (ledger rows) are read at scrape time instead
(operations/metrics.py).
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import json
import logging
import os
import random
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
)
from sqlalchemy import Engine, Pool, event

if TYPE_CHECKING:  # types only: platform imports no domain and no web framework at run time
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("printsrv.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_REQUESTS = Counter(
    "printsrv_http_requests", "HTTP requests answered", ["api", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "printsrv_http_request_duration_seconds",
    "Time to answer a request",
    ["api", "route"],
    buckets=LATENCY_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "printsrv_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)


def api_of(path: str) -> str:
    """Which API a path belongs to, for metric labels."""
    for prefix, name in (
        ("/restful/", "rest"),
        ("/jsonrpc", "jsonrpc"),
        ("/xmlrpc", "xmlrpc"),
        ("/user", "web"),
        ("/metrics", "metrics"),
    ):
        if path.startswith(prefix):
            return name
    return "other"


class RequestObserver:
    """Pure ASGI middleware: request id, one access log line, request metrics."""

    def __init__(self, app: ASGIApp, *, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An id must be unique, not secret: 128 random bits from `random` (reseeded in each
        # forked worker) cost a tenth of an os.urandom system call.
        request_id = _incoming_id(scope["headers"]) or f"{random.getrandbits(128):032x}"
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            api = api_of(path)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_TALLY.add(api, scope.get("method", ""), route, status, elapsed)
            if self.access_log_enabled:
                client = scope.get("client") or ("", 0)
                access_log.info(
                    "%s %s %s %.1fms",
                    scope.get("method"),
                    path,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": client[0],
                    },
                )
            REQUEST_ID.reset(token)


def _incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            return incoming if _SANE_ID.match(incoming) else None
    return None


FLUSH_INTERVAL = 1.0  # seconds: how late a request may show in the metrics


class RequestTally:
    """This process's request counts and latencies, tallied in plain dicts and handed to
    prometheus_client at most once a second.

    Why not count each request into prometheus_client directly: under `printsrv serve`
    (multiprocess mode) every increment takes a lock, checks the process id and writes an
    mmap'ed file, and a request took three of them plus the histogram's bucket search in
    Python: about a tenth of a REST poll's instructions in-process (docs/performance.md).
    Tallied here, the figures reach prometheus_client once a second (a timer on the event
    loop, set only while something is pending, so an idle worker never wakes for it), and
    at once before a scrape (`flush`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # tests run several servers, each on its own loop
        self._counts: dict[tuple[str, str, str, int], int] = {}
        # (api, route) -> [sum of seconds, count per bucket..., count above the last]
        self._latencies: dict[tuple[str, str], list[float]] = {}
        self._due: float | None = None  # monotonic time the pending figures are due

    def add(self, api: str, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (from the event loop)."""
        with self._lock:
            key = (api, method, route, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            tally = self._latencies.get((api, route))
            if tally is None:
                tally = self._latencies[(api, route)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            tally[0] += seconds
            tally[bisect.bisect_left(LATENCY_BUCKETS, seconds) + 1] += 1
            due = self._due
        now = time.monotonic()
        # A timer set on a loop that has since stopped never fires: set another.
        if due is None or now > due + 5 * FLUSH_INTERVAL:
            self._due = now + FLUSH_INTERVAL
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Hand every pending figure to prometheus_client."""
        with self._lock:
            counts, self._counts = self._counts, {}
            latencies, self._latencies = self._latencies, {}
            self._due = None
        for (api, method, route, status), count in counts.items():
            HTTP_REQUESTS.labels(api, method, route, str(status)).inc(count)
        for (api, route), tally in latencies.items():
            histogram = HTTP_LATENCY.labels(api, route)
            # What `observe` does per request, once per bucket: its sum and its
            # (non-cumulative) bucket counters, the last being +Inf.
            histogram._sum.inc(tally[0])
            for bucket, count in zip(histogram._buckets, tally[1:], strict=True):
                if count:
                    bucket.inc(count)


REQUEST_TALLY = RequestTally()


_WATCHED_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


def watch_pool(engine: Engine) -> None:
    """Keep the pool gauge current from the pool's own checkout and checkin events.

    The gauge moves only when a connection does, instead of on every request, most of
    which (systemStatus polls) never touch the database.
    """
    pool = engine.pool

    def update(*_: object) -> None:
        checkedout = getattr(pool, "checkedout", None)
        DB_POOL_IN_USE.set(int(checkedout()) if callable(checkedout) else 0)

    if pool in _WATCHED_POOLS:  # tests build several apps over one installation
        return
    _WATCHED_POOLS.add(pool)
    event.listen(pool, "checkout", update)
    event.listen(pool, "checkin", update)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and extras."""

    _EXTRAS = ("method", "path", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        for key in self._EXTRAS:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain format, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{text} [{request_id}]" if request_id else text


def logging_config(log_format: str | None = None) -> dict[str, Any]:
    """A logging.config dictionary for uvicorn and printsrv (PRINTSRV_LOG_FORMAT=json|text)."""
    log_format = (log_format or os.environ.get("PRINTSRV_LOG_FORMAT") or "text").lower()
    formatter = (
        {"()": "printsrv.platform.observability.JsonFormatter"}
        if log_format == "json"
        else {
            "()": "printsrv.platform.observability.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "": {"handlers": ["default"], "level": "INFO"},
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
