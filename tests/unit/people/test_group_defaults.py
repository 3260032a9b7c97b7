"""printsrv.people.group_defaults: which group's defaults a member's new account gets, and when."""

from __future__ import annotations

from decimal import Decimal

import pytest

import financial
from printsrv.errors import InvalidInput
from printsrv.operations.installation import Installation
from printsrv.people import group_defaults, users
from printsrv.people.group_defaults import GroupDefaults
from printsrv.people.models import UserGroupMember


def _groups(installation: Installation, defaults: dict[str, GroupDefaults]) -> None:
    with installation.db.transaction() as session:
        for name, values in defaults.items():
            group_defaults.set_group_defaults(session, users.add_group(session, name), values)


def _join_all_then_apply(installation: Installation, user_name: str, *groups: str) -> tuple:
    """Memberships written together (as a sync does), then the defaults applied once."""
    with installation.db.transaction() as session:
        user = users.add_user(session, user_name)
        for name in groups:
            session.add(
                UserGroupMember(group_id=users.get_group(session, name).id, user_id=user.id)
            )
        session.flush()
        chosen = group_defaults.apply_group_defaults(session, user)
        account = financial.get_account(session, "USER", user_name)
        return (
            chosen.name if chosen else None,
            account.balance,
            account.credit_limit_policy,
            account.credit_limit,
        )


def test_the_highest_initial_credit_wins_whatever_the_order(installation: Installation) -> None:
    _groups(
        installation,
        {
            "a-small": GroupDefaults(Decimal("1"), "INDIVIDUAL", Decimal("9")),
            "b-big": GroupDefaults(Decimal("4"), "DEFAULT"),
            "c-limit-only": GroupDefaults(
                credit_limit_policy="INDIVIDUAL", credit_limit=Decimal(2)
            ),
        },
    )
    expected = ("b-big", Decimal("4"), "DEFAULT", None)
    assert _join_all_then_apply(installation, "u1", "a-small", "b-big", "c-limit-only") == expected
    assert _join_all_then_apply(installation, "u2", "c-limit-only", "b-big", "a-small") == expected


def test_equal_initial_credits_are_decided_by_group_name(installation: Installation) -> None:
    _groups(
        installation,
        {"zulu": GroupDefaults(Decimal("2"), "DEFAULT"), "alpha": GroupDefaults(Decimal("2"))},
    )
    assert _join_all_then_apply(installation, "u1", "zulu", "alpha") == (
        "alpha",
        Decimal("2"),
        "NONE",
        None,
    )


def test_groups_without_defaults_give_nothing(installation: Installation) -> None:
    _groups(installation, {"plain": GroupDefaults()})
    assert _join_all_then_apply(installation, "u1", "plain") == (None, Decimal(0), "NONE", None)


def test_an_account_with_an_admin_credit_limit_is_not_new(installation: Installation) -> None:
    _groups(installation, {"staff": GroupDefaults(Decimal("5"))})
    with installation.db.transaction() as session:
        users.add_user(session, "u1")
        account = financial.get_account(session, "USER", "u1")
        financial.set_credit_limit(session, account, "DEFAULT")
        users.add_member(session, "staff", "u1")
        assert account.balance == 0


@pytest.mark.parametrize(
    "defaults",
    [
        GroupDefaults(initial_credit=Decimal("-1")),
        GroupDefaults(credit_limit_policy="INDIVIDUAL"),
        GroupDefaults(credit_limit_policy="NONE", credit_limit=Decimal("1")),
        GroupDefaults(credit_limit_policy="INDIVIDUAL", credit_limit=Decimal("-1")),
    ],
)
def test_bad_defaults_are_refused(installation: Installation, defaults: GroupDefaults) -> None:
    with installation.db.transaction() as session, pytest.raises(InvalidInput):
        group_defaults.set_group_defaults(session, users.add_group(session, "g"), defaults)


@pytest.mark.parametrize(
    ("defaults", "reason", "message"),
    [
        (
            GroupDefaults(initial_credit=Decimal("-1")),
            "userGroup.accounting.balance",
            "must not be negative (it is the credit new members start with)",
        ),
        (
            GroupDefaults(credit_limit_policy="SOME"),
            "userGroup.accounting.creditLimit",
            "must be NONE, DEFAULT or INDIVIDUAL",
        ),
        (
            GroupDefaults(credit_limit=Decimal("1")),
            "userGroup.accounting.creditLimit",
            "must be INDIVIDUAL with an amount",
        ),
        (
            GroupDefaults(credit_limit_policy="DEFAULT", credit_limit=Decimal("1")),
            "userGroup.accounting.creditLimitAmount",
            "is only used with creditLimit INDIVIDUAL, not DEFAULT",
        ),
        (
            GroupDefaults(credit_limit_policy="INDIVIDUAL", credit_limit=Decimal("-1")),
            "userGroup.accounting.creditLimitAmount",
            "must not be negative",
        ),
    ],
)
def test_each_refusal_of_defaults_names_the_field_it_is_about(
    defaults: GroupDefaults, reason: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        group_defaults.check_defaults(defaults)
    assert refused.value.reason == reason
    assert refused.value.message == f"Parameter {reason!r} {message}"


def test_bad_defaults_are_refused_before_the_group_is_looked_up(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session, pytest.raises(InvalidInput):
        users.change_group_defaults(session, "nobody", GroupDefaults(Decimal("-1")))


def test_defaults_are_stored_on_the_group_named(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_group(session, "staff")
        defaults = GroupDefaults(Decimal("5"), "INDIVIDUAL", Decimal("2"))
        group = users.change_group_defaults(session, "STAFF", defaults)
        assert (group.initial_credit, group.credit_limit_policy, group.credit_limit) == (
            Decimal("5"),
            "INDIVIDUAL",
            Decimal("2"),
        )
