"""schemathesis over the published OpenAPI document, through the running server: every REST
operation, valid and invalid input, no 5xx, every response inside the published schema (status,
content type, body), every 4xx with FastAPI's error body."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from websockets.sync.client import connect

from app.main import create_app
from tests.conftest import StartServer
from tests.support import ServerProcess, faulty_server_command, unique_room

EXAMPLES = 60

# Stored so that the listings the fuzzer reads have bodies to check, not only `[]`.
SEED_TEXTS = ["hello", "é\u0301 \u202eRTL\u202c 🧪 𝄞", "\x00\x07 control", "  padded  "]


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


def check(case: schemathesis.Case, server: ServerProcess) -> None:
    response = case.call_and_validate(base_url=server.http)
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


@pytest.mark.parametrize("path", ["/rooms/{room_id}/messages", "/rooms"])
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
    for path in ("/rooms/general/messages", "/rooms"):
        response = httpx.get(f"{srv.http}{path}")
        assert response.status_code == 503
        assert response.json() == {"detail": "the database does not answer"}

    @settings(max_examples=15, deadline=None, database=None)
    @given(schema.as_strategy(GenerationMode.POSITIVE))
    def down(case: schemathesis.Case) -> None:
        # A 5xx is the truth here; it must still be a documented one, with its documented body.
        response = case.call_and_validate(base_url=srv.http, excluded_checks=[not_a_server_error])
        assert response.status_code == 503

    down()
    assert "REST read failed, answering 503" in srv.log()
    fault.unlink()
    assert httpx.get(f"{srv.http}/rooms").status_code == 200
