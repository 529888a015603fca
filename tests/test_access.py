"""Names, access tokens and private rooms, through a real server (contract: "Identity and
access"). The token server has CHAT_AUTH_SECRET set and `lobby, open-*` public."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from websockets.exceptions import InvalidStatus

from tests.clients import closed_with, history, join, join_json, recv, recv_json
from tests.support import ROOT, ServerProcess, unique_room

pytestmark = pytest.mark.anyio

SECRET = "test-secret-of-the-access-tokens-0123456789"
PUBLIC = " lobby , open-* "


def token(sub: str = "alice", secret: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    with warnings.catch_warnings():  # HS512 with a 43-byte key: PyJWT warns, as it should
        warnings.simplefilter("ignore")
        return jwt.encode({"sub": sub, **claims}, secret, algorithm=algorithm)


def with_token(url: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}access_token={value}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": PUBLIC, "CHAT_RATE_LIMIT": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("tokens"), env).start()
    yield proc
    proc.stop()


async def refusal(url: str, **kwargs: Any) -> tuple[int | None, str]:
    """Connect, try to send, and return the close code and reason; nothing may be stored."""
    async with join(url, **kwargs) as ws:
        try:
            await ws.send("must not be stored")
        except Exception:
            pass
        code = await closed_with(ws)
        return code, ws.close_reason or ""


async def said(url: str, text: str, **kwargs: Any) -> dict[str, Any]:
    """Send `text` on a JSON socket and return the sender's own copy."""
    async with join_json(url, **kwargs) as ws:
        await history(ws)
        await ws.send(text)
        frame = await recv_json(ws)
        assert frame["own"] is True and frame["text"] == text
        return frame


def stored(server: ServerProcess, room: str, headers: dict[str, str] | None = None) -> list:
    response = httpx.get(f"{server.http}/rooms/{room}/messages", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


# --- open chat: names ------------------------------------------------------------------------


async def test_an_open_chat_name_labels_the_message_everywhere(server, room):
    async with (
        join_json(server.ws(room, "?name=%20%20Ann%20")) as ann,
        join_json(server.ws(room)) as other,
    ):
        await history(ann)
        await history(other)
        await ann.send("hi")
        own, seen = await recv_json(ann), await recv_json(other)
        assert own["author"] == seen["author"] == "Ann"
        assert seen["own"] is False
    frame = await said(server.ws(room, "?name="), "anonymous")  # empty name: no name
    assert frame["author"] is None
    assert [(m["text"], m["author"]) for m in server.messages(room)] == [
        ("hi", "Ann"),
        ("anonymous", None),
    ]
    async with join_json(server.ws(room)) as late:
        assert [m["author"] for m in await history(late)] == ["Ann", None]


async def test_a_plain_text_client_sees_the_tutorial_flow_whatever_its_name(server, room):
    async with join(server.ws(room, "?name=Bob")) as bob, join(server.ws(room)) as other:
        await bob.send("hello")
        assert await recv(bob) == "You wrote: hello"
        assert await recv(other) == "A client says: hello"


@pytest.mark.parametrize("name", ["%20%20", "x" * 33, "a%07b", "tab%09in", "%0A"])
async def test_a_bad_name_is_refused_like_a_bad_room_id(server, room, name):
    with pytest.raises(InvalidStatus) as info:
        async with join(server.ws(room, f"?name={name}")):
            pass
    assert info.value.response.status_code == 403
    assert server.messages(room) == []


async def test_a_name_of_32_characters_after_trimming_is_taken(server, room):
    name = "é" * 32
    frame = await said(server.ws(room, f"?name=%20{quote(name)}%20"), "x")
    assert frame["author"] == name


async def test_tokens_mean_nothing_without_a_secret(server, room):
    frame = await said(with_token(server.ws(room, "?name=Ann"), "not-a-token"), "open")
    assert frame["author"] == "Ann"


# --- tokens on the socket --------------------------------------------------------------------


async def test_without_a_token_a_private_room_closes_with_4401_and_stores_nothing(tokens):
    room = unique_room("private")
    assert await refusal(tokens.ws(room)) == (4401, "no token")
    assert await refusal(tokens.ws(room, "?name=Ann&access_token=")) == (4401, "no token")
    assert stored(tokens, room, bearer(token())) == []


BAD_TOKENS = {
    "another secret": (token(secret="another-secret-of-at-least-32-characters"), "invalid token"),
    "alg none": (jwt.encode({"sub": "alice"}, None, algorithm="none"), "invalid token"),
    "HS512": (token(algorithm="HS512"), "invalid token"),
    "malformed": ("not.a.jwt", "invalid token"),
    "garbage": ("%F0%9F%92%A5", "invalid token"),
    "expired": (token(exp=int(time.time()) - 10), "token expired"),
    "no sub": (jwt.encode({"name": "x"}, SECRET, algorithm="HS256"), "invalid token"),
    "empty sub": (token(sub=""), "invalid token"),
    "long sub": (token(sub="s" * 65), "invalid token"),
    "empty name": (token(name=""), "invalid token"),
    "long name": (token(name="n" * 65), "invalid token"),
    "rooms not a list": (token(rooms="lobby"), "invalid token"),
    "rooms not strings": (token(rooms=[1]), "invalid token"),
    "admin not a boolean": (token(admin="yes"), "invalid token"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
@pytest.mark.parametrize("room", ["private-room", "lobby", "open-x"])
async def test_a_bad_token_closes_with_4401_even_in_a_public_room(tokens, case, room):
    value, reason = BAD_TOKENS[case]
    before = len(stored(tokens, room, bearer(token())))
    assert await refusal(with_token(tokens.ws(room), value)) == (4401, reason)
    assert await refusal(tokens.ws(room), additional_headers=bearer(value)) == (4401, reason)
    assert len(stored(tokens, room, bearer(token()))) == before


async def test_a_valid_token_opens_a_private_room_by_query_or_header(tokens):
    room = unique_room("private")
    frame = await said(with_token(tokens.ws(room), token("u1", name="Uma")), "by query")
    assert frame["author"] == "Uma"
    frame = await said(tokens.ws(room), "by header", additional_headers=bearer(token("u2")))
    assert frame["author"] == "u2"  # no name claim: the sub
    assert [(m["text"], m["author"]) for m in stored(tokens, room, bearer(token()))] == [
        ("by query", "Uma"),
        ("by header", "u2"),
    ]


@pytest.mark.parametrize(
    ("patterns", "room", "allowed"),
    [
        (["team-a"], "team-a", True),
        (["team-a"], "team-ab", False),
        (["team-a"], "Team-a", False),
        (["team-*"], "team-", True),
        (["team-*"], "team-blue", True),
        (["team-*"], "team", False),
        (["team-*"], "TEAM-blue", False),
        (["x", "team-*"], "x", True),
        (["*"], "anything.at-all", True),
        ([], "team-a", False),
    ],
)
async def test_a_token_opens_only_the_rooms_of_its_patterns(tokens, patterns, room, allowed):
    url = with_token(tokens.ws(room), token("pat", rooms=patterns))
    if allowed:
        assert (await said(url, "in"))["author"] == "pat"
        return
    assert await refusal(url) == (4403, "room not allowed")
    response = httpx.get(
        f"{tokens.http}/rooms/{room}/messages", headers=bearer(token("pat", rooms=patterns))
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "room not allowed"}


async def test_public_rooms_are_open_with_and_without_a_token(tokens):
    room = unique_room("open")  # matches open-*
    frame = await said(tokens.ws(room, "?name=Guest"), "no token")
    assert frame["author"] == "Guest"
    # A valid token sets the author, whatever its rooms; ?name= is then ignored.
    url = with_token(tokens.ws(room, "?name=Ignored"), token("bo", name="Bo", rooms=["team-*"]))
    assert (await said(url, "with token"))["author"] == "Bo"
    assert [(m["text"], m["author"]) for m in stored(tokens, room)] == [
        ("no token", "Guest"),
        ("with token", "Bo"),
    ]
    assert (await said(tokens.ws("lobby"), "exact public pattern"))["author"] is None


async def test_with_a_token_a_bad_name_is_ignored_but_without_one_it_is_refused(tokens):
    room = unique_room("open")
    url = with_token(tokens.ws(room, "?name=%20%20"), token("cy"))
    assert (await said(url, "named by the token"))["author"] == "cy"
    with pytest.raises(InvalidStatus):
        async with join(tokens.ws(room, "?name=%20%20")):
            pass


async def test_a_connection_is_closed_with_4401_when_its_token_expires(tokens):
    room = unique_room("private")
    exp = int(time.time()) + 3
    async with join_json(with_token(tokens.ws(room), token("eve", exp=exp))) as ws:
        await history(ws)
        await ws.send("before expiry")
        assert (await recv_json(ws))["text"] == "before expiry"
        code = await closed_with(ws, timeout=15)
        closed_at = time.time()
        assert (code, ws.close_reason) == (4401, "token expired")
        assert exp - 0.2 <= closed_at <= exp + 1.0, closed_at - exp
    assert [m["text"] for m in stored(tokens, room, bearer(token()))] == ["before expiry"]


async def test_own_is_every_connection_of_the_same_sub(tokens):
    room = unique_room("private")
    mine, theirs = token("dana", name="Dana"), token("finn")
    async with (
        join_json(with_token(tokens.ws(room), mine)) as phone,
        join_json(with_token(tokens.ws(room), mine)) as laptop,
        join(with_token(tokens.ws(room), mine)) as terminal,
        join_json(with_token(tokens.ws(room), theirs)) as other,
    ):
        for ws in (phone, laptop, other):
            await history(ws)
        await phone.send("from my phone")
        sent, mirrored, seen = (
            await recv_json(phone),
            await recv_json(laptop),
            await recv_json(other),
        )
        assert sent["own"] is True and mirrored["own"] is True and seen["own"] is False
        assert sent["id"] == mirrored["id"] == seen["id"]
        assert mirrored["author"] == seen["author"] == "Dana"
        # Plain text keeps the tutorial's flow: "You wrote" is only the sending socket's.
        assert await recv(terminal) == "A client says: from my phone"
    async with (
        join_json(with_token(tokens.ws(room), mine)) as again,
        join_json(with_token(tokens.ws(room), theirs)) as stranger,
    ):
        assert [m["own"] for m in await history(again)] == [True]
        assert [m["own"] for m in await history(stranger)] == [False]


# --- REST ------------------------------------------------------------------------------------


def get(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{server.http}{path}", headers=headers, timeout=10)


@pytest.mark.parametrize("path", ["/rooms/secret-room/messages", "/rooms/lobby/messages", "/rooms"])
@pytest.mark.parametrize("case", ["another secret", "alg none", "HS512", "malformed", "expired"])
def test_rest_answers_401_with_www_authenticate_for_a_bad_token_anywhere(tokens, path, case):
    value, reason = BAD_TOKENS[case]
    response = get(tokens, path, bearer(value))
    assert response.status_code == 401
    assert response.json() == {"detail": reason}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_rest_answers_401_without_a_token_for_a_private_room(tokens):
    response = get(tokens, "/rooms/secret-room/messages")
    assert response.status_code == 401
    assert response.json() == {"detail": "no token"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # REST reads tokens only from the Authorization header; another scheme is no token.
    assert get(tokens, f"/rooms/secret-room/messages?access_token={token()}").status_code == 401
    assert (
        get(tokens, "/rooms/secret-room/messages", {"Authorization": "Basic YTpi"}).status_code
        == 401
    )
    assert get(tokens, "/rooms/secret-room/messages", bearer(token())).status_code == 200
    assert get(tokens, "/rooms/lobby/messages").status_code == 200


async def test_rooms_lists_only_the_rooms_the_caller_may_read(tokens):
    await check_rooms_listing(tokens)


async def check_rooms_listing(server: ServerProcess) -> None:
    tag = unique_room("")[1:]
    team, private, public = f"team-{tag}", f"private_{tag}", f"open-{tag}"
    admin = token("root", admin=True)
    for room in (team, private, public):
        await said(with_token(server.ws(room), admin), f"in {room}")

    def listed(headers: dict[str, str] | None) -> set[str]:
        response = get(server, "/rooms?limit=1000", headers)
        assert response.status_code == 200
        return {r["room_id"] for r in response.json()} & {team, private, public}

    assert listed(None) == {public}
    assert listed(bearer(token("t", rooms=["team-*"]))) == {team, public}
    assert listed(bearer(token("t", rooms=[private]))) == {private, public}
    # Case-sensitive, and `_` is no wildcard (SQL's LIKE would get both wrong).
    assert listed(bearer(token("t", rooms=["Team-*", "team", "team_*", "private-*"]))) == {public}
    assert listed(bearer(admin)) == {team, private, public}
    assert listed(bearer(token("t", rooms=["*"]))) == {team, private, public}
    # A room the caller may not read answers 403 whether it has messages or not.
    for room in (private, unique_room("private")):
        response = get(server, f"/rooms/{room}/messages", bearer(token("t", rooms=["team-*"])))
        assert response.status_code == 403


@pytest.mark.services
async def test_on_postgresql_and_redis_listing_and_own_follow_the_token(start_server, services_env):
    env = {**services_env, "CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": PUBLIC}
    srv = start_server(env, database_url=services_env["CHAT_DATABASE_URL"])
    await check_rooms_listing(srv)
    room = unique_room("team")
    mine = token("pg-user", name="Pat")
    async with (
        join_json(with_token(srv.ws(room), mine)) as one,
        join_json(with_token(srv.ws(room), mine)) as two,
    ):
        await history(one)
        await history(two)
        await one.send("through redis")
        assert (await recv_json(one))["own"] is True
        mirrored = await recv_json(two)
        assert mirrored["own"] is True and mirrored["author"] == "Pat"


async def test_the_author_is_stored_and_listed(tokens):
    room = unique_room("team")
    await said(with_token(tokens.ws(room), token("gil", name="Gil Ó")), "stored with its author")
    [message] = stored(tokens, room, bearer(token()))
    assert message["author"] == "Gil Ó"


def test_openapi_declares_the_bearer_scheme_and_refusals_only_with_tokens(tokens, server):
    spec = get(tokens, "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path in ("/rooms", "/rooms/{room_id}/messages"):
        operation = spec["paths"][path]["get"]
        assert {"bearer": []} in operation["security"]
        assert {"401", "403"} <= set(operation["responses"])
    assert "security" not in spec["paths"]["/healthz"]["get"]
    open_spec = get(server, "/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    assert "401" not in open_spec["paths"]["/rooms"]["get"]["responses"]


# --- tokens never logged ---------------------------------------------------------------------


async def test_no_token_reaches_the_server_output(start_server):
    srv = start_server({"CHAT_AUTH_SECRET": SECRET, "CHAT_LOG_LEVEL": "debug"})
    room = unique_room("private")
    good, bad = token("logged", name="L"), token(secret="another-secret-of-at-least-32-characters")
    await said(with_token(srv.ws(room, "?since=0"), good), "hello")
    await said(srv.ws(room), "by header", additional_headers=bearer(good))
    await refusal(with_token(srv.ws(room), bad))
    await refusal(srv.ws(room + "?access%5Ftoken=" + bad))
    get(srv, f"/rooms/{room}/messages?access_token={good}", bearer(good))
    get(srv, f"/rooms/{room}/messages", bearer(bad))
    get(srv, f"/nowhere?access_token={good}")
    srv.stop()
    output = srv.log()
    assert "WebSocket /" in output and '"GET /rooms/' in output  # the lines are there
    for secret in (good, bad, SECRET, *good.split("."), *bad.split(".")[1:]):
        assert secret not in output
    assert "access_token=[redacted]" in output


# --- python -m app token ---------------------------------------------------------------------


def run_token(*args: str, secret: str | None = SECRET, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "CHAT_AUTH_SECRET": secret or "", **env}
    return subprocess.run(
        [sys.executable, "-m", "app", "token", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_token_command_mints_tokens_the_server_accepts(tokens):
    result = run_token("hana", "--name", "Hana", "--room", "team-*", "--ttl", "12h")
    assert result.returncode == 0, result.stderr
    minted = result.stdout.strip()
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "hana" and claims["name"] == "Hana" and claims["rooms"] == ["team-*"]
    assert abs(claims["exp"] - (time.time() + 12 * 3600)) < 60
    room = unique_room("team")
    assert (await said(with_token(tokens.ws(room), minted), "minted"))["author"] == "Hana"
    assert await refusal(with_token(tokens.ws("elsewhere"), minted)) == (4403, "room not allowed")

    forever = run_token("ivy", "--admin", "--ttl", "0").stdout.strip()
    claims = jwt.decode(forever, SECRET, algorithms=["HS256"])
    assert "exp" not in claims and claims["admin"] is True and "rooms" not in claims
    default = jwt.decode(run_token("jo").stdout.strip(), SECRET, algorithms=["HS256"])
    assert abs(default["exp"] - (time.time() + 30 * 86400)) < 60


def test_the_token_command_prints_invite_links():
    result = run_token("kim", "--link", "team-x", "--base-url", "https://chat.example.com/")
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    prefix = "https://chat.example.com/rooms/team-x#access_token="
    assert link.startswith(prefix)
    claims = jwt.decode(link[len(prefix) :], SECRET, algorithms=["HS256"])
    assert claims["rooms"] == ["team-x"]  # an invite opens its room, unless --room says more
    default = run_token("kim", "--link", "r1", CHAT_HOST="10.0.0.5", CHAT_PORT="9000").stdout
    assert default.startswith("http://10.0.0.5:9000/rooms/r1#access_token=")


@pytest.mark.parametrize("secret", [None, ""])
def test_the_token_command_without_a_secret_exits_naming_it(secret):
    result = run_token("x", secret=secret)
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "CHAT_AUTH_SECRET" in line


def test_the_token_command_refuses_bad_claims():
    assert run_token("x", "--room", "a b").returncode != 0
    assert run_token("s" * 65).returncode != 0
    assert run_token("x", "--ttl", "soon").returncode != 0
    assert run_token("x", secret="too-short").returncode != 0
