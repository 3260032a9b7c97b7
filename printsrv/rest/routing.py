"""Finding a REST route: by the first segment of its path, then in order within that resource.

Starlette's Router tries every route in turn, and each try slices the path and runs a
regular expression. With the REST routes in one flat list, a poll of `/jobs/{key}` paid for
16 failed tries before its own: about a fifth of the app's own time per request
(bench/jobs.py, GET /jobs/{key}, profiled in-process). Grouped by resource, a request tries
only the routes of its resource, in their order, so the precedence within a resource
(`/documents/print` before `/documents/{ref}`) is as declared.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send


def resource_of(path: str) -> str:
    """The first segment of a path below the mount point: `/jobs/ab12` -> `jobs`."""
    return path[1:].partition("/")[0]


def path_below_mount(scope: Scope) -> str:
    """The request path below where this router is mounted (Mount sets `root_path`)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


class ResourceRouter(Router):
    """A Router that tries only the routes of the request's first path segment.

    Unmatched requests go to Starlette's usual `not_found` (an HTTPException the REST
    exception handlers render in the envelope). A path that matches a route but not its
    method gets 405 with `Allow`, as from Starlette's Router. Slashes are not redirected:
    a REST client is answered 404 rather than sent on a redirect it may not follow.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        super().__init__(routes=list(routes), redirect_slashes=False)
        self.by_resource: dict[str, list[BaseRoute]] = {}
        for route in routes:
            self.by_resource.setdefault(resource_of(route.path), []).append(route)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.by_resource.get(resource_of(path_below_mount(scope)), ()):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)
