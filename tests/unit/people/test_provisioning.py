"""printsrv/people/provisioning.py: a user, their credentials and their account, changed by
an administrator in one transaction (JSON-RPC's addInternalUser and setUserProperties)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import financial
from printsrv.errors import NotAuthenticated, NotFound
from printsrv.operations.installation import Installation
from printsrv.people import provisioning, users
from printsrv.people.users import UserChanges

UUID = "97008e2c-d8b2-11e9-aa13-406186940c49"


def test_provisioning_creates_a_user_and_then_updates_them(installation: Installation) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        created = provisioning.provision_user(
            session, "Janet", UserChanges(full_name="Janet"), hasher=hasher
        )
        again = provisioning.provision_user(
            session, "janet", UserChanges(email="j@example.org"), hasher=hasher
        )
        janet = users.get_user(session, "janet")
        assert (created, again) == (True, False)
        assert (janet.full_name, janet.email) == ("Janet", "j@example.org")


def test_provisioning_restores_a_deleted_user(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        users.delete_user(session, "janet")
        assert not provisioning.provision_user(
            session, "janet", UserChanges(), hasher=installation.hasher
        )
        assert users.find_user(session, "janet") is not None


def test_a_given_uuid_becomes_the_users_credential(installation: Installation) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        provisioning.provision_user(session, "janet", UserChanges(uuid=UUID), hasher=hasher)
        assert users.authenticate_uuid(session, "janet", UUID, hasher=hasher).user_name == "janet"
        assert users.get_user(session, "janet").uuid_created_at is not None


def test_a_removed_uuid_lets_nobody_in_unless_one_is_given_with_it(
    installation: Installation,
) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        provisioning.provision_user(session, "janet", UserChanges(uuid=UUID), hasher=hasher)
        removed = UserChanges(uuid="")
        provisioning.update_user(session, "janet", UserChanges(), removals=removed, hasher=hasher)
        with pytest.raises(NotAuthenticated):
            users.authenticate_uuid(session, "janet", UUID, hasher=hasher)
        provisioning.update_user(
            session, "janet", UserChanges(uuid=UUID), removals=removed, hasher=hasher
        )
        users.authenticate_uuid(session, "janet", UUID, hasher=hasher)


def test_account_changes_set_the_balance_and_the_credit_limit(installation: Installation) -> None:
    money = provisioning.AccountChanges(Decimal("5"), "2.50", "welcome", "jsonrpc 127.0.0.1")
    with installation.db.transaction() as session:
        provisioning.provision_user(
            session, "janet", UserChanges(), account=money, hasher=installation.hasher
        )
        account = financial.get_account(session, "USER", "janet")
        assert (account.balance, account.credit_limit) == (Decimal("5"), Decimal("2.5"))
        [row] = financial.latest_transactions(session, account, 5)
        assert (row.comment, row.actor_name) == ("welcome", "jsonrpc 127.0.0.1")


def test_updating_someone_unknown_is_not_found(installation: Installation) -> None:
    with installation.db.transaction() as session, pytest.raises(NotFound):
        provisioning.update_user(session, "nobody", UserChanges(), hasher=installation.hasher)
