"""Support for the People, Printing and Reports browser tests of the admin console."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from admin_support import submit_and_wait

T = TypeVar("T")


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


def again_if_detached(action: Callable[[], T]) -> T:
    """`action()`, tried again (up to three times) when Chromium answers "Node with given id
    does not belong to the document": right after axe-core has run on a page, the first
    look-up now and then gets a node of a document axe made and dropped (seen under load).
    The action must find its elements itself, so a new try finds them anew."""
    from selenium.common.exceptions import WebDriverException

    for attempt in range(3):
        try:
            return action()
        except WebDriverException as error:
            if "does not belong to the document" not in str(error) or attempt == 2:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")
