"""The OpenAPI description of /restful/v1 is the routes', and cannot drift from them:
every route served is described with its methods, nothing described is not served, and a
route added without a declaration stops the description from being built at all."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from printsrv.rest import RestApp, rest_routes
from printsrv.rest.openapi import (
    ACCESS,
    OPERATIONS,
    Undescribed,
    describe,
    page_html,
    served_description,
)

INTEGER = {"type": "integer", "minimum": 0}


def served_operations() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every operation the REST app dispatches (HEAD aside)."""
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in RestApp().routes
        for method in route.methods or ()
        if method != "HEAD"
    }


def described_operations() -> set[tuple[str, str]]:
    document = json.loads(served_description())
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_every_route_is_described_with_its_methods_and_nothing_else_is() -> None:
    served = served_operations()
    described = described_operations()

    assert served - described == set(), "routes missing from the description"
    assert described - served == set(), "described operations no route serves"
    assert len(described) == len(OPERATIONS) >= 27


def test_path_parameters_come_from_the_routes_with_their_types() -> None:
    document = json.loads(served_description())

    pdf = document["paths"]["/agent/jobs/{job}/pdf"]["get"]["parameters"]
    job = {k: v for k, v in pdf[0].items() if k != "description"}
    assert job == {"name": "job", "in": "path", "required": True, "schema": INTEGER}
    for path, item in document["paths"].items():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            named = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert named == in_path, path


def test_a_route_without_a_declaration_stops_the_description() -> None:
    async def view(request: object) -> None: ...

    routes = [*rest_routes(), Route("/reports/secret", view, methods=["GET"])]

    with pytest.raises(Undescribed, match=r"GET /reports/secret"):
        describe(routes)


def test_a_declaration_without_a_route_stops_the_description() -> None:
    routes = [route for route in rest_routes() if route.path != "/release"]

    with pytest.raises(Undescribed, match=r"\('POST', '/release'\)"):
        describe(routes)


def test_the_description_is_valid_openapi_3_1_with_resolvable_references() -> None:
    document = json.loads(served_description())

    assert document["openapi"] == "3.1.0"
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(document)
    for name in set(re.findall(r'"#/components/schemas/(\w+)"', text)):
        assert name in document["components"]["schemas"], name


def test_who_may_call_decides_the_security_and_its_refusals() -> None:
    document = json.loads(served_description())

    balance = document["paths"]["/financial/balance"]["get"]
    assert balance["security"] == [{"user": []}]
    assert {"401", "403", "503"} <= set(balance["responses"])
    version = document["paths"]["/system/version"]["get"]
    assert version["security"] == [] and set(version["responses"]) == {"200"}
    agent = document["paths"]["/agent/jobs/next"]["get"]
    assert agent["security"] == [{"agentToken": [], "agentName": []}]
    assert set(ACCESS) >= {operation.access for operation in OPERATIONS.values()}


def test_the_page_lists_every_operation_without_scripts() -> None:
    document = json.loads(served_description())

    page = page_html(document)

    assert "<script" not in page.lower() and "http" not in page.split("</title>")[0]
    for path, item in document["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in page
