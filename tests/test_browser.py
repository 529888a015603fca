"""The browser client in a real headless Chromium: chat, backlog, reconnect, paging, safety.

Plain synchronous tests: Playwright's sync API must not run inside an asyncio loop.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import (
    Dialog,
    Page,
    WebSocketRoute,
    expect,
)

from tests.browser_support import OpenPage, post
from tests.conftest import StartServer
from tests.support import ServerProcess, unique_room

pytestmark = pytest.mark.browser

UTC_OFFSET = timedelta(hours=5, minutes=30)  # of browser_support.TIMEZONE


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: CHAT_SCREENSHOT_DIR (kept by CI), else the test's tmp dir."""
    directory = Path(os.environ.get("CHAT_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def room_url(server: ServerProcess, room: str) -> str:
    return f"{server.http}/rooms/{room}"


# Messages the server has stored and sent back; typed ones still pending are `li.pending`.
SHOWN = "#messages li.message:not(.pending)"


def texts(page: Page) -> list[str]:
    return page.locator(f"{SHOWN} .text").all_text_contents()


def shown_ids(page: Page) -> list[int]:
    ids = page.locator("#messages li.message").evaluate_all("items => items.map(i => i.dataset.id)")
    return [int(i) for i in ids]


def expect_connected(page: Page, timeout: float | None = None) -> None:
    expect(page.locator("#status")).to_have_text("connected", timeout=timeout)
    expect(page.locator("#messageText")).to_be_enabled()


def expect_texts(page: Page, expected: list[str]) -> None:
    expect(page.locator(f"{SHOWN} .text")).to_have_text(expected)


def send(page: Page, text: str) -> None:
    page.locator("#messageText").fill(text)
    page.locator("#messageText").press("Enter")


def local_clock(created_at: str) -> str:
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return (moment + UTC_OFFSET).strftime("%H:%M")


def test_two_pages_chat_both_ways(
    server: ServerProcess, open_page: OpenPage, screenshots: Path
) -> None:
    room = unique_room("team")
    backlog = ["Morning! Standup moved to 10:30", "Thanks, noted."]
    post(server.ws(room), backlog)
    alice = open_page(room_url(server, room))
    bob = open_page(room_url(server, room))
    expect_connected(alice)
    expect_connected(bob)

    send(alice, "Bob, did the deploy go out?")
    expect_texts(bob, [*backlog, "Bob, did the deploy go out?"])
    send(bob, "Yes, 0.4.2 is live. Reconnects now resume where they left off.")
    send(alice, "Great, trying it on my phone now")
    conversation = [
        *backlog,
        "Bob, did the deploy go out?",
        "Yes, 0.4.2 is live. Reconnects now resume where they left off.",
        "Great, trying it on my phone now",
    ]
    expect_texts(alice, conversation)
    expect_texts(bob, conversation)

    # Each reader's own messages are set apart; the divider follows the backlog.
    expect(alice.locator("#messages li.own .text")).to_have_text([conversation[2], conversation[4]])
    expect(bob.locator("#messages li.own .text")).to_have_text([conversation[3]])
    expect(alice.locator("#messages li.divider + li .text")).to_have_text([conversation[2]])
    assert [m["text"] for m in server.all_messages(room)] == conversation
    alice.screenshot(path=screenshots / "chatroom.png")


def test_the_page_loads_only_from_its_own_server_and_follows_its_host(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    page = open_page(None)
    own = f"localhost:{server.port}"  # not the 127.0.0.1 the server was started as
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    with page.expect_websocket() as socket:
        page.goto(f"http://{own}/rooms/{room}")
    expect_connected(page)
    assert socket.value.url == f"ws://{own}/{room}"
    assert requested and all(url.startswith(f"http://{own}/") for url in requested), requested


def test_reload_shows_the_backlog_with_local_times(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    post(server.ws(room), ["from someone else"])
    page = open_page(room_url(server, room))
    expect_connected(page)
    send(page, "mine, before the reload")
    expect_texts(page, ["from someone else", "mine, before the reload"])

    page.reload()
    expect_connected(page)
    stored = server.all_messages(room)
    expect_texts(page, [str(m["text"]) for m in stored])
    times = page.locator("#messages li.message time")
    expect(times).to_have_count(len(stored))
    for index, message in enumerate(stored):
        created_at = str(message["created_at"])
        expect(times.nth(index)).to_have_attribute("datetime", created_at)
        expect(times.nth(index)).to_have_text(local_clock(created_at))
    expect(page.locator("#messages li.own .text")).to_have_text(["mine, before the reload"])
    expect(page.locator("#messages > li").last).to_have_class("divider")


def test_markup_in_a_message_is_shown_as_text_and_never_runs(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    payload = "<img src=x onerror=alert(1)>"
    sender = open_page(room_url(server, room))
    reader = open_page(room_url(server, room))
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for page in (sender, reader):
        page.on("dialog", record)
        expect_connected(page)

    send(sender, payload)
    expect_texts(reader, [payload])
    reader.reload()
    expect_connected(reader)
    expect_texts(reader, [payload])
    for page in (sender, reader):
        expect(page.locator("#messages img")).to_have_count(0)
    # A failing image fires onerror at once; a round trip gives it every chance to have run.
    assert server.all_messages(room)[0]["text"] == payload
    reader.evaluate("() => new Promise(resolve => setTimeout(resolve, 100))")
    assert dialogs == []


def test_page_reconnects_after_a_restart_and_shows_what_it_missed_once(
    start_server: StartServer, tmp_path: Path, room: str, open_page: OpenPage
) -> None:
    env = {"CHAT_RATE_LIMIT": "0"}

    def restart(server: ServerProcess) -> ServerProcess:
        server.stop()
        expect(page.locator("#status")).not_to_have_text("connected")
        expect(page.locator("#messageText")).to_be_enabled()  # typing waits in the outbox
        return start_server(env, port=server.port, workdir=tmp_path)

    first = start_server(env)
    page = open_page(room_url(first, room))
    expect_connected(page)
    send(page, "before the restarts")
    expect_texts(page, ["before the restarts"])

    # Offline, the page cannot come back before the messages it should miss are stored.
    page.context.set_offline(True)
    second = restart(first)
    missed = [f"sent while the page was away {n}" for n in range(3)]
    post(second.ws(room), missed)
    page.context.set_offline(False)
    expect_connected(page)
    expect_texts(page, ["before the restarts", *missed])

    # Left alone, the page finds the server again by itself: within one backoff (at most 5 s)
    # of the server's return, however slow a loaded machine makes that return.
    third = restart(second)
    expect_connected(page, timeout=30_000)
    send(page, "after the restarts")
    stored = third.all_messages(room)
    assert [m["text"] for m in stored] == ["before the restarts", *missed, "after the restarts"]
    expect_texts(page, [str(m["text"]) for m in stored])
    assert shown_ids(page) == [m["id"] for m in stored]


def test_a_send_lost_with_its_connection_is_sent_again_by_itself(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    lost = "lost on the way"
    dropped: list[str] = []

    def drop_once(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if lost in str(message) and not dropped:
                dropped.append(str(message))
                route.close(code=1011, reason="dropped by the test")
            else:
                upstream.send(message)

        route.on_message(from_page)

    page = open_page(room_url(server, room), route=drop_once)
    expect_connected(page)
    send(page, lost)
    expect(page.locator("#messages li.own:not(.pending) .text")).to_have_text([lost])
    expect(page.locator("#messages li.pending")).to_have_count(0)
    expect(page.locator("#messageText")).to_have_value("")
    assert len(dropped) == 1
    assert [m["text"] for m in server.all_messages(room)] == [lost]


@pytest.mark.parametrize(
    ("code", "note"),
    [
        (1001, "restarting"),
        (1008, "too fast"),
        (1009, "too large"),
        (1011, "problem"),
        (1012, "restarting"),
        (1013, "fell behind"),
    ],
)
def test_the_page_explains_a_close_and_reconnects(
    server: ServerProcess, room: str, open_page: OpenPage, code: int, note: str
) -> None:
    post(server.ws(room), ["still here"])
    refused: list[int] = []

    def close_first(route: WebSocketRoute) -> None:
        if refused:
            route.connect_to_server()
        else:
            refused.append(code)
            route.close(code=code, reason="closed by the test")

    page = open_page(room_url(server, room), route=close_first)
    expect(page.locator("#note")).to_contain_text(note)
    expect_connected(page)
    expect_texts(page, ["still here"])
    # What the reader did (too fast, too large) stays said; a passing server fault does not.
    if code in (1008, 1009):
        expect(page.locator("#note")).to_be_visible()
    else:
        expect(page.locator("#note")).to_be_hidden()


def test_load_earlier_pages_back_through_200_messages_in_order(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    everything = [f"message {n:03}" for n in range(200)]
    post(server.ws(room), everything)
    page = open_page(room_url(server, room))
    expect_connected(page)
    expect_texts(page, everything[-50:])

    earlier = page.locator("#loadEarlier")
    while earlier.is_visible():
        page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")
        first = page.locator("#messages li.message").first
        anchor = page.locator(f'#messages li[data-id="{first.get_attribute("data-id")}"]')
        top_before = anchor.bounding_box()["y"]  # type: ignore[index]
        shown = len(texts(page))
        earlier.click()
        if shown < len(everything):
            expect(page.locator("#messages li.message")).to_have_count(shown + 50)
        else:
            expect(page.locator("#beginning")).to_be_visible()
        # The message that was at the top stays where the reader saw it.
        assert abs(anchor.bounding_box()["y"] - top_before) < 2  # type: ignore[index]

    expect(page.locator("#beginning")).to_be_visible()
    expect_texts(page, everything)
    assert shown_ids(page) == [m["id"] for m in server.all_messages(room)]


def test_new_messages_scroll_into_view_only_at_the_bottom(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    post(server.ws(room), [f"backlog {n}" for n in range(40)])
    page = open_page(room_url(server, room))
    expect_connected(page)
    scroller = page.locator("#scroller")
    scroller.evaluate("scroller => { scroller.scrollTop = 0; }")

    post(server.ws(room), ["while reading old ones"])
    expect(page.locator("#jump")).to_have_text("1 new message ↓")
    assert scroller.evaluate("scroller => scroller.scrollTop") == 0
    expect(page.locator("#messages li.message").last).not_to_be_in_viewport()

    page.locator("#jump").click()
    expect(page.locator("#jump")).to_be_hidden()
    post(server.ws(room), ["while at the bottom"])
    expect(page.locator("#messages li.message .text").last).to_have_text("while at the bottom")
    expect(page.locator("#messages li.message").last).to_be_in_viewport()


def test_a_message_over_the_byte_limit_cannot_be_sent(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    page = open_page(room_url(server, room))
    expect_connected(page)
    box = page.locator("#messageText")
    box.fill("é" * 2049)  # 4098 UTF-8 bytes in 2049 characters
    expect(page.locator("#sizeHint")).to_have_text("Too long: 4098 of at most 4096 bytes.")
    expect(page.locator("#sendButton")).to_be_disabled()
    box.press("Enter")

    box.fill("é" * 2048)
    expect(page.locator("#sizeHint")).to_have_text("4096 of 4096 bytes")
    box.press("Enter")
    expect_texts(page, ["é" * 2048])
    assert [m["text"] for m in server.all_messages(room)] == ["é" * 2048]


def test_room_picker_lists_active_rooms_and_refuses_bad_names(
    server: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("picked")
    post(server.ws(room), ["one", "two", "three"])
    page = open_page(f"{server.http}/")
    link = page.locator("#rooms a", has_text=room)
    expect(link).to_contain_text("3 messages")
    last = server.messages(room, limit=1)[0]["created_at"]
    expect(link.locator("time")).to_have_attribute("datetime", str(last))

    box = page.locator("#room")
    for bad in ["two words", "..", "naïve", "a/b"]:
        box.fill(bad)
        box.press("Enter")
        expect(page.locator("#room-error")).to_be_visible()
        assert page.url == f"{server.http}/"

    box.fill(room)
    box.press("Enter")
    expect(page).to_have_url(room_url(server, room))
    expect_connected(page)
    expect_texts(page, ["one", "two", "three"])
