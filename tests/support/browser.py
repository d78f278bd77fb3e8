"""A real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; never a downloaded
browser) and a page that records every console error, uncaught exception and Content-Security-Policy
violation, so that a test can assert there were none."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# No GPU, no sandbox (containers, root), and nothing that would reach the network by itself;
# shared memory in /tmp, since containers often give /dev/shm only 64 MiB.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
# Runs before any script of the page: CSP violations are events, not always console messages.
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless; fails (never skips) when it is not installed."""
    executable = shutil.which("chromium") or CHROMIUM
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class WatchedPage:
    """A page and what went wrong in it."""

    page: Page
    context: BrowserContext
    problems: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def violations(self) -> list[str]:
        """CSP violations seen by the page's current document."""
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no CSP violation so far."""
        assert self.problems == [], self.problems
        assert self.violations() == []


def watched_page(browser: Browser, **context_options: Any) -> WatchedPage:
    """A new context and page that record their problems (`context_options`: viewport, credentials…)."""
    context = browser.new_context(**context_options)
    context.add_init_script(_RECORD_VIOLATIONS)
    page = context.new_page()
    watched = WatchedPage(page, context)
    page.on("console", watched.record)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    return watched
