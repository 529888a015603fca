"""The page's names, invite links and refusals, in a real headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.auth import mint_token
from tests.browser_support import OpenPage, assert_accessible, post
from tests.support import ServerProcess, unique_room
from tests.test_browser import expect_connected, expect_texts, room_url, send

pytestmark = pytest.mark.browser

SECRET = "browser-secret-of-the-access-tokens-0123456789"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": "lobby-*", "CHAT_RATE_LIMIT": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("browser-tokens"), env).start()
    yield proc
    proc.stop()


def authors(page: Page) -> list[str]:
    return page.locator("#messages li.message .author").all_text_contents()


def test_a_name_chosen_in_the_open_chat_shows_on_the_other_page_and_is_remembered(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("names")
    ann = open_page(room_url(server, room))
    bob = open_page(room_url(server, room))
    expect_connected(ann)
    expect_connected(bob)
    name = ann.get_by_role("textbox", name="name")
    expect(name).to_be_visible()
    assert_accessible(ann, "the name asked for")
    name.fill("  Ann <b>Lee</b>  ")
    name.press("Enter")
    expect(ann.locator("#nameForm")).to_be_hidden()
    expect(ann.get_by_role("button", name="Name: Ann <b>Lee</b>")).to_be_visible()
    expect_connected(ann)
    send(ann, "hello from Ann")
    expect_texts(bob, ["hello from Ann"])
    assert_accessible(bob, "a message with its author")
    # Shown as text beside the message, never as markup.
    expect(bob.locator("#messages li.message")).to_contain_text("Ann <b>Lee</b>")
    assert bob.locator("#messages b").count() == 0
    assert authors(bob) == ["Ann <b>Lee</b>"]
    assert [m["author"] for m in server.all_messages(room)] == ["Ann <b>Lee</b>"]

    # Asked once: after a reload the name is remembered and not asked again.
    ann.reload()
    expect_connected(ann)
    expect(ann.locator("#nameForm")).to_be_hidden()
    send(ann, "still Ann")
    expect_texts(bob, ["hello from Ann", "still Ann"])
    assert [m["author"] for m in server.all_messages(room)] == ["Ann <b>Lee</b>"] * 2

    # Skipping the question (an empty name) is remembered too: messages stay anonymous.
    bob.get_by_role("textbox", name="name").press("Enter")
    expect(bob.locator("#nameForm")).to_be_hidden()
    bob.reload()
    expect_connected(bob)
    expect(bob.locator("#nameForm")).to_be_hidden()
    send(bob, "anonymous")
    expect_texts(ann, ["hello from Ann", "still Ann", "anonymous"])
    assert server.all_messages(room)[-1]["author"] is None


def test_an_invite_link_opens_a_private_room_and_leaves_the_address_bar(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("team")
    token = mint_token(SECRET, "u-7", name="Mia", rooms=[room], ttl=3600)
    other = mint_token(SECRET, "u-8", name="Noor", rooms=[room], ttl=3600)
    post(f"{tokens.ws(room)}?access_token={other}", ["before Mia came"])
    page = open_page(f"{tokens.http}/rooms/{room}#access_token={token}")
    expect_connected(page)
    assert "access_token" not in page.url and token not in page.url
    assert page.evaluate("location.hash") == ""
    expect(page.locator("#nameForm")).to_be_hidden()  # the token names her
    expect_texts(page, ["before Mia came"])
    assert authors(page) == ["Noor"]
    send(page, "Mia here")
    expect_texts(page, ["before Mia came", "Mia here"])
    expect(page.locator("#messages li.own .author")).to_have_text(["Mia"])
    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{tokens.http}/rooms/{room}/messages", headers=headers).json()
    assert [(m["text"], m["author"]) for m in listed] == [
        ("before Mia came", "Noor"),
        ("Mia here", "Mia"),
    ]
    # Kept in the browser: the room opens again without the link.
    page.goto(f"{tokens.http}/rooms/{room}")
    expect_connected(page)
    expect_texts(page, ["before Mia came", "Mia here"])
    # The room picker lists the rooms of the invite kept in the browser; a stranger's does not.
    page.goto(f"{tokens.http}/")
    expect(page.locator("#rooms .room-name")).to_contain_text([room])
    stranger = open_page(f"{tokens.http}/")
    # Loaded: some rooms, or the "no messages" line.
    expect(stranger.locator("#rooms li:visible, #rooms-empty:visible")).not_to_have_count(0)
    expect(stranger.locator("#rooms .room-name", has_text=room)).to_have_count(0)


def test_a_page_without_a_token_says_it_needs_an_invite_and_stops_retrying(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    page = open_page(None)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{tokens.http}/rooms/{unique_room('private')}")
    note = page.locator("#note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("invite link")
    expect(page.locator("#status")).to_have_text("no access")
    expect(page.locator("#messageText")).to_be_disabled()
    assert_accessible(page, "refused: no invite")
    time.sleep(3)  # a retry loop would have tried again well within this (backoff from 0.25 s)
    assert len(sockets) == 1


def test_a_room_outside_the_invite_is_refused_in_words(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    invited, other = unique_room("team"), unique_room("other")
    token = mint_token(SECRET, "u-9", rooms=[invited], ttl=3600)
    page = open_page(f"{tokens.http}/rooms/{invited}#access_token={token}")
    expect_connected(page)
    page.goto(f"{tokens.http}/rooms/{other}")
    expect(page.locator("#note")).to_contain_text("does not include this room")
    expect(page.locator("#status")).to_have_text("no access")


def test_a_public_room_needs_no_invite_and_asks_for_a_name(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("lobby")
    page = open_page(f"{tokens.http}/rooms/{room}")
    expect_connected(page)
    page.get_by_role("textbox", name="name").fill("Guest")
    page.get_by_role("textbox", name="name").press("Enter")
    expect_connected(page)
    send(page, "hi from the lobby")
    expect(page.locator("#messages li.own .author")).to_have_text(["Guest"])
    listed = httpx.get(f"{tokens.http}/rooms/{room}/messages").json()
    assert [m["author"] for m in listed] == ["Guest"]
