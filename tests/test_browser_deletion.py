"""Deleting messages from the page, in a real headless Chromium against the real server: the
Delete button where the reader may delete (own messages; every message for an admin), the
confirmation, and the message leaving every open page of the room for good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, Route, WebSocketRoute, expect

from app.auth import mint_token
from tests.browser_support import DESKTOP, OpenPage, assert_accessible, post
from tests.support import ServerProcess, unique_room
from tests.test_browser import SHOWN, expect_connected, expect_texts, send

pytestmark = pytest.mark.browser

SECRET = "browser-deletion-secret-of-the-tokens-0123456789"
REPLAY = 5
REST_FIELDS = ("id", "room_id", "text", "created_at", "author")


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "CHAT_AUTH_SECRET": SECRET,
        "CHAT_RATE_LIMIT": "0",
        "CHAT_HISTORY_REPLAY": str(REPLAY),
    }
    proc = ServerProcess(tmp_path_factory.mktemp("browser-deletion"), env).start()
    yield proc
    proc.stop()


def token(sub: str, *, admin: bool = False) -> str:
    return mint_token(SECRET, sub, name=sub.title(), admin=admin, ttl=3600)


def open_room(
    open_page: OpenPage, server: ServerProcess, room: str, access: str, **kw: Any
) -> Page:
    page = open_page(f"{server.http}/rooms/{room}#access_token={access}", **kw)
    expect_connected(page)
    return page


def message(page: Page, text: str) -> Locator:
    """The li of the stored message whose text is exactly `text`."""
    return page.locator(SHOWN).filter(has=page.locator(".text", has_text=text))


def delete_button(page: Page, text: str) -> Locator:
    return message(page, text).get_by_role("button", name="Delete")


def stored_texts(server: ServerProcess, room: str, access: str) -> list[str]:
    response = httpx.get(
        f"{server.http}/rooms/{room}/messages",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {access}"},
    )
    response.raise_for_status()
    return [m["text"] for m in response.json()]


def answer_next_dialog(page: Page, accept: bool) -> list[str]:
    """The next confirm() of `page` is accepted (or dismissed); its text lands in the list."""
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", answer)
    return asked


def test_an_own_message_deleted_on_one_page_disappears_on_the_other(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("team")
    ann, bob = token("ann"), token("bob")
    ann_page = open_room(open_page, tokens, room, ann)
    ann_phone = open_room(open_page, tokens, room, ann)  # Ann's second device
    bob_page = open_room(open_page, tokens, room, bob)
    send(ann_page, "a typo I regret")
    send(ann_page, "the fixed line")
    expect_texts(bob_page, ["a typo I regret", "the fixed line"])
    send(bob_page, "Bob's answer")
    everything = ["a typo I regret", "the fixed line", "Bob's answer"]
    for page in (ann_page, ann_phone):
        expect_texts(page, everything)

    # Each reader is offered Delete on their own messages (on all their devices) only.
    for text in ["a typo I regret", "the fixed line"]:
        expect(delete_button(ann_page, text)).to_have_count(1)
        expect(delete_button(ann_phone, text)).to_have_count(1)
        expect(delete_button(bob_page, text)).to_have_count(0)
    expect(delete_button(ann_page, "Bob's answer")).to_have_count(0)
    expect(delete_button(bob_page, "Bob's answer")).to_have_count(1)

    # From the keyboard: the button takes the focus (and shows); Enter asks first, and
    # "Cancel" keeps the message.
    button = delete_button(ann_page, "a typo I regret")
    button.focus()
    expect(button).to_have_css("opacity", "1")
    assert_accessible(ann_page, "a Delete button focused")
    asked = answer_next_dialog(ann_page, accept=False)
    ann_page.keyboard.press("Enter")
    expect(button).to_be_focused()
    assert len(asked) == 1 and "a typo I regret" in asked[0]
    expect_texts(ann_page, everything)
    assert stored_texts(tokens, room, ann) == everything

    # Confirmed: gone from every page of the room and from the server; the focus goes on to
    # the next message's button.
    asked = answer_next_dialog(ann_page, accept=True)
    ann_page.keyboard.press("Enter")
    kept = ["the fixed line", "Bob's answer"]
    for page in (ann_page, ann_phone, bob_page):
        expect_texts(page, kept)
    assert len(asked) == 1
    assert stored_texts(tokens, room, ann) == kept
    expect(delete_button(ann_page, "the fixed line")).to_be_focused()
    expect(ann_page.locator("#note")).to_be_hidden()

    # With the mouse on the other device, and gone for good: a reload does not bring it back.
    answer_next_dialog(ann_phone, accept=True)
    message(ann_phone, "the fixed line").hover()
    delete_button(ann_phone, "the fixed line").click()
    for page in (ann_page, ann_phone, bob_page):
        expect_texts(page, ["Bob's answer"])
    bob_page.reload()
    expect_connected(bob_page)
    expect_texts(bob_page, ["Bob's answer"])


def test_an_admin_may_delete_any_message_and_a_refusal_is_told_in_words(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("moderated")
    cat = token("cat")
    post(f"{tokens.ws(room)}?access_token={cat}", ["spam spam spam", "a fair question"])
    reader = open_room(open_page, tokens, room, token("dan"))
    admin = open_room(open_page, tokens, room, token("mod", admin=True), viewport=DESKTOP)
    texts = ["spam spam spam", "a fair question"]
    expect_texts(admin, texts)
    expect(reader.get_by_role("button", name="Delete")).to_have_count(0)
    expect(admin.get_by_role("button", name="Delete")).to_have_count(2)

    # At a desktop the buttons show on hover; that state passes axe-core too.
    message(admin, "spam spam spam").hover()
    expect(delete_button(admin, "spam spam spam")).to_have_css("opacity", "1")
    assert_accessible(admin, "an admin's Delete buttons, one hovered")

    answer_next_dialog(admin, accept=True)
    delete_button(admin, "spam spam spam").click()
    for page in (admin, reader):
        expect_texts(page, ["a fair question"])
    assert stored_texts(tokens, room, cat) == ["a fair question"]

    # A refusal (here the server's answer is replaced by a 403) leaves the message and says why.
    def refuse(route: Route) -> None:
        if route.request.method == "DELETE":
            route.fulfill(status=403, json={"detail": "not yours"})
        else:
            route.fallback()

    admin.route("**/rooms/*/messages/*", refuse)
    answer_next_dialog(admin, accept=True)
    message(admin, "a fair question").hover()
    delete_button(admin, "a fair question").click()
    expect(admin.locator("#note")).to_contain_text("not deleted")
    expect_texts(admin, ["a fair question"])
    assert_accessible(admin, "a refused delete")
    assert stored_texts(tokens, room, cat) == ["a fair question"]


def test_a_deleted_message_never_comes_back_in_a_later_page_or_search(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("archive")
    eve = token("eve")
    texts = [f"note {n} about the archive" for n in range(2 * REPLAY)]
    stored = post(f"{tokens.ws(room)}?access_token={eve}", texts)
    older, shown = stored[0], stored[-1]
    page = open_room(open_page, tokens, room, eve)
    expect_texts(page, texts[-REPLAY:])
    search_page = open_room(open_page, tokens, room, eve)
    search_page.get_by_role("searchbox").fill("archive")
    search_page.get_by_role("searchbox").press("Enter")
    results = search_page.locator("#resultList li")
    expect(results).to_have_count(len(texts))

    # Another device deletes a message the page shows and one it has not loaded yet; the
    # earlier page the reader asks for was read before the deletion (an answer that crossed
    # the `deleted` frame on the way), so it still holds the older one.
    stale: list[dict[str, Any]] = []

    def crossing(route: Route) -> None:
        response = route.fetch()
        listed = response.json()
        if "before=" in route.request.url and older["id"] not in {m["id"] for m in listed}:
            listed = [{k: older[k] for k in REST_FIELDS}, *listed]
            stale.append(older)
        route.fulfill(response=response, body=json.dumps(listed))

    page.route(lambda url: "/messages?" in url, crossing)
    for message_ in (shown, older):
        response = httpx.delete(
            f"{tokens.http}/rooms/{room}/messages/{message_['id']}",
            headers={"Authorization": f"Bearer {eve}"},
        )
        assert response.status_code == 204
    kept = [t for t in texts if t not in (shown["text"], older["text"])]
    expect_texts(page, kept[-(REPLAY - 1) :])
    expect(results).to_have_count(len(texts) - 2)
    expect(search_page.locator("#resultList")).not_to_contain_text(shown["text"])

    page.get_by_role("button", name="Load earlier messages").click()
    expect(page.locator("#beginning")).to_be_visible()
    assert stale, "the stale page was not served"
    expect_texts(page, kept)


def test_a_message_deleted_while_the_page_was_away_leaves_it_on_reconnect(
    tokens: ServerProcess, open_page: OpenPage
) -> None:
    room = unique_room("away")
    fay = token("fay")
    gone, _ = post(f"{tokens.ws(room)}?access_token={fay}", ["deleted while away", "kept"])
    routes: list[WebSocketRoute] = []
    dropped: list[dict[str, Any]] = []

    # The page's first connection never passes on a `deleted` frame: as if it was sent while
    # the page was offline.
    def miss_deletions(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()
        first = not routes
        routes.append(route)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if first and frame.get("type") == "deleted":
                dropped.append(frame)
            else:
                route.send(message)

        upstream.on_message(to_page)

    page = open_page(f"{tokens.http}/rooms/{room}#access_token={fay}", route=miss_deletions)
    expect_connected(page)
    expect_texts(page, ["deleted while away", "kept"])
    response = httpx.delete(
        f"{tokens.http}/rooms/{room}/messages/{gone['id']}",
        headers={"Authorization": f"Bearer {fay}"},
    )
    assert response.status_code == 204
    for _ in range(100):
        if dropped:
            break
        page.wait_for_timeout(50)
    assert dropped == [{"type": "deleted", "id": gone["id"], "room_id": room}]
    expect_texts(page, ["deleted while away", "kept"])

    routes[0].close(code=1012, reason="the test's restart")
    expect_connected(page)
    expect_texts(page, ["kept"])
    assert len(routes) == 2


def test_the_open_chat_offers_no_delete(server: ServerProcess, open_page: OpenPage) -> None:
    # Without CHAT_AUTH_SECRET nobody can delete (the server answers 403): no button to try.
    room = unique_room("open")
    post(server.ws(room, "?name=Gus"), ["from before"])
    page = open_page(f"{server.http}/rooms/{room}")
    expect_connected(page)
    page.get_by_role("textbox", name="name").fill("Gus")
    page.get_by_role("textbox", name="name").press("Enter")
    expect_connected(page)
    send(page, "mine, in the open chat")
    expect_texts(page, ["from before", "mine, in the open chat"])
    expect(page.locator("#messages li.own:not(.pending)")).to_have_count(1)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
