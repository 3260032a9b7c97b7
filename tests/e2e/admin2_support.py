"""Support for the People, Printing and Reports browser tests of the admin console."""

from __future__ import annotations

from typing import Any

from admin_support import submit_and_wait


def submit(driver: Any, button: Any) -> None:
    """Click a form's button, wait until the next page has replaced this one and has loaded.

    `submit_and_wait` returns once the old page is gone; on a busy machine Chromium can
    still be building the new one, and an element read then may belong to no document
    ("Node with given id does not belong to the document").
    """
    from selenium.webdriver.support.ui import WebDriverWait

    submit_and_wait(driver, button)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
