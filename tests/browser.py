"""The browser for the pages' tests (tests/test_browser.py): Debian's Chromium driven by Playwright, and the
checks every page must pass in it.

One Chromium is launched for the whole session, from `/usr/bin/chromium` (`make test` installs it where it
is missing; Playwright's own browser download is not used). Each test opens fresh contexts of its own
(cookies, viewport, time zone, JavaScript on or off), closed when it ends. Nothing waits a fixed time:
Playwright's `expect` retries until its timeout, which is generous for a busy two-core machine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright, expect

from policy.models import Role
from starter.api.auth import TokenRules
from starter.web.sessions import sign_in_link
from tests.conftest import Api, in_ledger
from tests.factories import DESCRIPTION
from tests.test_api import new_customer, place_order
from tests.test_email import link_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Without the background-networking flags Chromium reaches for Google's hosts, which a closed network
refuses (and a test must not depend on)."""

SCREENSHOTS = Path(__file__).parents[1] / ".data" / "screenshots"
"""Where the run leaves its screenshots: the checkout's `.data/`, which git ignores."""

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=375, height=740)
WAIT_MS = 30_000
"""How long an `expect` or an action waits for the page before it fails: long, so a busy machine is slow,
not red."""
LEDGER_WAIT = 30
"""Seconds to wait for the ledger's projection, which the worker writes just after the workflow acts."""


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """The session's one Chromium. Missing, it fails the tests that need it (never skips them)."""
    if not await asyncio.to_thread(CHROMIUM.is_file):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: run `make test`, which installs it "
            "(apt-get install chromium), or install it yourself"
        )
    expect.set_options(timeout=WAIT_MS)
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), timeout=60_000
        )
        try:
            yield browser
        finally:
            await browser.close()
    finally:
        await playwright.stop()


NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture
async def contexts(chromium: Browser) -> AsyncIterator[NewContext]:
    """Opens a fresh browser context (a desktop viewport, English, unless told otherwise); every one opened
    is closed when the test ends."""
    opened: list[BrowserContext] = []

    async def new(**options: Any) -> BrowserContext:
        context = await chromium.new_context(**({"viewport": DESKTOP, "locale": "en-US"} | options))
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        opened.append(context)
        return context

    yield new
    for context in opened:
        await context.close()


async def new_page(contexts: NewContext, **options: Any) -> Page:
    """A page in a context of its own."""
    return await (await contexts(**options)).new_page()


# ---------------------------------------------------------------------------------------- the people


async def sign_in_with_token(page: Page, api: Api, sub: str = "alice") -> None:
    """Support signs in through the console's form with a support token, and lands on the queue."""
    await page.goto(f"{api.base_url}/console/sign-in")
    await page.get_by_label("Support token").fill(api.token(Role.SUPPORT, sub))
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Queue")
    await expect(page.get_by_text(f"Signed in as {sub}")).to_be_visible()


def console_link(api: Api, sub: str = "bob", lifetime: timedelta = timedelta(minutes=10)) -> str:
    """A one-time console sign-in link, as `make run` and `refund-desk console-link` print."""
    return sign_in_link(api.base_url, TokenRules(secret=api.secret), sub, lifetime, now=datetime.now(UTC))


def customer_link(api: Api, complaint_id: str, customer_id: str, **changes: Any) -> str:
    """The link of the customer's email (`dispatch.links.customer_link`), as the dispatcher makes it."""
    return link_for(api, {"complaint_id": complaint_id, "customer_id": customer_id}, **changes)


async def file_about(api: Api, order: dict[str, Any]) -> str:
    """The order's customer files a major-defect complaint about it; its id, once the ledger has it (the
    queue is the ledger's)."""
    filed = await api.customer(order["customer_id"]).post(
        "/v1/complaints",
        json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert filed.status_code == 201, filed.text
    complaint_id: str = filed.json()["complaint_id"]
    await in_ledger(api.desk.ledger, complaint_id, seconds=LEDGER_WAIT)
    return complaint_id


async def new_complaint(api: Api, amount: str = "50.00") -> tuple[str, dict[str, Any]]:
    """A fresh customer's order and the complaint about it: (complaint id, order)."""
    order = await place_order(api, new_customer(), amount)
    return await file_about(api, order), order


async def support_acts(api: Api, complaint_id: str, action: str, body: dict[str, Any]) -> None:
    """Support acts through the API (to set a scene; the tests' own steps go through the pages)."""
    answer = await api.support().post(f"/v1/complaints/{complaint_id}/{action}", json=body)
    assert answer.status_code == 200, answer.text


ACCESS = {"scope": "SSH to the shop's web host", "reason": "to read the licensing module's logs"}
OFFER = {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "54.00"}


async def screenshot(page: Page, name: str) -> Path:
    """The whole page, saved as `.data/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


# ------------------------------------------------------------------------------- what a page must pass

UNNAMED = """() => {
  const named = (el) => {
    if ((el.getAttribute("aria-label") || "").trim()) return true;
    const by = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    if (by.some((id) => (document.getElementById(id)?.textContent || "").trim())) return true;
    if (el.labels && [...el.labels].some((label) => label.textContent.trim())) return true;
    return (el.tagName === "BUTTON" || el.tagName === "A") && el.textContent.trim() !== "";
  };
  const checked = [...document.querySelectorAll("input, select, textarea, button, a[href]")]
    .filter((el) => el.type !== "hidden" && el.checkVisibility());
  return {
    checked: checked.length,
    unnamed: checked.filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 160)),
  };
}"""
"""Every visible form control, button and link, and those of them a screen reader could not name."""

DETACHED = """() => [...document.querySelectorAll('input[type="checkbox"], input[type="radio"]')]
  .filter((el) => el.checkVisibility())
  .filter((el) => {
    const box = el.getBoundingClientRect();
    return ![...el.labels].some((label) => {
      const line = label.getBoundingClientRect();
      return line.top < box.bottom && box.top < line.bottom;
    });
  })
  .map((el) => el.outerHTML.slice(0, 160))"""
"""Checkboxes and radio buttons whose label is not on their line: which box goes with which words must be
seen at a glance."""

HEADINGS = """() => [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
  .filter((h) => h.checkVisibility())
  .map((h) => [Number(h.tagName[1]), h.textContent.trim()])"""

KEY = """(el) => {
  if (!el || el === document.body) return null;
  const form = el.form ? el.form.getAttribute("action") || "" : "";
  if (el.type === "radio") return `radio|${form}|${el.name}`;
  const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60);
  return [el.tagName, form, el.id, el.name || "", el.getAttribute("href") || "", text].join("|");
}"""
"""What identifies an element across the queue's refresh (which redraws its rows): a radio group is one
stop for the Tab key (the arrow keys move within it), so it is one key."""

INTERACTIVE = f"""() => {{
  const key = {KEY};
  const wanted = 'a[href], button, input:not([type="hidden"]), select, textarea, '
    + '[tabindex]:not([tabindex="-1"])';
  return [...new Set([...document.querySelectorAll(wanted)]
    .filter((el) => !el.disabled && el.checkVisibility())
    .map(key))];
}}"""

FOCUSED = f"() => ({KEY})(document.activeElement)"


@dataclass(frozen=True)
class PageReport:
    """What the accessibility checks found on one page."""

    controls: int
    unnamed: list[str]
    detached: list[str]
    headings: list[tuple[int, str]]
    interactive: set[str]
    reached: set[str]

    def heading_problems(self) -> list[str]:
        """Exactly one h1, first; no level skipped on the way down."""
        levels = [level for level, _ in self.headings]
        problems = []
        if levels.count(1) != 1 or not levels or levels[0] != 1:
            problems.append(f"one h1, first: {self.headings}")
        for (before, _), (level, text) in zip(self.headings, self.headings[1:], strict=False):
            if level > before + 1:
                problems.append(f"h{before} is followed by h{level} ({text!r})")
        return problems


async def reached_by_tab(page: Page) -> tuple[set[str], set[str]]:
    """Every link, button and form control of the page, and those pressing Tab from the top reached."""
    interactive = set(await page.evaluate(INTERACTIVE))
    reached: set[str] = set()
    for _ in range(2 * len(interactive) + 10):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is not None:
            reached.add(focused)
        if interactive <= reached:
            break
    return interactive, reached


async def examine(page: Page, url: str) -> PageReport:
    """Open `url` fresh and run every check on it."""
    await page.goto(url)
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    names = await page.evaluate(UNNAMED)
    detached = await page.evaluate(DETACHED)
    headings = [(int(level), str(text)) for level, text in await page.evaluate(HEADINGS)]
    interactive, reached = await reached_by_tab(page)
    return PageReport(names["checked"], names["unnamed"], detached, headings, interactive, reached)


async def scroll_width(page: Page) -> int:
    width: int = await page.evaluate("() => document.documentElement.scrollWidth")
    return width


async def times_shown(page: Page) -> list[tuple[str, str]]:
    """Every `<time>` of the page: (its `datetime` attribute, its text)."""
    found: list[list[str]] = await page.evaluate(
        """() => [...document.querySelectorAll("time")]
             .map((t) => [t.getAttribute("datetime"), t.textContent.trim()])"""
    )
    return [(attribute, text) for attribute, text in found]


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")
