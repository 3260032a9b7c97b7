"""Helpers for the XML-RPC token and web-app tests: people, TTP settings, credit, logins,
and a release from the user's page in a real browser."""

from __future__ import annotations

import contextlib
import xmlrpc.client
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import inspect
from support import LiveServer, set_config

import financial
from printsrv.operations.installation import Installation
from printsrv.people import users

API_KEY = "lms-api-key-0123456789"
PASSWORD = "correct horse battery staple"


def enable_ttp(installation: Installation, *, expiry_ms: int = 60_000) -> None:
    """Token logins on, with API_KEY, tokens living `expiry_ms`."""
    set_config(
        installation,
        {
            "web-login.ttp.enable": "Y",
            "web-login.ttp.apikey": API_KEY,
            "web-login.ttp.token.expiry-msecs": str(expiry_ms),
        },
    )


def add_person(
    installation: Installation,
    name: str = "janet",
    *,
    full_name: str = "Janet Jones",
    alias: str | None = None,
    password: str | None = PASSWORD,
) -> str:
    """A user of the internal user source; returns the user name."""
    with installation.db.transaction() as session:
        users.add_user(session, name, full_name=full_name, password=password)
        if alias:
            users.add_alias(session, alias, name)
    return name


@contextlib.contextmanager
def accounting_tables(installation: Installation) -> Iterator[None]:
    """The accounting core's tables, for as long as the test needs them.

    They have no migration yet; this creates the ones missing and drops only those, so it
    keeps working unchanged once a migration creates them.
    """
    engine = installation.db.engine
    existing = set(inspect(engine).get_table_names())
    created = [t for t in financial.metadata.sorted_tables if t.name not in existing]
    financial.metadata.create_all(engine, tables=created)
    try:
        yield
    finally:
        financial.metadata.drop_all(engine, tables=created)


def give_credit(installation: Installation, user_name: str, amount: str, comment: str) -> None:
    """Deposit `amount` on the user's account, through the ledger."""
    with installation.db.transaction() as session:
        account = financial.get_or_create_user_account(session, user_name)
        financial.adjust_balance(
            session,
            account=account,
            amount=Decimal(amount),
            comment=comment,
            actor=financial.Actor("admin", "test"),
            trx_type=financial.TrxType.DEPOSIT,
        )


def proxy(server: LiveServer) -> xmlrpc.client.ServerProxy:
    """An XML-RPC client of the server, as an LMS plugin would use; close it (`with`)."""
    return xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/v1")


def create_token(server: LiveServer, user_name: str, api_key: str = API_KEY) -> str:
    """onetime-auth.createToken over XML-RPC."""
    with proxy(server) as client:
        token = getattr(client, "onetime-auth").createToken(api_key, user_name)
    assert isinstance(token, str)
    return token


def token_login(
    client: httpx.Client, server: LiveServer, auth_user: str, auth_token: str
) -> httpx.Response:
    """POST /user with the two hidden fields an LMS page submits (no redirect followed)."""
    return client.post(
        f"{server.url}/user",
        data={"auth_user": auth_user, "auth_token": auth_token},
        follow_redirects=False,
    )


def release_in_browser(
    driver: Any,
    url: str,
    *,
    user: str,
    password: str,
    document_id: int,
    printer: str,
    copies: int,
) -> str:
    """Log in to the user's page at ``url`` in a real browser (Selenium), release a held
    document to ``printer`` with the form's button, and return the notice the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{url}/user")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.NAME, "password").submit()
    form = WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, f"release-{document_id}"))
    )
    Select(form.find_element(By.NAME, "printer")).select_by_value(printer)
    field = form.find_element(By.NAME, "copies")
    field.clear()
    field.send_keys(str(copies))
    driver.find_element(By.ID, f"release-button-{document_id}").click()
    notice = WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, "release-notice"))
    )
    return str(notice.text)
