"""accounts.currency_settings: the config amounts scaled by a change of base currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support import set_config

from printsrv.accounts import service as accounting
from printsrv.accounts.currency_settings import amount_properties
from printsrv.errors import InvalidInput
from printsrv.operations.installation import Installation
from printsrv.platform import properties as config

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
