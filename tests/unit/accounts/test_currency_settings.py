"""accounts.currency_settings: the config amounts, and every other amount stored in the base
currency, scaled by a change of base currency; history left as it was."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from support import set_config

from printsrv.accounts import quotas
from printsrv.accounts import service as accounting
from printsrv.accounts.currency_settings import amount_properties
from printsrv.accounts.models import GroupQuota
from printsrv.documents.models import Document
from printsrv.errors import InvalidInput
from printsrv.operations.installation import Installation
from printsrv.people import group_defaults, users
from printsrv.people.group_defaults import GroupDefaults
from printsrv.platform import properties as config
from printsrv.printing import printers
from printsrv.printing.costs import CostModel, SidePrices
from printsrv.printing.models import Printer, PrintJob, RuledPrint

ADMIN = accounting.admin_actor("test")


def change(installation: Installation, rate: str, *, dry_run: bool) -> str:
    with installation.db.transaction() as session:
        done = accounting.change_base_currency(
            session,
            source="EUR",
            target="USD",
            rate=Decimal(rate),
            actor=ADMIN,
            hasher=installation.hasher,
            dry_run=dry_run,
        )
    return done.summary(done=not dry_run)


def stored(installation: Installation) -> dict[str, Decimal]:
    with installation.db.read() as session:
        return {name: config.read_property(session, name) for name in amount_properties()}


def test_every_amount_property_is_scaled() -> None:
    assert amount_properties() == (
        "financial.credit-limit.default",
        "financial.user.transfers.amount-max",
        "financial.user.transfers.amount-min",
    )


def test_a_dry_run_reports_the_scaling_and_writes_nothing(installation: Installation) -> None:
    set_config(installation, {"financial.credit-limit.default": "2"})
    before = stored(installation)
    summary = change(installation, "2", dry_run=True)
    assert "would scale financial.credit-limit.default 2.000000 -> 4.000000" in summary
    assert stored(installation) == before


def test_a_change_scales_stored_values_and_defaults_alike(installation: Installation) -> None:
    set_config(installation, {"financial.credit-limit.default": "2"})
    change(installation, "2", dry_run=False)
    assert stored(installation) == {
        "financial.credit-limit.default": Decimal("4"),
        "financial.user.transfers.amount-max": Decimal("200"),
        "financial.user.transfers.amount-min": Decimal("0.02"),
    }


def test_a_scaled_amount_its_property_refuses_names_it_and_changes_nothing(
    installation: Installation,
) -> None:
    set_config(installation, {"financial.user.transfers.amount-max": "0.000002"})
    before = stored(installation)
    with pytest.raises(InvalidInput, match=r"financial\.user\.transfers\.amount-max") as refused:
        change(installation, "0.1", dry_run=False)
    assert refused.value.reason == "exchangeRate"
    assert stored(installation) == before
    with installation.db.read() as session:
        assert config.read_property(session, "financial.currency-code") == "EUR"


# -- the other amounts stored in the base currency -------------------------------------------------


def add_stored_amounts(installation: Installation) -> None:
    """Group defaults, a quota, a printer priced per media, one waiting and one decided print,
    and a finished print job: every kind of stored amount, and the history next to it."""
    with installation.db.transaction() as session:
        staff = users.add_group(session, "staff")
        group_defaults.set_group_defaults(
            session,
            staff,
            GroupDefaults(Decimal("5"), "INDIVIDUAL", Decimal("2.50")),
        )
        users.add_group(session, "guests")  # no defaults: nothing to scale, nothing listed
        quotas.set_group_quota(
            session,
            "staff",
            quotas.QuotaTerms(Decimal("3"), "weekly", Decimal("10")),
            actor="admin:test",
            time_zone="UTC",
        )
        session.add_all([Printer(name="lab"), Printer(name="free")])
        session.flush()
        printers.set_cost(
            session,
            "lab",
            CostModel.per_media(
                SidePrices.simple(Decimal("0.10"), per_side_color=Decimal("0.25")),
                {"iso_a3_297x420mm": SidePrices.simple(Decimal("0.20"))},
            ),
        )
        owner = users.add_user(session, "john")
        for state in ("waiting", "approved"):
            doc = Document(
                doc_type="print", user_id=owner.id, pdf_sha256="0" * 64, pdf_bytes=1, pages=1
            )
            session.add(doc)
            session.flush()
            session.add(
                RuledPrint(
                    document_id=doc.id,
                    user_id=owner.id,
                    printer_name="lab",
                    state=state,
                    cost=Decimal("0.30"),
                )
            )
            session.add(
                PrintJob(
                    document_id=doc.id, user_id=owner.id, printer_name="lab", pages=1, sides=1,
                    sheets=1, cost=Decimal("0.10"), state="completed",
                )
            )  # fmt: skip


def stored_amounts(installation: Installation) -> dict[str, object]:
    with installation.db.read() as session:
        staff = users.get_group(session, "staff")
        quota = session.get(GroupQuota, staff.id)
        assert quota is not None
        lab = session.scalar(select(Printer).where(Printer.name == "lab"))
        assert lab is not None
        return {
            "defaults": (staff.initial_credit, staff.credit_limit_policy, staff.credit_limit),
            "quota": (quota.amount, quota.max_accumulation),
            "lab": printers.cost_from_json(lab.cost_model),
            "free": session.scalar(select(Printer.cost_model).where(Printer.name == "free")),
            "ruled": {s: c for s, c in session.execute(select(RuledPrint.state, RuledPrint.cost))},
            "jobs": sorted(session.scalars(select(PrintJob.cost))),
        }


def test_a_change_scales_group_defaults_quotas_prices_and_waiting_quotes_not_history(
    installation: Installation,
) -> None:
    add_stored_amounts(installation)
    summary = change(installation, "1.08", dry_run=False)

    assert stored_amounts(installation) == {
        "defaults": (Decimal("5.4"), "INDIVIDUAL", Decimal("2.7")),
        "quota": (Decimal("3.24"), Decimal("10.8")),
        "lab": CostModel.per_media(
            SidePrices.simple(Decimal("0.108"), per_side_color=Decimal("0.27")),
            {"iso_a3_297x420mm": SidePrices.simple(Decimal("0.216"))},
        ),
        "free": None,
        # A waiting print is priced again at approval; its quote is restated meanwhile. A
        # decided print and a print job are what was charged then, in the old currency.
        "ruled": {"waiting": Decimal("0.324"), "approved": Decimal("0.30")},
        "jobs": [Decimal("0.10"), Decimal("0.10")],
    }
    assert summary.endswith(
        "group staff initial credit 5.000000 -> 5.400000, "
        "group staff credit limit 2.500000 -> 2.700000, "
        "group staff quota 3.000000 -> 3.240000, "
        "group staff quota max-accumulation 10.000000 -> 10.800000, "
        "waiting print 1 cost 0.300000 -> 0.324000, "
        "printer lab prices"
    )
    assert summary.startswith("0 accounts converted")


def test_a_dry_run_lists_the_stored_amounts_it_would_scale_and_writes_none(
    installation: Installation,
) -> None:
    add_stored_amounts(installation)
    before = stored_amounts(installation)
    summary = change(installation, "2", dry_run=True)
    assert "would scale" in summary
    assert "group staff quota 3.000000 -> 6.000000" in summary
    assert summary.endswith("printer lab prices")
    assert stored_amounts(installation) == before


@pytest.mark.parametrize(
    ("rate", "named"),
    [
        # A quota of 0.000001 x 0.1 rounds to zero: a quota must stay above zero.
        ("0.1", r"group staff quota 0\.000001 x 0\.1 would be refused"),
        # A price above printing.costs.MAX_PRICE is refused by the price table.
        ("10000000", r"printer lab prices .* would be refused"),
    ],
)
def test_a_stored_amount_that_would_be_refused_names_it_and_changes_nothing(
    installation: Installation, rate: str, named: str
) -> None:
    add_stored_amounts(installation)
    with installation.db.transaction() as session:
        quota = session.get(GroupQuota, users.get_group(session, "staff").id)
        assert quota is not None
        quota.amount = quota.max_accumulation = Decimal("0.000001")
    before = stored_amounts(installation)
    with pytest.raises(InvalidInput, match=named) as refused:
        change(installation, rate, dry_run=False)
    assert refused.value.reason == "exchangeRate"
    assert stored_amounts(installation) == before
    with installation.db.read() as session:
        assert config.read_property(session, "financial.currency-code") == "EUR"
