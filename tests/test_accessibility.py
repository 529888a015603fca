"""The pages for everyone: axe-core in every state a user reaches, at phone and desktop widths
in light and dark, and a keyboard-only round trip with a visible focus at every stop.

Each page runs under the server's Content-Security-Policy: `open_page` fails the test on any
violation, so these tests also show that the pages work under it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, ViewportSize, WebSocketRoute, expect

from tests.browser_support import DESKTOP, PHONE, OpenPage, assert_accessible, post
from tests.support import ServerProcess, unique_room

pytestmark = pytest.mark.browser

DISPLAYS = [
    pytest.param(PHONE, "light", id="phone-light"),
    pytest.param(PHONE, "dark", id="phone-dark"),
    pytest.param(DESKTOP, "light", id="desktop-light"),
    pytest.param(DESKTOP, "dark", id="desktop-dark"),
]


def room_url(server: ServerProcess, room: str) -> str:
    return f"{server.http}/rooms/{room}"


def expect_connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_text("connected")
    expect(page.locator("#messageText")).to_be_enabled()


def send(page: Page, text: str) -> None:
    page.locator("#messageText").fill(text)
    page.locator("#messageText").press("Enter")


def focus_is_visible(page: Page) -> bool:
    """The focused element draws a solid focus ring at least 2 px wide, or a box shadow."""
    return bool(
        page.evaluate(
            """() => {
                const el = document.activeElement;
                const style = getComputedStyle(el);
                const ring = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
                return el.matches(":focus-visible") && (ring || style.boxShadow !== "none");
            }"""
        )
    )


def tab_to(page: Page, selector: str, *, most: int = 12) -> list[str]:
    """Press Tab until `selector` has the focus; every element passed on the way (returned, by
    id or tag) must show its focus."""
    passed: list[str] = []
    for _ in range(most):
        page.keyboard.press("Tab")
        passed.append(
            page.evaluate("() => document.activeElement.id || document.activeElement.tagName")
        )
        assert focus_is_visible(page), f"no visible focus on {passed[-1]}"
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return passed
    raise AssertionError(f"{selector} not reached with Tab; focus went through {passed}")


@pytest.mark.parametrize(("viewport", "scheme"), DISPLAYS)
def test_room_picker_is_accessible(
    server: ServerProcess, open_page: OpenPage, viewport: ViewportSize, scheme: str
) -> None:
    post(server.ws(unique_room("listed")), ["so that the list of rooms has something"])
    page = open_page(f"{server.http}/", viewport=viewport, color_scheme=scheme)
    expect(page.locator("#rooms li").first).to_be_visible()
    assert_accessible(page, "picker with recent rooms")

    page.locator("#room").fill("two words")
    page.locator("#room").press("Enter")
    expect(page.locator("#room-error")).to_be_visible()
    assert_accessible(page, "picker refusing a room name")


@pytest.mark.parametrize("answer", ["empty", "failing"])
def test_room_picker_without_rooms_is_accessible(
    server: ServerProcess, open_page: OpenPage, answer: str
) -> None:
    def rooms(route: Route) -> None:
        if answer == "empty":
            route.fulfill(json=[])
        else:
            route.fulfill(status=500, body="")

    page = open_page(None)
    page.route("**/rooms?limit=*", rooms)
    page.goto(f"{server.http}/")
    expect(page.locator("#rooms-empty" if answer == "empty" else "#rooms-error")).to_be_visible()
    assert_accessible(page, f"picker, rooms {answer}")


@pytest.mark.parametrize(("viewport", "scheme"), DISPLAYS)
def test_room_is_accessible_with_backlog_divider_and_own_messages(
    server: ServerProcess, open_page: OpenPage, viewport: ViewportSize, scheme: str
) -> None:
    room = unique_room()
    post(server.ws(room), [f"backlog message {n}" for n in range(60)])
    page = open_page(room_url(server, room), viewport=viewport, color_scheme=scheme)
    expect_connected(page)
    send(page, "my own message, after the divider")
    expect(page.locator("#messages li.own")).to_have_count(1)
    expect(page.locator("#messages li.divider")).to_have_count(1)
    expect(page.locator("#loadEarlier")).to_be_visible()
    assert_accessible(page, "backlog, divider, own message, load earlier")

    # Scrolled up, a new message shows the "new messages" button.
    page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")
    post(server.ws(room), ["while reading old ones"])
    expect(page.locator("#jump")).to_be_visible()
    assert_accessible(page, "new messages button")

    page.locator("#loadEarlier").click()
    expect(page.locator("#beginning")).to_be_visible()
    page.locator("#messageText").fill("é" * 2049)
    expect(page.locator("#sizeHint")).to_have_class("size over")
    assert_accessible(page, "beginning of the room, message too long")


@pytest.mark.parametrize(("viewport", "scheme"), DISPLAYS)
def test_room_is_accessible_while_connecting_and_when_refused(
    server: ServerProcess, open_page: OpenPage, viewport: ViewportSize, scheme: str
) -> None:
    room = unique_room()
    post(server.ws(room), ["already here"])

    def never_answers(route: WebSocketRoute) -> None:
        pass  # the page waits for its replay forever: it stays "connecting"

    page = open_page(room_url(server, room), never_answers, viewport=viewport, color_scheme=scheme)
    expect(page.locator("#status")).to_have_text("connecting")
    expect(page.locator("#messages")).to_have_attribute("aria-busy", "true")  # awaiting the backlog
    send(page, "typed while connecting")  # the input stays usable: it waits in the outbox
    expect(page.locator("#messages li.pending")).to_contain_text("sending")
    assert_accessible(page, "connecting, a pending send")

    def refuses(route: WebSocketRoute) -> None:
        route.close(code=1008, reason="too fast")

    page = open_page(room_url(server, room), refuses, viewport=viewport, color_scheme=scheme)
    expect(page.locator("#note")).to_contain_text("too fast")
    expect(page.locator("#status")).to_contain_text("disconnected")
    expect(page.locator("#messages")).not_to_have_attribute("aria-busy", "true")
    assert_accessible(page, "refused: a note and a disconnected status")


def test_messages_are_a_live_list(server: ServerProcess, room: str, open_page: OpenPage) -> None:
    post(server.ws(room), ["one", "two"])
    page = open_page(room_url(server, room))
    expect_connected(page)
    messages = page.locator("#messages")
    # A live region that keeps its list semantics: no role on the list itself, and every child
    # of the list, the divider too, is a list item.
    expect(messages).to_have_attribute("aria-live", "polite")
    expect(messages).not_to_have_attribute("aria-busy", "true")  # the backlog is in
    assert messages.get_attribute("role") is None
    expect(page.get_by_role("list", name="Messages")).to_have_count(1)
    items = page.get_by_role("list", name="Messages").get_by_role("listitem")
    expect(items).to_have_count(3)
    assert messages.evaluate("list => [...list.children].every(c => c.tagName === 'LI')")
    expect(items.nth(0)).to_contain_text("one")
    expect(items.nth(2)).to_contain_text("new messages", ignore_case=True)


def test_keyboard_only_from_the_picker_to_a_sent_message(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("keys")
    post(server.ws(room), [f"earlier {n}" for n in range(60)])
    page = open_page(f"{server.http}/", viewport=DESKTOP)
    expect(page.locator("#rooms li").first).to_be_visible()

    tab_to(page, "#room")
    page.keyboard.press("Control+A")
    page.keyboard.type(room)
    page.keyboard.press("Enter")
    expect(page).to_have_url(room_url(server, room))
    expect_connected(page)

    # Paging back from the keyboard; when the button goes (the beginning is reached), the focus
    # moves to the messages rather than being lost.
    tab_to(page, "#loadEarlier")
    page.keyboard.press("Enter")
    expect(page.locator("#messages li.message")).to_have_count(60)
    expect(page.locator("#beginning")).to_be_visible()
    expect(page.locator("#scroller")).to_be_focused()

    tab_to(page, "#messageText")
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    expect(page.locator("#messages li.own:not(.pending) .text")).to_have_text(
        ["typed without a mouse"]
    )
    expect(page.locator("#messageText")).to_be_focused()
    assert server.all_messages(room)[-1]["text"] == "typed without a mouse"

    tab_to(page, "#sendButton")
