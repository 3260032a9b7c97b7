"""Finding a REST route: by the first segment of its path, then in order within that resource.

Starlette's Router tries every route in turn, and each try slices the path and runs a
regular expression. With the REST routes in one flat list, a poll of `/jobs/{key}` paid for
16 failed tries before its own: about a fifth of the app's own time per request
(bench/jobs.py, GET /jobs/{key}, profiled in-process). Grouped by resource, a request tries
only the routes of its resource, in their order, so the precedence within a resource
(`/documents/print` before `/documents/{ref}`) is as declared.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import Match, Route
from starlette.types import Scope


def resource_of(path: str) -> str:
    """The first segment of a path below the mount point: `/jobs/ab12` -> `jobs`."""
    return path[1:].partition("/")[0]


def path_below_mount(scope: Scope) -> str:
    """The request path below where the REST app is mounted (`root_path`)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


class ResourceRoutes:
    """The REST routes, grouped by the first segment of their path.

    `match` finds a request's route as Starlette's Router would, trying only the routes of
    the request's resource: the first full match (path and method) wins; a path that
    matches only with another method is 405 with `Allow`; anything else is 404. Slashes are
    not redirected: a REST client is answered 404 rather than sent on a redirect it may
    not follow. Every endpoint is an `async def view(request) -> Response`, called by the
    REST app itself (`RestApp`), which is why a sync or ASGI endpoint is refused here.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.by_resource: dict[str, list[Route]] = {}
        for route in self.routes:
            if not inspect.iscoroutinefunction(route.endpoint):
                raise TypeError(f"REST route {route.path}: the endpoint must be an async view")
            self.by_resource.setdefault(resource_of(route.path), []).append(route)

    def match(self, scope: Scope) -> Route:
        """The request's route; its path parameters and the route are put in the scope.

        Raises HTTPException 404 (no route has the path) or 405 (none has the method).
        """
        wrong_method: Route | None = None
        for route in self.by_resource.get(resource_of(path_below_mount(scope)), ()):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                scope["route"] = route
                return route
            if match is Match.PARTIAL and wrong_method is None:
                wrong_method = route
        if wrong_method is not None:
            allowed = ", ".join(wrong_method.methods or ())
            raise HTTPException(status_code=405, headers={"Allow": allowed})
        raise HTTPException(status_code=404)
