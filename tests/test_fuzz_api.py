"""schemathesis over the published OpenAPI document, through the running server: every REST
operation, valid and invalid input, no 5xx, every response inside the published schema (status,
content type, body), every 4xx with FastAPI's error body."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from websockets.sync.client import connect

from app.auth import mint_token
from app.main import create_app
from app.search import parse
from app.settings import Settings
from tests.conftest import StartServer
from tests.support import ServerProcess, faulty_server_command, unique_room

EXAMPLES = 60

# Stored so that the listings the fuzzer reads have bodies to check, not only `[]`.
SEED_TEXTS = ["hello", "é\u0301 \u202eRTL\u202c 🧪 𝄞", "\x01\x07 control", "  padded  "]


@pytest.fixture(scope="module")
def seeded_room(server: ServerProcess) -> str:
    room = unique_room("fuzz-api")
    with connect(server.ws(room)) as ws:
        for text in SEED_TEXTS:
            ws.send(text)
            assert ws.recv(timeout=10) == f"You wrote: {text}"
    return room


# The document the app generates, loaded without I/O so that pytest can collect one test per
# operation; test_the_server_publishes_the_fuzzed_document proves the server serves this one.
DOCUMENT = create_app().openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)


def assert_fastapi_error_body(response: schemathesis.Response) -> None:
    """FastAPI's bodies: `{"detail": [validation errors]}` for 422, `{"detail": str}` else."""
    body = response.json()
    assert set(body) == {"detail"}, body
    if response.status_code == 422:
        assert body["detail"], body
        for error in body["detail"]:
            assert {"loc", "msg", "type"} <= set(error), error
    else:
        assert isinstance(body["detail"], str), body


def around_with_before_or_after(case: schemathesis.Case) -> bool:
    # Refused with 422, as the contract says, though each parameter is valid alone: OpenAPI
    # cannot say that parameters exclude each other. A parameter given as None or as an empty
    # list of values is not sent at all.
    query = case.query or {}

    def sent(name: str) -> bool:
        return query.get(name) not in (None, [])

    return sent("around") and (sent("before") or sent("after"))


def check(case: schemathesis.Case, server: ServerProcess) -> None:
    excluded = [positive_data_acceptance] if around_with_before_or_after(case) else []
    response = case.call_and_validate(base_url=server.http, excluded_checks=excluded)
    if excluded:
        assert response.status_code >= 400, response.text
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_fastapi_error_body(response)


@schema.parametrize()
def test_every_operation_answers_inside_its_published_schema(
    case: schemathesis.Case, server: ServerProcess, seeded_room: str
) -> None:
    check(case, server)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_paging_a_room_with_messages_answers_inside_the_schema(
    server: ServerProcess, seeded_room: str, mode: GenerationMode
) -> None:
    # Random room ids are almost always unknown rooms (`[]`): fix the room to check real bodies.
    operation = schema["/rooms/{room_id}/messages"]["GET"]
    cases = operation.as_strategy(mode, path_parameters={"room_id": seeded_room})

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(cases)
    def page(case: schemathesis.Case) -> None:
        check(case, server)

    page()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_searching_a_room_with_messages_answers_inside_the_schema(
    server: ServerProcess, seeded_room: str, mode: GenerationMode
) -> None:
    # A random q almost never matches: fix one that finds the seeded texts, fuzz the rest.
    operation = schema["/search"]["GET"]
    cases = operation.as_strategy(mode, query={"q": "hello control padded", "room_id": seeded_room})

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(cases)
    def find(case: schemathesis.Case) -> None:
        check(case, server)

    find()
    found = httpx.get(f"{server.http}/search", params={"q": "padded", "room_id": seeded_room})
    assert [m["text"] for m in found.json()] == ["  padded  "]


def test_the_seeded_room_is_listed_through_the_schema(server: ServerProcess, seeded_room: str):
    # The fuzzer's listings had real messages to validate against the response schema.
    assert [m["text"] for m in server.messages(seeded_room)] == SEED_TEXTS


def _operation(server: ServerProcess, path: str) -> dict:
    return httpx.get(f"{server.http}/openapi.json").json()["paths"][path]["get"]


def test_a_path_that_matches_no_route_gives_the_documented_404(server: ServerProcess):
    # An encoded slash splits the room id: the router matches nothing, FastAPI answers 404.
    response = httpx.get(f"{server.http}/rooms/a%2Fb/messages")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    documented = _operation(server, "/rooms/{room_id}/messages")["responses"]
    assert "404" in documented
    assert documented["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorDetail"
    }


@pytest.mark.parametrize("path", ["/rooms/{room_id}/messages", "/rooms", "/search"])
def test_validation_errors_are_documented_with_fastapis_model(server: ServerProcess, path: str):
    documented = _operation(server, path)["responses"]["422"]
    assert documented["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }


def test_the_server_publishes_the_fuzzed_document(server: ServerProcess):
    assert httpx.get(f"{server.http}/openapi.json").json() == DOCUMENT


def test_while_the_database_does_not_answer_every_answer_is_documented(
    start_server: StartServer, tmp_path
):
    fault = tmp_path / "fault"
    srv = start_server({"CHAT_TEST_FAULT_FILE": str(fault)}, command=faulty_server_command())
    fault.touch()
    for path in ("/rooms/general/messages", "/rooms", "/search?q=x"):
        response = httpx.get(f"{srv.http}{path}")
        assert response.status_code == 503
        assert response.json() == {"detail": "the database does not answer"}

    # The metrics need no database: they answer, and say how the commits fail.
    assert httpx.get(f"{srv.http}/metrics").status_code == 200

    @settings(max_examples=15, deadline=None, database=None)
    @given(schema.exclude(path="/metrics").as_strategy(GenerationMode.POSITIVE))
    def down(case: schemathesis.Case) -> None:
        # A 5xx is the truth here; it must still be a documented one, with its documented body.
        if around_with_before_or_after(case):
            return
        response = case.call_and_validate(base_url=srv.http, excluded_checks=[not_a_server_error])
        if case.path == "/search" and not parse((case.query or {}).get("q", "")):
            # A q without words is [] by the rules alone: nothing to ask the database.
            assert response.status_code == 200 and response.json() == [], response.text
            return
        if case.method == "DELETE":
            # The open chat refuses every deletion by its rules alone: no database asked.
            assert response.status_code == 403, response.text
            return
        assert response.status_code == 503, (case.path, case.query, response.text)

    down()
    assert "REST read failed, answering 503" in srv.log()
    fault.unlink()
    assert httpx.get(f"{srv.http}/rooms").status_code == 200


# --- the same with tokens on (CHAT_AUTH_SECRET set), a valid token supplied -----------------

SECRET = "fuzzing-secret-of-the-access-tokens-0123456789"
TOKENS_SETTINGS = {"CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": "lobby,open-*"}
TOKENS_DOCUMENT = create_app(Settings(auth_secret=SECRET, public_rooms="lobby,open-*")).openapi()
tokens_schema = schemathesis.openapi.from_dict(TOKENS_DOCUMENT)
tokens_schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)
TOKEN = mint_token(SECRET, "fuzzer", rooms=["fuzz-*", "lobby"])
TOKENS_ROOM = unique_room("fuzz-api")


@pytest.fixture(scope="module")
def tokens_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**TOKENS_SETTINGS, "CHAT_RATE_LIMIT": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz-tokens"), env).start()
    with connect(f"{proc.ws(TOKENS_ROOM)}?access_token={TOKEN}") as ws:
        for text in SEED_TEXTS:
            ws.send(text)
            assert ws.recv(timeout=10) == f"You wrote: {text}"
    yield proc
    proc.stop()


@tokens_schema.parametrize()
def test_with_tokens_every_operation_answers_inside_its_published_schema(
    case: schemathesis.Case, tokens_server: ServerProcess
) -> None:
    # Most generated room ids are outside the token's rooms: 403s, documented, are checked too.
    response = case.call_and_validate(
        base_url=tokens_server.http,
        headers={"Authorization": f"Bearer {TOKEN}"},
        excluded_checks=[positive_data_acceptance] if around_with_before_or_after(case) else [],
    )
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_fastapi_error_body(response)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_with_tokens_paging_a_readable_room_answers_inside_the_schema(
    tokens_server: ServerProcess, mode: GenerationMode
) -> None:
    operation = tokens_schema["/rooms/{room_id}/messages"]["GET"]
    cases = operation.as_strategy(mode, path_parameters={"room_id": TOKENS_ROOM})
    seen: set[int] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(cases)
    def page(case: schemathesis.Case) -> None:
        excluded = [positive_data_acceptance] if around_with_before_or_after(case) else []
        response = case.call_and_validate(
            base_url=tokens_server.http,
            headers={"Authorization": f"Bearer {TOKEN}"},
            excluded_checks=excluded,
        )
        seen.add(response.status_code)
        assert response.status_code < 500

    page()
    assert 200 in seen if mode == GenerationMode.POSITIVE else seen


def test_with_tokens_the_server_publishes_the_fuzzed_document(tokens_server: ServerProcess):
    assert httpx.get(f"{tokens_server.http}/openapi.json").json() == TOKENS_DOCUMENT
