"""The console's People & money section in a real browser (headless Chromium), each page
checked by axe-core: finding users, a user's page, adjusting a balance through the ledger,
enabling and disabling, a new UUID, groups and SHARED accounts. A refused input is shown
beside its field, and nothing changes."""

from __future__ import annotations

from decimal import Decimal

from admin_support import AdminBrowser, assert_accessible, submit_and_wait
from selenium.webdriver.support.ui import Select
from sqlalchemy import func, select
from web_support import give_credit

import financial
from financial import AccountTrx
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.group_defaults import GroupDefaults


def seed_people(installation: Installation, count: int = 30) -> None:
    """`count` pupils (pupil00 ...) in group pupils, and janet with an alias and a card."""
    with installation.db.transaction() as session:
        users.add_group(session, "pupils")
        for n in range(count):
            users.add_user(session, f"pupil{n:02d}", full_name=f"Pupil Number {n}")
            users.add_member(session, "pupils", f"pupil{n:02d}")
        users.add_user(
            session, "janet", full_name="Janet Doe", email="jd@school.example", password="pw 12345"
        )
        users.set_user_fields(session, "janet", card_number="CARD-77aa", hasher=installation.hasher)
        users.add_member(session, "pupils", "janet")
        users.add_alias(session, "s123456", "janet")
    give_credit(installation, "janet", "10.00", "Opening credit")


def ledger_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(AccountTrx)) or 0


def balance(installation: Installation, kind: str, name: str) -> Decimal:
    with installation.db.read() as session:
        return financial.get_account(session, kind, name).balance


def names_listed(admin_browser: AdminBrowser) -> list[str]:
    return [row.text for row in admin_browser.find_all("#users tbody tr td:first-child")]


def test_an_admin_finds_a_user_and_adjusts_their_balance(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    seed_people(installation)

    # All users, a page at a time, sorted by name.
    driver = admin_browser.open("/admin/people")
    assert_accessible(driver)
    assert names_listed(admin_browser) == ["janet"] + [f"pupil{n:02d}" for n in range(24)]
    submit_and_wait(driver, admin_browser.find("a[rel=next]"))
    assert names_listed(admin_browser) == [f"pupil{n:02d}" for n in range(24, 30)]
    assert not admin_browser.find_all("a[rel=next]")

    # By the start of the full name, the email, the card (any case), or the name.
    for query in ("janet d", "JD@school", "card-77", "jan"):
        admin_browser.open("/admin/people")
        admin_browser.find("#q").send_keys(query)
        submit_and_wait(driver, admin_browser.find("form[role=search] button"))
        assert names_listed(admin_browser) == ["janet"], query
    # LIKE's wildcards are plain characters.
    admin_browser.open("/admin/people?q=%25")
    assert admin_browser.find("#no-users").text == "No user matches."
    # Bad input beside the field.
    admin_browser.open("/admin/people?q=" + "x" * 101)
    assert "longer than 100" in admin_browser.find("#q-error").text
    assert admin_browser.find("#q").get_attribute("aria-invalid") == "true"

    # The user's page: groups, aliases, balance, credit limit, ledger.
    admin_browser.open("/admin/people?q=janet")
    submit_and_wait(driver, admin_browser.find("#users a"))
    assert driver.current_url.endswith("/admin/people/users/janet")
    assert_accessible(driver)
    assert admin_browser.find("#user-groups").text == "pupils"
    assert admin_browser.find("#user-aliases").text == "s123456"
    assert admin_browser.find("#user-balance").text == "10.00"
    assert "Opening credit" in admin_browser.find("#ledger").text

    # A bad amount, then a missing comment: shown beside the field, nothing written.
    before = ledger_rows(installation)
    admin_browser.find("#amount").send_keys("2,50")
    admin_browser.find("#comment").send_keys("Lost a page")
    submit_and_wait(driver, admin_browser.find("#adjust-form button"))
    assert "amount" in admin_browser.find("#amount-error").text
    assert admin_browser.find("#amount").get_attribute("aria-invalid") == "true"
    assert admin_browser.find("#comment").get_attribute("value") == "Lost a page"
    assert_accessible(driver)
    amount = admin_browser.find("#amount")
    amount.clear()
    amount.send_keys("2.50")
    admin_browser.find("#comment").clear()
    submit_and_wait(driver, admin_browser.find("#adjust-form button"))
    assert "say why" in admin_browser.find("#comment-error").text
    assert ledger_rows(installation) == before
    assert balance(installation, "USER", "janet") == Decimal("10.00")

    # A good one: one ADJUST row, by this admin, with the comment.
    admin_browser.find("#comment").send_keys("Paper jam refund")
    submit_and_wait(driver, admin_browser.find("#adjust-form button"))
    assert admin_browser.find("#user-notice").text == "The balance was adjusted."
    assert admin_browser.find("#user-balance").text == "12.50"
    assert balance(installation, "USER", "janet") == Decimal("12.50")
    with installation.db.read() as session:
        row = session.scalars(select(AccountTrx).order_by(AccountTrx.id.desc())).first()
        assert row is not None
        assert (row.trx_type, row.amount, row.comment) == (
            "ADJUST",
            Decimal("2.50"),
            "Paper jam refund",
        )
        assert (row.actor_kind, row.actor_name) == ("admin", "admin-web:chief")
    first_row = admin_browser.find("#ledger tbody tr")
    assert "Paper jam refund" in first_row.text and "admin:admin-web:chief" in first_row.text


def test_an_admin_disables_a_user_and_gives_them_a_new_uuid(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    seed_people(installation, count=1)
    driver = admin_browser.open("/admin/people/users/s123456")  # an alias leads to the user
    assert admin_browser.find("h1").text.startswith("janet")

    submit_and_wait(driver, admin_browser.find("#toggle-enabled"))
    assert admin_browser.find("#user-notice").text == "The user was disabled."
    assert admin_browser.find("#user-state").text == "disabled"
    with installation.db.read() as session:
        assert not users.get_user(session, "janet").enabled
    submit_and_wait(driver, admin_browser.find("#toggle-enabled"))
    assert admin_browser.find("#user-state").text == "enabled"

    submit_and_wait(driver, admin_browser.find("#regenerate-uuid"))
    credential = admin_browser.find("#new-uuid").text
    assert len(credential) == 36
    assert_accessible(driver)
    with installation.db.read() as session:
        janet = users.get_user(session, "janet")
        assert janet.uuid_hash == installation.hasher.digest(credential)  # only its hash
    admin_browser.open("/admin/people/users/janet")
    assert credential not in driver.page_source  # shown once

    # A user who does not exist: the console's error page, 404.
    admin_browser.open("/admin/people/users/nobody")
    assert "does not exist" in driver.page_source


def test_groups_and_shared_accounts(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    seed_people(installation, count=2)
    with installation.db.transaction() as session:
        users.change_group_defaults(session, "pupils", GroupDefaults(initial_credit=Decimal(5)))

    driver = admin_browser.open("/admin/people/groups")
    assert_accessible(driver)
    assert "pupils" in admin_browser.find("#groups").text
    submit_and_wait(driver, admin_browser.find("#groups a"))
    assert_accessible(driver)
    assert [a.text for a in admin_browser.find_all("#members li a")] == [
        "janet",
        "pupil00",
        "pupil01",
    ]
    assert admin_browser.find("#group-initial").text == "5.00"

    # Its defaults: an individual limit without its amount is refused beside the field.
    Select(admin_browser.find("#credit_limit_policy")).select_by_value("INDIVIDUAL")
    submit_and_wait(driver, admin_browser.find("#defaults-form button"))
    assert "must be given" in admin_browser.find("#credit_limit-error").text
    assert_accessible(driver)
    admin_browser.find("#credit_limit").send_keys("7.50")
    submit_and_wait(driver, admin_browser.find("#defaults-form button"))
    assert admin_browser.find("#group-notice").text == "The defaults were saved."
    assert admin_browser.find("#group-limit").text == "individual 7.50"
    with installation.db.read() as session:
        group = users.get_group(session, "pupils")
        assert (group.credit_limit_policy, group.credit_limit) == ("INDIVIDUAL", Decimal("7.50"))
        assert group.initial_credit == Decimal("5.00")  # left as it was

    # Membership: a user who does not exist is refused beside the field; add, then remove.
    admin_browser.find("#member").send_keys("nobody")
    submit_and_wait(driver, admin_browser.find("#member-form button"))
    assert "nobody" in admin_browser.find("#member-error").text
    assert admin_browser.find("#member").get_attribute("aria-invalid") == "true"
    assert_accessible(driver)
    with installation.db.transaction() as session:
        users.add_user(session, "newcomer")
    field = admin_browser.find("#member")
    field.clear()
    field.send_keys("newcomer")
    submit_and_wait(driver, admin_browser.find("#member-form button"))
    assert admin_browser.find("#group-notice").text == "Added newcomer."
    with installation.db.read() as session:
        assert "newcomer" in users.list_members(session, "pupils")
    assert balance(installation, "USER", "newcomer") == Decimal("5.00")  # the group's default
    submit_and_wait(driver, admin_browser.find("li[data-member=pupil00] button"))
    assert admin_browser.find("#group-notice").text == "Removed pupil00."
    with installation.db.read() as session:
        assert users.list_members(session, "pupils") == ["janet", "newcomer", "pupil01"]

    driver = admin_browser.open("/admin/people/shared")
    assert_accessible(driver)
    admin_browser.find("#name").send_keys("Library")
    submit_and_wait(driver, admin_browser.find("#new-account-form button"))
    assert admin_browser.find("#shared-notice").text == "Created Library."
    # The same name again: refused beside the field.
    admin_browser.find("#name").send_keys("Library")
    submit_and_wait(driver, admin_browser.find("#new-account-form button"))
    assert admin_browser.find("#name-error").text
    assert_accessible(driver)

    before = ledger_rows(installation)
    admin_browser.find("#amount").send_keys("ten")
    admin_browser.find("#comment").send_keys("Budget")
    submit_and_wait(driver, admin_browser.find("#adjust-form button"))
    assert admin_browser.find("#amount-error").text
    assert ledger_rows(installation) == before
    amount = admin_browser.find("#amount")
    amount.clear()
    amount.send_keys("100")
    submit_and_wait(driver, admin_browser.find("#adjust-form button"))
    assert admin_browser.find("#shared-notice").text == "Adjusted Library."
    assert "100.00" in admin_browser.find("#shared-accounts").text
    assert balance(installation, "SHARED", "Library") == Decimal("100.00")
