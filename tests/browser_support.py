"""Debian's Chromium driven by Playwright (shared/BROWSER.md): where it is, how it is launched,
the fixtures every browser test module shares, and the page checks they all apply.

The fixtures `browser` and `open_page` reach every test module through conftest.py. A page that
`open_page` opened fails its test on a script error or on any Content-Security-Policy violation;
`assert_accessible(page)` runs axe-core on the page in its current state.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    WebSocketRoute,
    sync_playwright,
)
from websockets.sync.client import connect
from websockets.typing import Subprotocol

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


TIMEZONE = "Asia/Kolkata"  # away from UTC with no daylight saving: local time is visibly not UTC
PHONE: ViewportSize = {"width": 400, "height": 760}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# The rules the contract names: WCAG 2.0 and 2.1, levels A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = {"serious", "critical"}

OpenPage = Callable[..., Page]
RouteSocket = Callable[[WebSocketRoute], None]


def chromium_path() -> str:
    """The browser to drive, or a skip with the reason (a failure where CI requires it)."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    found = shutil.which(path)
    if found is None:
        _unavailable(f"no Chromium at {path} (set CHROMIUM_PATH, or apt-get install chromium)")
    return found  # type: ignore[return-value]


def _unavailable(reason: str) -> None:
    if os.environ.get("CHAT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"CHAT_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def post(ws_url: str, texts: list[str]) -> list[dict[str, Any]]:
    """Send `texts` from a JSON client of the room; the stored messages, once all are echoed."""
    echoed: list[dict[str, Any]] = []
    with connect(ws_url, subprotocols=[Subprotocol("chat.v1.json")], open_timeout=10) as ws:
        for text in texts:
            ws.send(text)
        while len(echoed) < len(texts):
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "message" and frame["own"]:
                echoed.append(frame)
    return echoed


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:
    """Each page in a fresh context: a different person, with their own storage.

    `open_page(url, route=None, viewport=PHONE, color_scheme="light")`. The test fails at its
    end if a page had a script error or reported a Content-Security-Policy violation.
    """
    contexts = []
    errors: list[str] = []
    violations: list[list[dict[str, Any]]] = []  # each context's, as they are reported

    def open_(
        url: str | None,
        route: RouteSocket | None = None,
        *,
        viewport: ViewportSize = PHONE,
        color_scheme: str = "light",
    ) -> Page:
        context = browser.new_context(
            locale="en-GB",
            timezone_id=TIMEZONE,
            viewport=viewport,
            color_scheme=color_scheme,  # type: ignore[arg-type]
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        violations.append(watch_csp(context))
        if route is not None:
            context.route_web_socket(lambda _url: True, route)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        if url is not None:
            page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], f"script errors in the page: {errors}"
    reported = [v for of_context in violations for v in of_context]
    assert reported == [], f"Content-Security-Policy violations: {reported}"


def watch_csp(context: BrowserContext) -> list[dict[str, Any]]:
    """The CSP violations every page of `context` reports, as they happen (across reloads)."""
    reported: list[dict[str, Any]] = []
    context.expose_binding("reportCspViolation", lambda _source, v: reported.append(v))
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation({"
        " directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,"
        " line: e.lineNumber, sample: e.sample }), true);"
    )
    return reported


def assert_accessible(page: Page, state: str = "") -> None:
    """axe-core's WCAG 2.1 A/AA and best-practice rules on the page as it is now: no serious or
    critical violation. `state` names what is being checked, for the failure message."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated by the browser's devtools protocol: not a script of the page, so its policy
        # (script-src 'self') does not apply, and the page's own behaviour is untouched.
        page.evaluate(AXE.read_text())
    results = page.evaluate(
        """tags => window.axe.run(document, {
            runOnly: { type: "tag", values: tags },
            resultTypes: ["violations"],
        })""",
        AXE_TAGS,
    )
    failing = [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]
    assert failing == [], f"accessibility violations ({state or page.url}):\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(f"{node['target']} {node['failureSummary']}" for node in v["nodes"])
        for v in failing
    )
