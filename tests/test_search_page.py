"""The room page's search in a real Chromium: results newest first with "more", a result in its
context, marked, and back to the latest without a reload while messages keep arriving."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import DESKTOP, PHONE, OpenPage, assert_accessible, post
from tests.support import ServerProcess, unique_room

pytestmark = pytest.mark.browser


def open_room(server: ServerProcess, room: str, open_page: OpenPage, **kwargs: object) -> Page:
    page = open_page(f"{server.http}/rooms/{room}", **kwargs)
    expect(page.locator("#status")).to_have_text("connected")
    return page


def search(page: Page, q: str) -> None:
    box = page.get_by_role("searchbox")
    box.fill(q)
    box.press("Enter")


def live_ids(page: Page) -> list[int]:
    return page.locator("#messages li.message").evaluate_all(
        "items => items.map(li => Number(li.dataset.id))"
    )


@pytest.mark.parametrize(
    ("viewport", "scheme"), [(PHONE, "light"), (DESKTOP, "dark")], ids=["phone", "desktop-dark"]
)
def test_search_open_in_context_and_back_to_the_latest_while_messages_arrive(
    server: ServerProcess, open_page: OpenPage, viewport: object, scheme: str
) -> None:
    room = unique_room("find")
    texts = [f"needle {n}" if n % 3 == 0 else f"hay {n}" for n in range(75)]
    stored = post(server.ws(room), texts)
    page = open_room(server, room, open_page, viewport=viewport, color_scheme=scheme)
    before = live_ids(page)

    search(page, "NEEDLE")
    results = page.locator("#resultList .result")
    expect(results).to_have_count(20)
    expect(results.first).to_contain_text("needle 72")  # newest first
    expect(page.locator("#resultsSummary")).to_contain_text("20+")
    assert_accessible(page, "search results with more")
    page.get_by_role("button", name="More results").click()
    expect(results).to_have_count(25)
    expect(results.last).to_contain_text("needle 0")
    expect(page.get_by_role("button", name="More results")).to_be_hidden()

    # An old one, in its context: it is marked, the live list is out of view.
    results.filter(has=page.locator(".text", has_text=re.compile(r"^needle 3$"))).click()
    hit = page.locator("#context li.hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".text")).to_have_text("needle 3")
    expect(hit).to_have_attribute("aria-current", "true")
    # limit 50: the 25 before it (there are only 3), then it and the ones after it up to 50.
    expect(page.locator("#context li")).to_have_count(50)
    expect(page.locator("#messages")).to_be_hidden()
    back = page.get_by_role("button", name="latest")
    expect(back).to_be_visible()
    assert_accessible(page, "a search result in its context")

    # Messages arrive meanwhile; back to the latest shows each of them once, no reload.
    page.evaluate("window.notReloaded = true")
    arrived = post(server.ws(room), ["live while away 1", "live while away 2"])
    back.click()
    expect(page.locator("#messages")).to_be_visible()
    expect(page.locator("#context")).to_be_hidden()
    expect(page.locator("#messages li.message .text").last).to_have_text("live while away 2")
    ids = live_ids(page)
    assert ids == before + [m["id"] for m in arrived]
    assert len(set(ids)) == len(ids)
    assert page.evaluate("window.notReloaded") is True
    assert stored[-1]["id"] in ids


def test_sending_from_a_result_returns_to_the_latest(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("send")
    post(server.ws(room), ["<b>bold?</b> findme", "other"])
    page = open_room(server, room, open_page)
    search(page, "findme")
    result = page.locator("#resultList .result")
    expect(result).to_have_count(1)
    expect(result.locator(".text")).to_have_text("<b>bold?</b> findme")  # text, not markup
    assert page.locator("#resultList b").count() == 0
    result.click()
    expect(page.locator("#context li.hit")).to_have_count(1)
    page.locator("#messageText").fill("written while looking back")
    page.locator("#messageText").press("Enter")
    expect(page.locator("#messages")).to_be_visible()
    expect(page.locator("#messages li.own .text")).to_have_text(["written while looking back"])


def test_a_search_without_matches_says_so_and_closes(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("none")
    post(server.ws(room), ["something"])
    page = open_room(server, room, open_page)
    search(page, '"nothing like this')
    expect(page.locator("#resultsSummary")).to_contain_text("No messages match")
    expect(page.locator("#resultList .result")).to_have_count(0)
    assert_accessible(page, "search without results")
    page.get_by_role("button", name="Close search").click()
    expect(page.locator("#results")).to_be_hidden()
    expect(page.get_by_role("searchbox")).to_be_focused()


def test_a_result_opens_and_returns_from_the_keyboard(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("keys")
    post(server.ws(room), ["first keyboard hit", "filler", "second keyboard hit"])
    page = open_room(server, room, open_page, viewport=DESKTOP)
    search(page, "keyboard")
    expect(page.locator("#resultList .result")).to_have_count(2)
    page.keyboard.press("Tab")  # from the search box, past its button, to the first result
    page.keyboard.press("Tab")
    expect(page.locator("#resultList .result").first).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the second (older) result
    expect(page.locator("#context li.hit .text")).to_have_text("first keyboard hit")
    back = page.get_by_role("button", name="latest")
    expect(back).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#messages")).to_be_visible()
    expect(page.locator("#messageText")).to_be_focused()
