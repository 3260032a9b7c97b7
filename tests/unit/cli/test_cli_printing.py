"""`printsrv printer ...` and `printsrv queue ...` against a private cupsd (CliRunner)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from printing_support import (
    PrintSetup,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
)

from printsrv.cli import main
from printsrv.platform.environment import Environment
from printsrv.printing.models import Printer
from printsrv.printing.printers import cost_from_json


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = run(*args)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _env(process_env: Environment) -> None:
    """Every command here runs against this test's installation."""


def test_every_verb_has_help() -> None:
    for verb in (
        ["printer", "sync"],
        ["printer", "list"],
        ["printer", "show"],
        ["printer", "cost"],
        ["queue", "add"],
        ["queue", "list"],
        ["queue", "show"],
        ["queue", "enable"],
        ["queue", "disable"],
        ["queue", "set"],
    ):
        assert "Usage:" in ok(*verb, "--help"), verb


def test_printer_sync_list_and_show(printing_setup: PrintSetup) -> None:  # noqa: F811
    printing_setup.cups.add_queue("extra", "null")
    try:
        output = ok("printer", "sync")
        assert "added: extra" in output
        listed = ok("printer", "list")
        for name in ("capture", "extra", "fail", "null"):
            assert name in listed
        shown = ok("printer", "show", "capture")
        assert "copies:       1-9999" in shown
        assert "two-sided-long-edge" in shown
        assert "cost:         free" in shown
    finally:
        printing_setup.cups.remove_queue("extra")
    assert "no longer on CUPS: extra" in ok("printer", "sync")
    assert "gone" in ok("printer", "list")
    code, output = run("printer", "show", "nope")
    assert code == 1 and "Printer 'nope' is not known" in output


def test_printer_cost_per_side(printing_setup: PrintSetup) -> None:  # noqa: F811
    output = ok(
        "printer", "cost", "capture", "--per-side", "0.10", "--per-side-color", "0.50",
        "--per-side-duplex", "0.08",
    )  # fmt: skip
    assert "one-sided 0.100000 gray / 0.500000 colour" in output
    with printing_setup.installation.db.read() as session:
        row = session.query(Printer).filter_by(name="capture").one()
        model = cost_from_json(row.cost_model)
    assert model is not None
    assert model.default.two_sided_gray == Decimal("0.08")
    assert model.default.two_sided_color == Decimal("0.50")
    code, output = run("printer", "cost", "capture", "--per-side", "-1")
    assert code == 1 and "negative" in output
    code, output = run("printer", "cost", "capture", "--per-side", "0.1234567")
    assert code != 0 and "6 decimal places" in output
    code, output = run("printer", "cost", "capture")
    assert code == 2 and "--per-side" in output


def test_printer_cost_per_media(printing_setup: PrintSetup, tmp_path: Path) -> None:  # noqa: F811
    table = {"one-sided": {"grayscale": "0.10", "color": "0.40"},
             "two-sided": {"grayscale": "0.08", "color": "0.30"}}  # fmt: skip
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"default": table, "iso_a3_297x420mm": table}))
    output = ok("printer", "cost", "capture", "--media-costs", str(path))
    assert "iso_a3_297x420mm: one-sided 0.100000 gray" in output
    path.write_text(json.dumps({"iso_a3_297x420mm": table}))
    code, output = run("printer", "cost", "capture", "--media-costs", str(path))
    assert code == 1 and "needs a 'default' entry" in output
    code, output = run("printer", "cost", "capture", "--media-costs", str(path), "--per-side", "1")
    assert code == 2


def test_queue_lifecycle(printing_setup: PrintSetup) -> None:  # noqa: F811
    assert "webservice" in ok("queue", "list")
    output = ok(
        "queue", "add", "Lab", "--printer", "capture", "--ipp-options",
        '{"sides": "two-sided-long-edge"}', "--ip-allowed", "10.0.0.0/8, 192.168.1.7",
    )  # fmt: skip
    assert "Queue 'lab' added: routing printer capture" in output
    shown = ok("queue", "show", "lab")
    assert "routing:     printer capture" in shown
    assert '"sides": "two-sided-long-edge"' in shown
    assert "10.0.0.0/8, 192.168.1.7" in shown
    assert "disabled" in ok("queue", "disable", "lab")
    assert "enabled:     no" in ok("queue", "show", "lab")
    assert "enabled" in ok("queue", "enable", "lab")
    assert "routing none (hold)" in ok("queue", "set", "lab", "--no-printer")
    assert "routing printer null" in ok("queue", "set", "lab", "--printer", "null")
    assert "allowed (all)" in ok("queue", "set", "lab", "--ip-allowed", "")
    code, output = run("queue", "add", "lab")
    assert code == 1 and "already exists" in output


def test_queue_refusals(printing_setup: PrintSetup) -> None:  # noqa: F811
    code, output = run("queue", "add", "q1", "--ipp-options", '{"sides": "three-sided"}')
    assert code == 1 and "one-sided, two-sided-long-edge" in output
    code, output = run("queue", "add", "q1", "--printer", "capture", "--ipp-options", "{bad")
    assert code == 1 and "not JSON" in output
    code, output = run("queue", "add", "q1", "--ip-allowed", "10.0.0.0/33")
    assert code == 1 and "10.0.0.0/33" in output
    code, output = run("queue", "add", "../etc")
    assert code == 1 and "Queue name" in output
    code, output = run("queue", "add", "webservice")
    assert code == 1 and "reserved" in output
    code, output = run("queue", "set", "webservice", "--printer", "capture")
    assert code == 1 and "cannot route" in output
    code, output = run("queue", "set", "q1", "--printer", "capture", "--no-printer")
    assert code == 2
    code, output = run("queue", "show", "nowhere")
    assert code == 1 and "does not exist" in output
    # The reserved queue can be disabled and allowlisted like any other.
    assert "disabled" in ok("queue", "disable", "webservice")
    assert "allowed 127.0.0.1" in ok("queue", "set", "webservice", "--ip-allowed", "127.0.0.1")
