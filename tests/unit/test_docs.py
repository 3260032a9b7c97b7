"""The README documents everything a user can reach: each config property, JSON-RPC method,
REST route and command-line verb (as datasette's test_docs does)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from printsrv.cli import main
from printsrv.platform.properties import PROPERTIES
from printsrv.rpc.jsonrpc_registry import METHODS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def command_paths(group: click.Group, prefix: str = "printsrv") -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("name", [p.name for p in PROPERTIES])
def test_every_config_property_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_jsonrpc_method_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README


@pytest.mark.parametrize("path", command_paths(main))
def test_every_cli_verb_is_in_the_readme(path: str) -> None:
    assert re.search(re.escape(path) + r"\b", README), path


def test_every_rest_route_is_in_the_readme() -> None:
    from printsrv.rest import create_rest_app

    for route in create_rest_app().routes:
        template = re.sub(
            r"\{(\w+)(:\w+)?\}",
            r"[^ \"`]+",
            re.escape(route.path).replace(r"\{", "{").replace(r"\}", "}"),
        )
        assert re.search("/restful/v1" + template, README), route.path
