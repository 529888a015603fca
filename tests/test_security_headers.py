"""The browser's own protections: the headers every page sends, and Chromium enforcing them.

That the pages work under the policy is shown by every browser test: `open_page` fails a test
on any Content-Security-Policy violation. Here the policy is shown to bite.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Frame, Page, expect

from tests.browser_support import watch_csp
from tests.support import ServerProcess

PAGES = ["/", "/rooms/general"]


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


@pytest.mark.parametrize("path", PAGES)
def test_every_html_page_sends_the_security_headers(server: ServerProcess, path: str) -> None:
    response = httpx.get(f"{server.http}{path}")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = policy(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    host = f"127.0.0.1:{server.port}"
    assert sorted(csp["connect-src"]) == sorted(["'self'", f"ws://{host}", f"wss://{host}"])
    assert "unsafe" not in response.headers["content-security-policy"]


def test_the_policy_names_the_host_asked_for_and_never_a_strange_one(
    server: ServerProcess,
) -> None:
    named = httpx.get(f"{server.http}/", headers={"Host": f"localhost:{server.port}"})
    assert f"ws://localhost:{server.port}" in policy(named)["connect-src"]

    strange = httpx.get(f"{server.http}/", headers={"Host": "evil.example; script-src *"})
    assert strange.status_code == 200
    csp = policy(strange)
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert "evil.example" not in strange.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/chatroom.js", "text/javascript"),
        ("/static/chat.css", "text/css"),
        ("/rooms/general/messages", "application/json"),
        ("/healthz", "application/json"),
    ],
)
def test_scripts_styles_and_json_are_never_sniffed(
    server: ServerProcess, path: str, content_type: str
) -> None:
    response = httpx.get(f"{server.http}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.browser
def test_chromium_enforces_the_policy_and_the_page_still_works(
    server: ServerProcess, room: str, browser: Browser
) -> None:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    violations = watch_csp(context)
    page = context.new_page()
    page.goto(f"{server.http}/rooms/{room}")
    expect(page.locator("#status")).to_have_text("connected")
    assert violations == []

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.append(script);
            setTimeout("window.evalRan = true", 0);
            new WebSocket("ws://127.0.0.2:9/elsewhere");
            const style = document.createElement("style");
            style.textContent = "body { display: none }";
            document.head.append(style);
        }"""
    )
    wait_for(page, lambda: len(violations) >= 4)
    blocked = sorted((v["directive"], v["blocked"]) for v in violations)
    assert blocked == [
        ("connect-src", "ws://127.0.0.2:9/elsewhere"),
        ("script-src", "eval"),
        ("script-src-elem", "inline"),
        ("style-src-elem", "inline"),
    ]
    assert page.evaluate("() => [window.inlineRan, window.evalRan]") == [None, None]

    # The page's own scripts and socket go on working.
    page.locator("#messageText").fill("still working")
    page.locator("#messageText").press("Enter")
    expect(page.locator("#messages li.own .text")).to_have_text(["still working"])
    context.close()


@pytest.mark.browser
def test_no_page_can_be_framed(server: ServerProcess, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    # A stylesheet (no policy of its own) frames fine: the control that shows framing works.
    page.set_content(
        f'<iframe src="{server.http}/static/chat.css"></iframe>'
        f'<iframe src="{server.http}/"></iframe>'
        f'<iframe src="{server.http}/rooms/general"></iframe>'
    )
    wait_for(page, lambda: all(frame.url != "about:blank" for frame in child_frames(page)))
    urls = [frame.url for frame in child_frames(page)]
    assert urls[0] == f"{server.http}/static/chat.css"
    assert urls[1:] == ["chrome-error://chromewebdata/"] * 2
    context.close()


def child_frames(page: Page) -> list[Frame]:
    return [frame for frame in page.frames if frame is not page.main_frame]


def wait_for(page: Page, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll through Playwright, so that the page's events reach Python while waiting."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        page.wait_for_timeout(50)
