"""Fixtures shared by the end-to-end tests: the admin console's browser and server
(tests/e2e/admin_support.py)."""

from __future__ import annotations

from admin_support import admin_browser, admin_server, chromium, chromium_process

__all__ = ["admin_browser", "admin_server", "chromium", "chromium_process"]
