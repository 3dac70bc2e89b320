"""Headless Chromium for the tests that drive the Temporal UI (a module that imports this
is skipped, saying why, when `playwright` or /usr/bin/chromium is missing).

The `playwright` package from PyPI drives the system browser
(`executable_path="/usr/bin/chromium"`, Debian's `chromium` package), so nothing is
downloaded (`playwright install` is never needed). The UI is a single-page app that
fills itself in from API calls after load and renders Markdown in iframes:
Playwright's locators and `expect` wait for the condition itself, with a timeout,
and reach into iframes. Test modules import Playwright's names from here, so the
skip comes before any import of `playwright`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

try:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        Locator,
        Page,
        async_playwright,
        expect,
    )
except ImportError:
    pytest.skip(
        "the `playwright` Python package is not installed (pip install playwright; "
        "no browser download needed, the test uses /usr/bin/chromium)",
        allow_module_level=True,
    )

__all__ = [
    "CHROMIUM",
    "UI_TIMEOUT_MS",
    "Browser",
    "BrowserContext",
    "Locator",
    "Page",
    "chromium",
    "expect",
    "new_page",
]

CHROMIUM = Path("/usr/bin/chromium")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"{CHROMIUM} is missing or not executable (apt-get install chromium)",
        allow_module_level=True,
    )

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The UI fetches a news feed from temporal.io: keep the browser off the network.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
UI_TIMEOUT_MS = 15_000
"""How long a page may take to show what is asserted. The UI is a single-page app that
loads its code, then its data, after the page: about 2 s here, more on a busy machine.
Passed to every `expect` (whose own default is 5 s) and set as the page's default."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def new_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser context (no shared storage, such as a codec endpoint an
    earlier page set in the UI), dates in UTC."""
    context = await browser.new_context(
        viewport={"width": 1400, "height": 1000}, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()
