"""The page's outbox in a real Chromium: each message typed is stored exactly once, whatever
drops, restarts and reloads happen in between (`chat.v2.json` with client keys)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import OpenPage, assert_accessible, post
from tests.conftest import StartServer
from tests.relay import Relay
from tests.support import ServerProcess
from tests.test_browser import expect_connected, expect_texts, send, shown_ids

pytestmark = pytest.mark.browser

NO_LIMIT = {"CHAT_RATE_LIMIT": "0"}


@pytest.fixture
def relayed(start_server: StartServer) -> Iterator[tuple[ServerProcess, Relay]]:
    """A server, and a relay in front of it that the page goes through."""
    relay = Relay(target=0)  # its port goes into the server's allowed Origins first
    server = start_server({**NO_LIMIT, "CHAT_ALLOWED_ORIGINS": relay.http})
    relay.target = server.port
    relay.start()
    yield server, relay
    relay.stop()


def pending(page: Page):
    return page.locator("#messages li.pending")


def stored_texts(server: ServerProcess, room: str) -> list[str]:
    return [str(m["text"]) for m in server.all_messages(room)]


def expect_all_stored_and_shown_once(page: Page, server: ServerProcess, room: str) -> None:
    expect(pending(page)).to_have_count(0)
    stored = server.all_messages(room)
    expect_texts(page, [str(m["text"]) for m in stored])
    assert shown_ids(page) == [m["id"] for m in stored]


def test_messages_typed_while_the_server_is_down_are_sent_in_order_once_it_is_back(
    start_server: StartServer, tmp_path: Path, room: str, open_page: OpenPage
) -> None:
    server = start_server(NO_LIMIT)
    page = open_page(f"{server.http}/rooms/{room}")
    expect_connected(page)
    send(page, "before")
    expect_texts(page, ["before"])
    server.stop()
    expect(page.locator("#status")).not_to_have_text("connected")

    typed = [f"typed while down {n}" for n in range(5)]
    for text in typed:
        send(page, text)
    expect(pending(page)).to_have_count(5)
    expect(pending(page).locator(".text")).to_have_text(typed)
    expect(pending(page).first).to_contain_text("sending")
    assert_accessible(page, "pending sends while disconnected")

    server = start_server(NO_LIMIT, port=server.port, workdir=tmp_path)
    expect_connected(page, timeout=30_000)
    expect(pending(page)).to_have_count(0)
    assert stored_texts(server, room) == ["before", *typed]
    expect_all_stored_and_shown_once(page, server, room)
    expect(page.locator("#messages li.own .text")).to_have_text(["before", *typed])


def test_a_connection_cut_before_the_echo_stores_the_message_once(
    relayed: tuple[ServerProcess, Relay], room: str, open_page: OpenPage
) -> None:
    server, relay = relayed
    page = open_page(f"{relay.http}/rooms/{room}")
    expect_connected(page)
    relay.cut_after_next_send()
    send(page, "cut on the way back")
    expect(page.locator("#status")).not_to_have_text("connected")
    expect_connected(page, timeout=30_000)
    expect(pending(page)).to_have_count(0)
    assert relay.cuts == 1
    assert stored_texts(server, room) == ["cut on the way back"]
    expect_all_stored_and_shown_once(page, server, room)
    expect(page.locator("#messageText")).to_have_value("")  # nothing put back
    send(page, "and the next one")
    expect_texts(page, ["cut on the way back", "and the next one"])
    assert stored_texts(server, room) == ["cut on the way back", "and the next one"]


UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def assert_time_ordered_keys(page: Page, room: str, count: int) -> None:
    """The outbox's keys are UUIDs of version 7: their first 48 bits the time in ms (so a
    room's keys are added at the end of the server's key index), in the order typed."""
    outbox = page.evaluate(f"localStorage.getItem('chat.outbox.{room}')")
    keys = [item["key"] for item in json.loads(outbox)]
    assert len(keys) == count and all(UUID7.fullmatch(key) for key in keys), keys
    times = [int(key.replace("-", "")[:12], 16) / 1000 for key in keys]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 60, times


def test_a_reload_sends_the_outbox_and_each_message_is_stored_once(
    relayed: tuple[ServerProcess, Relay], room: str, open_page: OpenPage
) -> None:
    server, relay = relayed
    page = open_page(f"{relay.http}/rooms/{room}")
    expect_connected(page)
    # The server stores them, but its answers never come back: they stay in the outbox.
    relay.mute = True
    typed = ["one", "two", "three"]
    for text in typed:
        send(page, text)
    expect(pending(page)).to_have_count(3)
    assert_time_ordered_keys(page, room, len(typed))
    server_has = stored_texts(server, room)
    relay.mute = False
    relay.cut_websockets()  # and the muted connection goes, so the reload starts afresh
    page.reload()
    expect_connected(page)
    expect(pending(page)).to_have_count(0)
    assert server_has == typed  # they were stored before the reload...
    assert stored_texts(server, room) == typed  # ...and not again after it
    expect_all_stored_and_shown_once(page, server, room)


def test_a_reload_while_disconnected_keeps_the_outbox(
    relayed: tuple[ServerProcess, Relay], room: str, open_page: OpenPage
) -> None:
    server, relay = relayed
    page = open_page(f"{relay.http}/rooms/{room}")
    expect_connected(page)
    relay.block_websockets = True
    relay.cut_websockets()
    expect(page.locator("#status")).not_to_have_text("connected")
    typed = ["kept 1", "kept 2", "kept 3"]
    for text in typed:
        send(page, text)
    page.reload()
    expect(pending(page).locator(".text")).to_have_text(typed)
    assert stored_texts(server, room) == []
    relay.block_websockets = False
    expect_connected(page, timeout=30_000)
    expect(pending(page)).to_have_count(0)
    assert stored_texts(server, room) == typed
    expect_all_stored_and_shown_once(page, server, room)


def test_a_resume_over_more_than_1000_messages_leaves_no_hole(
    relayed: tuple[ServerProcess, Relay], room: str, open_page: OpenPage
) -> None:
    server, relay = relayed
    post(server.ws(room), ["the first"])
    page = open_page(f"{relay.http}/rooms/{room}")
    expect_connected(page)
    relay.block_websockets = True
    relay.cut_websockets()
    expect(page.locator("#status")).not_to_have_text("connected")
    post(server.ws(room), [f"while away {n}" for n in range(1500)])
    relay.block_websockets = False
    expect_connected(page, timeout=30_000)
    stored = server.all_messages(room)
    assert len(stored) == 1501
    expect(page.locator("#messages li.message")).to_have_count(1501)
    assert shown_ids(page) == [m["id"] for m in stored]


def test_a_resume_over_more_than_1000_messages_in_a_private_room_leaves_no_hole(
    start_server: StartServer, room: str, open_page: OpenPage
) -> None:
    # The missing range is fetched over REST, which must carry the page's token.
    secret = "outbox-test-secret-0123456789-abcdef"
    token = jwt.encode({"sub": "reader"}, secret, algorithm="HS256")
    relay = Relay(target=0)
    server = start_server(
        {**NO_LIMIT, "CHAT_ALLOWED_ORIGINS": relay.http, "CHAT_AUTH_SECRET": secret}
    )
    relay.target = server.port
    relay.start()
    try:
        as_reader = server.ws(room, f"?access_token={token}")
        post(as_reader, ["the first"])
        page = open_page(f"{relay.http}/rooms/{room}#access_token={token}")
        expect_connected(page)
        relay.block_websockets = True
        relay.cut_websockets()
        expect(page.locator("#status")).not_to_have_text("connected")
        post(as_reader, [f"while away {n}" for n in range(1500)])
        relay.block_websockets = False
        expect_connected(page, timeout=30_000)
        headers = {"Authorization": f"Bearer {token}"}
        stored = (
            httpx.get(
                f"{server.http}/rooms/{room}/messages", params={"limit": 1000}, headers=headers
            ).json()
            + httpx.get(
                f"{server.http}/rooms/{room}/messages",
                params={"limit": 1000, "before": 1_000_000, "after": 0},
                headers=headers,
            ).json()
        )
        ids = sorted({int(m["id"]) for m in stored})
        assert len(ids) == 1501
        expect(page.locator("#messages li.message")).to_have_count(1501)
        assert shown_ids(page) == ids
    finally:
        relay.stop()


def test_the_same_text_typed_twice_is_stored_twice(
    server: ServerProcess, room: str, open_page: OpenPage
) -> None:
    page = open_page(f"{server.http}/rooms/{room}")
    expect_connected(page)
    send(page, "again")
    send(page, "again")
    expect_texts(page, ["again", "again"])
    expect(pending(page)).to_have_count(0)
    assert stored_texts(server, room) == ["again", "again"]
    expect_all_stored_and_shown_once(page, server, room)


def test_an_outbox_message_over_the_limit_comes_back_into_the_box(
    start_server: StartServer, room: str, open_page: OpenPage
) -> None:
    # Typed under a larger limit, then the server came back with a smaller one.
    server = start_server({**NO_LIMIT, "CHAT_MAX_MESSAGE_BYTES": "16"})
    page = open_page(None)
    outbox = '[{"key":"k1","text":"small"},{"key":"k2","text":"far too long for sixteen"}]'
    page.add_init_script(f"localStorage.setItem('chat.outbox.{room}', '{outbox}')")
    page.goto(f"{server.http}/rooms/{room}")
    expect_connected(page)
    expect(page.locator("#messageText")).to_have_value("far too long for sixteen")
    expect(page.locator("#note")).to_contain_text("over the limit of 16 bytes")
    expect(page.locator("#sizeHint")).to_contain_text("Too long")
    expect(pending(page)).to_have_count(0)
    expect_texts(page, ["small"])
    assert stored_texts(server, room) == ["small"]


def test_a_long_outbox_goes_out_within_the_rate_limit(
    start_server: StartServer, room: str, open_page: OpenPage
) -> None:
    # Sent all at once, 8 messages overrun a burst of 3: the page would be closed with 1008 after
    # the third, and get on only three at a time, reconnect after reconnect.
    server = start_server({"CHAT_RATE_LIMIT": "2", "CHAT_RATE_BURST": "3"})
    page = open_page(f"{server.http}/rooms/{room}")
    expect_connected(page)
    typed = [f"quick {n}" for n in range(8)]
    for text in typed:
        send(page, text)
    expect(pending(page)).to_have_count(0, timeout=30_000)
    assert stored_texts(server, room) == typed
    expect_all_stored_and_shown_once(page, server, room)
    assert "rate limit exceeded" not in server.log()
    expect(page.locator("#note")).to_be_hidden()
