"""`GET /search` and `?around=` through a real server. tests/test_search_postgres.py collects
this module again on PostgreSQL: one table of matching cases, the same answers on both."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from app.search import parse
from tests.support import ServerProcess, unique_room

# Stored once, in one room; each case names the texts its q must find (and nothing else).
CORPUS = [
    "Café au lait",
    "cafe noir",
    "ÉCOLE primaire",
    "une école",
    "e\u0301cole de\u0301compose\u0301e",  # accents as combining marks
    "deployed to production",
    "redeploy later",
    "see foo.png here",
    "png then foo",
    "C++20 modules",
    "mail bob@example.com today",
    "read https://example.org/docs/page?id=7",
    "你好 世界",
    "你好世界",
    "Привет мир",
    "🎉🚀",
    "NEAR(a b) OR -x : ^ col:val",
    "the quick brown fox",
    "état-major x² ok",
]

CASES: list[tuple[str, set[str]]] = [
    # case and accents, both ways
    ("cafe", {"Café au lait", "cafe noir"}),
    ("CAFÉ", {"Café au lait", "cafe noir"}),
    ("école", {"ÉCOLE primaire", "une école", "e\u0301cole de\u0301compose\u0301e"}),
    ("ECOLE", {"ÉCOLE primaire", "une école", "e\u0301cole de\u0301compose\u0301e"}),
    ("décomposée", {"e\u0301cole de\u0301compose\u0301e"}),
    # prefixes, and only prefixes
    ("deplo*", {"deployed to production"}),
    ("deplo", set()),
    ("deploy", set()),
    ("redeploy", {"redeploy later"}),
    ("*deplo", set()),
    ("fox*", {"the quick brown fox"}),
    # phrases in order; words out of order
    ('"foo.png"', {"see foo.png here"}),
    ('"see foo"', {"see foo.png here"}),
    ('"foo see"', set()),
    ("foo.png", {"see foo.png here", "png then foo"}),
    ("png foo", {"see foo.png here", "png then foo"}),
    ('"png then"', {"png then foo"}),
    ('"quick bro*"', {"the quick brown fox"}),
    # punctuation is a separator
    ("C++20", {"C++20 modules"}),
    ("c 20", {"C++20 modules"}),
    ("bob@example.com", {"mail bob@example.com today"}),
    ("example", {"mail bob@example.com today", "read https://example.org/docs/page?id=7"}),
    ("https://example.org/docs", {"read https://example.org/docs/page?id=7"}),
    ("état-major", {"état-major x² ok"}),
    ("etat major", {"état-major x² ok"}),
    # other scripts
    ("世界", {"你好 世界"}),
    ("你好", {"你好 世界"}),
    ("你好*", {"你好 世界", "你好世界"}),
    ("你好世界", {"你好世界"}),
    ("привет", {"Привет мир"}),
    ("ПРИВЕТ МИР", {"Привет мир"}),
    ("прив*", {"Привет мир"}),
    # no words at all
    ("🎉", set()),
    ("🎉🚀", set()),
    ("*", set()),
    ("**", set()),
    ('"', set()),
    ('""', set()),
    ("...", set()),
    # unbalanced quotes: a phrase to the end
    ('"quick brown', {"the quick brown fox"}),
    ('"brown quick', set()),
    ('fox "quick', {"the quick brown fox"}),
    ('quick" brown"', {"the quick brown fox"}),
    # query syntax of FTS5, tsquery and SQL is plain text
    ("NEAR(", {"NEAR(a b) OR -x : ^ col:val"}),
    ("NEAR(a", {"NEAR(a b) OR -x : ^ col:val"}),
    ("OR", {"NEAR(a b) OR -x : ^ col:val"}),
    ("cafe OR fox", set()),
    ("-x", {"NEAR(a b) OR -x : ^ col:val"}),
    ("cafe -noir", {"cafe noir"}),
    (":", set()),
    ("^", set()),
    ("col:val", {"NEAR(a b) OR -x : ^ col:val"}),
    ("text:cafe", set()),
    ("fox & !quick | 'x' <-> y:*", set()),
    ("'; DROP TABLE messages; --", set()),
    ("NEAR\x00(", {"NEAR(a b) OR -x : ^ col:val"}),  # U+0000 separates, never reaches SQL
    # `simple`: no stop words
    ("the", {"the quick brown fox"}),
    # a q of 256 characters
    ("quick " * 41 + "brown fox ", {"the quick brown fox"}),
    ("x" * 256, set()),
]

assert len("quick " * 41 + "brown fox ") == 256


def search(server: ServerProcess, q: str, **params: object) -> list[dict]:
    response = httpx.get(f"{server.http}/search", params={"q": q, **params}, timeout=10.0)
    assert response.status_code == 200, response.text
    found = response.json()
    assert isinstance(found, list)
    return found


def send(server: ServerProcess, room: str, texts: list[str]) -> list[int]:
    """Store texts through the socket; their ids (each found by search once it is echoed)."""
    with connect(server.ws(room), subprotocols=["chat.v1.json"]) as ws:  # type: ignore[list-item]
        while '"history_end"' not in ws.recv(timeout=10):
            pass
        ids = []
        for text in texts:
            ws.send(text)
            ids.append(httpx.Response(200, content=ws.recv(timeout=10)).json()["id"])
    return ids


def delete_rows(server: ServerProcess, ids: list[int]) -> None:
    """Delete messages in the database itself, as the deletion and retention issues will."""
    url = server.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1], timeout=10) as conn:
            conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
        return

    async def delete() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute("DELETE FROM messages WHERE id = ANY($1::bigint[])", ids)
        finally:
            await conn.close()

    asyncio.run(delete())


@pytest.fixture(scope="module")
def corpus(server: ServerProcess) -> str:
    room = unique_room("corpus")
    send(server, room, CORPUS)
    return room


@pytest.mark.parametrize(("q", "expected"), CASES, ids=[repr(q)[:40] for q, _ in CASES])
def test_matching_rules(server: ServerProcess, corpus: str, q: str, expected: set[str]) -> None:
    assert {m["text"] for m in search(server, q, room_id=corpus, limit=100)} == expected


def test_results_are_newest_first_in_the_rest_shape(server: ServerProcess, room: str) -> None:
    ids = send(server, room, ["kiwi one", "no fruit", "kiwi two", "KIWI three"])
    found = search(server, "kiwi", room_id=room)
    assert [m["id"] for m in found] == [ids[3], ids[2], ids[0]]
    for m in found:
        assert set(m) == {"id", "room_id", "text", "created_at", "author"}
        assert m["room_id"] == room and m["created_at"].endswith("Z")


def test_paging_with_before_visits_every_match_once(server: ServerProcess, room: str) -> None:
    texts = [f"page{'match' if i % 3 else 'other'} {i}" for i in range(60)]
    ids = send(server, room, texts)
    expected = [i for i, t in zip(ids, texts, strict=True) if "pagematch" in t][::-1]
    seen: list[int] = []
    before = None
    while page := search(
        server, "pagematch", room_id=room, limit=7, **({"before": before} if before else {})
    ):
        assert len(page) <= 7
        seen += [m["id"] for m in page]
        before = page[-1]["id"]
    assert seen == expected


def test_the_room_filter(server: ServerProcess) -> None:
    first, second = unique_room("a"), unique_room("b")
    word = f"zebra{unique_room('w')[-10:]}"
    [in_first] = send(server, first, [f"{word} here"])
    [in_second] = send(server, second, [f"{word} there"])
    assert [m["id"] for m in search(server, word, room_id=first)] == [in_first]
    assert [m["id"] for m in search(server, word, room_id=second)] == [in_second]
    assert [m["id"] for m in search(server, word)] == [in_second, in_first]
    assert search(server, word, room_id=unique_room("none")) == []


def test_deleted_messages_are_not_found(server: ServerProcess, room: str) -> None:
    ids = send(server, room, ["walrus kept", "walrus gone", "walrus also gone"])
    delete_rows(server, ids[1:])
    assert [m["id"] for m in search(server, "walrus", room_id=room)] == [ids[0]]
    [later] = send(server, room, ["walrus later"])
    assert [m["id"] for m in search(server, "walrus", room_id=room)] == [later, ids[0]]


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "x" * 257},
        {"q": "x", "limit": 0},
        {"q": "x", "limit": 101},
        {"q": "x", "before": -1},
        {"q": "x", "room_id": "a/b"},
        {"q": "x", "room_id": ".."},
        {},
    ],
)
def test_bad_parameters_are_422(server: ServerProcess, params: dict) -> None:
    response = httpx.get(f"{server.http}/search", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_around_gives_a_hit_in_its_context(server: ServerProcess, room: str) -> None:
    ids = send(server, room, [f"ctx {i}" for i in range(10)])
    around = server.messages(room, around=ids[5], limit=5)
    assert [m["id"] for m in around] == ids[3:8]  # 2 before, the hit, 2 after
    assert [m["id"] for m in server.messages(room, around=ids[5], limit=4)] == ids[3:7]
    assert [m["id"] for m in server.messages(room, around=ids[1], limit=6)] == ids[0:6]
    assert [m["id"] for m in server.messages(room, around=ids[9], limit=6)] == ids[6:10]
    assert [m["id"] for m in server.messages(room, around=ids[4], limit=1)] == [ids[4]]
    assert [m["id"] for m in server.messages(room, around=0, limit=3)] == ids[0:3]


@pytest.mark.parametrize("other", [{"before": 5}, {"after": 5}, {"before": 9, "after": 1}])
def test_around_with_before_or_after_is_422(server: ServerProcess, other: dict) -> None:
    response = httpx.get(f"{server.http}/rooms/general/messages", params={"around": 3, **other})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "around"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=st.text(min_size=1, max_size=256))
def test_any_q_gives_200_and_a_list(server: ServerProcess, corpus: str, q: str) -> None:
    response = httpx.get(f"{server.http}/search", params={"q": q}, timeout=10.0)
    assert response.status_code == 200, (q, response.text)
    assert isinstance(response.json(), list)


# Latin with accents (composed and combining), Cyrillic, Greek, CJK, digits, punctuation, emoji.
ALPHABET = st.sampled_from(
    list("abcxyzABCXYZ019éÉèçñüÖøß")
    + list("пРиВЕт")
    + list("αβΓ")
    + list("你好世界")
    + ["\u0301", " ", " ", "\u3000", ".", "-", "+", "@", "/", ":", '"', "*", "(", "'", "🎉", "\n"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(ALPHABET, min_size=1, max_size=80), data=st.data())
def test_a_word_of_a_stored_message_finds_it(
    server: ServerProcess, room: str, text: str, data: st.DataObject
) -> None:
    words = [w for term in parse(text) for w in term.words]
    if not text.strip() or not words:
        return
    [stored] = send(server, room, [text])
    word = data.draw(st.sampled_from(words)).text
    found = [m["id"] for m in search(server, word, room_id=room, limit=100)]
    assert stored in found, (text, word)
    # Any beginning of the word that is itself a word (not only a combining mark).
    cut = data.draw(st.sampled_from([k for k in range(1, len(word) + 1) if parse(word[:k])]))
    found = [m["id"] for m in search(server, word[:cut] + "*", room_id=room, limit=100)]
    assert stored in found, (text, word[:cut])


def test_a_large_room_is_searched_and_paged_like_a_small_one(
    server: ServerProcess, room: str
) -> None:
    # Above store_search.SMALL_ROOM messages the room filter takes the index-first plan.
    texts = [f"{'lark' if i % 50 == 7 else 'wren'} {i}" for i in range(620)]
    ids = send(server, room, texts)
    send(server, unique_room("elsewhere"), ["lark elsewhere"])
    expected = [i for i, t in zip(ids, texts, strict=True) if t.startswith("lark")][::-1]
    first = search(server, "lark", room_id=room, limit=5)
    rest = search(server, "lark", room_id=room, limit=100, before=first[-1]["id"])
    assert [m["id"] for m in first + rest] == expected
