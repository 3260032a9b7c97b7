"""Support for the People, Printing and Reports browser tests of the admin console."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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
