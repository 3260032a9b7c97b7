"""The internal user source: users, aliases, passwords, UUIDs, groups (printsrv/people/users.py)."""

from __future__ import annotations

import pytest

from printsrv.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from printsrv.operations.installation import Installation
from printsrv.people import users


def test_user_names_are_case_insensitive_and_stored_lower_case(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "  Janet ", full_name="Janet J", email="janet@example.edu")
    with installation.db.read() as session:
        assert users.get_user(session, "JANET").user_name == "janet"
    with pytest.raises(Conflict, match="already exists"), installation.db.transaction() as session:
        users.add_user(session, "janet")


@pytest.mark.parametrize("name", ["", "   ", "jan et", "jan:et", "a/b", "x" * 101, "tab\there"])
def test_unusable_user_names_are_refused(installation: Installation, name: str) -> None:
    with pytest.raises(InvalidInput), installation.db.transaction() as session:
        users.add_user(session, name)
    with installation.db.read() as session:
        assert users.count_users(session) == 0


def test_aliases_map_to_the_user_everywhere(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        users.add_alias(session, "S12345", "rijk")
    with installation.db.read() as session:
        assert users.resolve_user_name(session, "s12345") == "rijk"
        assert users.get_user(session, "S12345").user_name == "rijk"
        assert users.resolve_user_name(session, "unknown") == "unknown"


def test_alias_cannot_shadow_a_user_or_another_alias(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        users.add_user(session, "janet")
        users.add_alias(session, "r1", "rijk")
    with pytest.raises(Conflict, match="is a user name"), installation.db.transaction() as s:
        users.add_alias(s, "janet", "rijk")
    with pytest.raises(Conflict, match="already maps"), installation.db.transaction() as s:
        users.add_alias(s, "R1", "janet")
    with pytest.raises(Conflict, match="alias"), installation.db.transaction() as s:
        users.add_user(s, "r1")


def test_password_check(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "janet", password="AzFi7I-pass")
        users.add_user(session, "nopass")
    with installation.db.transaction() as session:
        assert users.check_password(session, "JANET", "AzFi7I-pass") is not None
        assert users.check_password(session, "janet", "azfi7i-pass") is None
        assert users.check_password(session, "nobody", "AzFi7I-pass") is None
        assert users.check_password(session, "nopass", "") is None
        users.set_enabled(session, "janet", False)
        assert users.check_password(session, "janet", "AzFi7I-pass") is None


def test_password_is_stored_as_an_argon2_hash(installation: Installation) -> None:
    with installation.db.transaction() as session:
        user = users.add_user(session, "janet", password="AzFi7I-pass")
        assert user.password_hash and user.password_hash.startswith("$argon2")
        assert "AzFi7I-pass" not in user.password_hash


def test_uuid_credential_authenticates_until_regenerated(installation: Installation) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        first = users.issue_uuid(session, "janet", hasher=hasher)
    with installation.db.transaction() as session:
        assert users.authenticate_uuid(session, "Janet", first.upper(), hasher=hasher)
        assert first not in (users.get_user(session, "janet").uuid_hash or "")
        second = users.issue_uuid(session, "janet", hasher=hasher)
    with installation.db.read() as session:
        assert users.authenticate_uuid(session, "janet", second, hasher=hasher)
        with pytest.raises(NotAuthenticated, match="Unknown user or wrong UUID"):
            users.authenticate_uuid(session, "janet", first, hasher=hasher)
        with pytest.raises(NotAuthenticated, match="Unknown user or wrong UUID"):
            users.authenticate_uuid(session, "nobody", second, hasher=hasher)


def test_disabled_user_cannot_use_their_uuid(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        credential = users.issue_uuid(session, "janet", hasher=installation.hasher)
        users.set_enabled(session, "janet", False)
    with pytest.raises(NotAuthenticated), installation.db.read() as session:
        users.authenticate_uuid(session, "janet", credential, hasher=installation.hasher)


def test_user_without_uuid_cannot_authenticate_with_an_empty_one(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
    with pytest.raises(NotAuthenticated), installation.db.read() as session:
        users.authenticate_uuid(session, "janet", "", hasher=installation.hasher)


def test_user_refs_are_found_in_one_query_by_name_or_alias(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        users.add_alias(session, "S12345", "rijk")
        users.add_user(session, "janet")
        users.set_enabled(session, "janet", False)
        users.add_user(session, "gone")
        users.delete_user(session, "gone")
    with installation.db.read() as session:
        rijk, alias, janet, gone, unknown, unusable = users.find_user_refs(
            session, " RIJK ", "s12345", "janet", "gone", "nobody", "a/b"
        )
    assert rijk == alias
    assert rijk is not None and (rijk.user_name, rijk.enabled) == ("rijk", True)
    assert janet is not None and (janet.user_name, janet.enabled) == ("janet", False)
    assert (gone, unknown, unusable) == (None, None, None)


def test_a_user_ref_passes_the_uuid_check_as_the_user_does(installation: Installation) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        credential = users.issue_uuid(session, "janet", hasher=hasher)
    with installation.db.read() as session:
        (janet,) = users.find_user_refs(session, "janet")
    users.check_uuid(janet, credential.upper(), hasher=hasher)
    assert "uuid" not in repr(janet).lower()  # the digest stays out of logs and tracebacks
    for user, given in ((janet, "wrong"), (None, credential)):
        with pytest.raises(NotAuthenticated, match="Unknown user or wrong UUID"):
            users.check_uuid(user, given, hasher=hasher)


def test_groups_and_members(installation: Installation) -> None:
    with installation.db.transaction() as session:
        for name in ("janet", "rijk"):
            users.add_user(session, name)
        users.add_group(session, "Staff")
        users.add_group(session, "empty")
        users.add_member(session, "staff", "RIJK")
        users.add_member(session, "staff", "janet")
    with installation.db.read() as session:
        assert users.list_members(session, "STAFF") == ["janet", "rijk"]
        assert [(g.name, g.members) for g in users.list_groups(session)] == [
            ("empty", 0),
            ("staff", 2),
        ]
        assert [g.name for g in users.get_user(session, "janet").groups] == ["staff"]
    with pytest.raises(Conflict), installation.db.transaction() as session:
        users.add_member(session, "staff", "janet")
    with pytest.raises(NotFound), installation.db.transaction() as session:
        users.add_member(session, "nogroup", "janet")
