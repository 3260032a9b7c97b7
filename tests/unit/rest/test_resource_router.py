"""The REST sub-application finds routes by resource and answers every miss in the envelope."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from printsrv.rest import RestApp, rest_routes
from printsrv.rest.routing import resource_of


async def named(request: Request) -> Response:
    return JSONResponse({"route": request.scope["route"].path, **request.path_params})


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


ROUTES = [
    Route("/documents", named, methods=["GET"]),
    Route("/documents/print", named, methods=["POST"]),
    Route("/documents/{ref}", named, methods=["GET"]),
    Route("/documents/{ref}/pdf", named, methods=["GET"]),
    Route("/financial/account/balance", named, methods=["GET"]),
    Route("/financial/account/balance", named, methods=["POST"]),
    Route("/jobs/{key}", named, methods=["GET"]),
    Route("/broken", broken, methods=["GET"]),
]


class Client:
    """Requests to the REST sub-app mounted as in printsrv, in this thread (no server)."""

    def __init__(self) -> None:
        self.app = Starlette(routes=[Mount("/restful/v1", app=RestApp(ROUTES))])

    def request(self, method: str, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path)

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str) -> httpx.Response:
        return self.request("POST", path)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)


@pytest.fixture
def client() -> Client:
    return Client()


def test_a_resource_is_the_first_path_segment() -> None:
    assert resource_of("/jobs/abc/files/x.pdf") == "jobs"
    assert resource_of("/documents") == "documents"
    assert resource_of("/") == ""


def test_every_real_route_belongs_to_a_resource() -> None:
    assert all(resource_of(route.path) for route in rest_routes())


def test_a_request_reaches_the_route_of_its_resource(client: Client) -> None:
    answer = client.get("/restful/v1/jobs/k3y")
    assert answer.json() == {"route": "/jobs/{key}", "key": "k3y"}
    assert (client.get("/restful/v1/documents")).json() == {"route": "/documents"}
    assert (client.get("/restful/v1/documents/7/pdf")).json()["route"] == "/documents/{ref}/pdf"


def test_a_full_match_wins_over_a_method_mismatch(client: Client) -> None:
    # GET /documents/print is the document named "print", as with Starlette's own router.
    answer = client.get("/restful/v1/documents/print")
    assert answer.json() == {"route": "/documents/{ref}", "ref": "print"}


def test_two_methods_on_one_path_each_reach_their_route(client: Client) -> None:
    assert (client.get("/restful/v1/financial/account/balance")).status_code == 200
    assert (client.post("/restful/v1/financial/account/balance")).status_code == 200


def test_a_wrong_method_is_405_with_allow_in_the_envelope(client: Client) -> None:
    answer = client.delete("/restful/v1/jobs/k3y")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}  # in no set order
    assert answer.json() == {
        "succes": False,
        "error": "Method DELETE is not allowed on /restful/v1/jobs/k3y",
    }


@pytest.mark.parametrize(
    "path", ["/restful/v1/nothing", "/restful/v1/jobs", "/restful/v1/documents/"]
)
def test_a_miss_is_404_in_the_envelope(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json() == {"succes": False, "error": f"No REST service at {path}"}


def test_a_bug_is_500_in_the_envelope_and_its_traceback_is_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="printsrv.rest.responses"):
        answer = client.get("/restful/v1/broken")
    (record,) = caplog.records
    assert record.exc_info is not None and "a bug" in str(record.exc_info[1])
    assert "GET /restful/v1/broken" in record.getMessage()
    assert answer.status_code == 500
    assert answer.json() == {
        "succes": False,
        "error": "Internal error; the server log has the details",
    }
