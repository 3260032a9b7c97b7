"""Queues and stored printers: names, allowlists, routing options, held-document options,
capabilities and prices round-tripping through the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from printing_support import (
    PrintSetup,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
)

from printsrv.errors import Conflict, InvalidInput, NotAllowed, NotFound
from printsrv.platform.models import utcnow
from printsrv.printing import printers, queues
from printsrv.printing.context import PrintContext
from printsrv.printing.costs import CostModel, SidePrices
from printsrv.printing.errors import OptionRejected
from printsrv.printing.models import PrintQueue
from printsrv.printing.printers import validate_for_any_printer


@pytest.mark.parametrize(
    ("name", "stored"), [("Lab-1", "lab-1"), ("/test/", "test"), ("a.b_c", "a.b_c")]
)
def test_queue_names_are_normalised(name: str, stored: str) -> None:
    assert queues.normalise_queue_name(name) == stored


@pytest.mark.parametrize("name", ["", "../x", "a b", "é", "x" * 101, "-lead"])
def test_bad_queue_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        queues.normalise_queue_name(name)


def _queue(ip_allowed: str = "", enabled: bool = True) -> PrintQueue:
    return PrintQueue(name="q", enabled=enabled, ip_allowed=ip_allowed, ipp_options="{}")


def test_access_follows_the_allowlist_for_ipv4_and_ipv6() -> None:
    queues.check_access(_queue(), "203.0.113.9")  # void allows all
    allowed = _queue("10.0.0.0/8, 2001:db8::/32")
    queues.check_access(allowed, "10.1.2.3")
    queues.check_access(allowed, "2001:db8::1")
    queues.check_access(allowed, "::ffff:10.0.0.1")  # IPv4-mapped
    for outside in ("11.0.0.1", "2001:db9::1", ""):
        with pytest.raises(NotAllowed):
            queues.check_access(allowed, outside)
    with pytest.raises(NotAllowed, match="disabled"):
        queues.check_access(_queue(enabled=False), "10.1.2.3")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "not JSON"),
        ("[]", "JSON object"),
        ('"copies"', "JSON object"),
        ('{"copies": NaN}', "NaN is not a valid JSON value"),
        ("[" * 100_000, "not JSON|nests too deeply"),
        (str({f"a{i}": "1" for i in range(40)}).replace("'", '"'), "more than 32"),
    ],
)
def test_ipp_options_json_is_checked(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        queues.parse_ipp_options(text)


def test_empty_ipp_options_mean_none() -> None:
    assert queues.parse_ipp_options(None) == {} == queues.parse_ipp_options("  ")


def test_held_options_are_checked_against_standard_values() -> None:
    checked = validate_for_any_printer(
        {"copies": "02", "sides": "two-sided-short-edge", "media": "iso_a3_297x420mm"}
    )
    assert checked == {"copies": "2", "sides": "two-sided-short-edge", "media": "iso_a3_297x420mm"}
    with pytest.raises(OptionRejected, match="1-9999"):
        validate_for_any_printer({"copies": "10000"})
    with pytest.raises(OptionRejected, match="PWG media name"):
        validate_for_any_printer({"media": "A4; rm -rf /"})
    with pytest.raises(OptionRejected, match="unknown attribute"):
        validate_for_any_printer({"finishings": "4"})


def test_routing_options_are_validated_against_the_printer(
    printing_setup: PrintSetup,  # noqa: F811
) -> None:
    with printing_setup.installation.db.transaction() as session:
        with pytest.raises(OptionRejected, match=r"supported: .*iso_a4_210x297mm"):
            queues.add_queue(session, "bad", printer="capture", ipp_options={"media": "iso_z9"})
        with pytest.raises(NotFound, match="printer sync"):
            queues.add_queue(session, "ghost", printer="no-such-printer")
        queue = queues.add_queue(session, "lab", printer="capture", ipp_options={"copies": "3"})
        assert queues.routing_options(queue) == {"copies": "3"}
        # Only what is given changes.
        changed = queues.set_queue(session, "lab", ip_allowed="10.0.0.0/8")
        assert changed.printer_name == "capture" and queues.routing_options(changed) == {
            "copies": "3"
        }
        held = queues.set_queue(session, "lab", printer=None)
        assert held.printer_name is None and queues.routing_options(held) == {"copies": "3"}
        with pytest.raises(Conflict, match="cannot route"):
            queues.set_queue(session, "webservice", printer="capture")
        assert [q.name for q in queues.list_queues(session)] == ["lab", "webservice"]


def test_printer_capabilities_and_prices_round_trip(
    printing_setup: PrintSetup,  # noqa: F811
) -> None:
    model = CostModel.per_media(
        SidePrices.simple(Decimal("0.1"), per_side_color=Decimal("0.5")),
        {"iso_a3_297x420mm": SidePrices.simple(Decimal("0.2"))},
    )
    with printing_setup.installation.db.transaction() as session:
        printers.set_cost(session, "capture", model)
    with printing_setup.installation.db.read() as session:
        row = printers.get_printer(session, "capture")
        info = printers.info_from_row(row)
        assert printers.cost_from_json(row.cost_model) == model
    # The stored form equals what CUPS says.
    fresh = PrintContext.of(printing_setup.installation).cups.printer_sync("capture")
    assert info == fresh


def test_a_slow_sync_does_not_mark_a_printer_added_meanwhile_as_gone(
    printing_setup: PrintSetup,  # noqa: F811
) -> None:
    # A tracker asked CUPS for its printers, then `printer add` stored a new queue, then the
    # tracker's listing (without it) arrived: the newer row must win.
    client = PrintContext.of(printing_setup.installation).cups
    listed_at = utcnow()
    stale_listing = client.list_printers_sync()
    printing_setup.cups.add_queue("late", "null")
    try:
        with printing_setup.installation.db.transaction() as session:
            printers.store_printer(session, client.printer_sync("late"))
        with printing_setup.installation.db.transaction() as session:
            result = printers.sync_printers(session, stale_listing, listed_at=listed_at)
        assert "late" not in result.gone
        with printing_setup.installation.db.read() as session:
            assert printers.get_printer(session, "late").present
        # A listing asked for after the row was stored still marks a vanished printer gone.
        printing_setup.cups.remove_queue("late")
        count, result = printers.sync_with_cups(printing_setup.installation.db, client)
        assert result.gone == ("late",) and count == len(stale_listing)
        with printing_setup.installation.db.read() as session:
            assert not printers.get_printer(session, "late").present
    finally:
        if "late" in {p.name for p in client.list_printers_sync()}:
            printing_setup.cups.remove_queue("late")
