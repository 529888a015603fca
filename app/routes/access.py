"""app/auth.py's rules for the REST API: the caller of a request, its refusals as 401/403, and
the bearer scheme in the OpenAPI document when tokens are on."""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import auth
from app.chat import ChatDep
from app.schemas import ErrorDetail

SCHEME = "bearer"


def refusal(refused: auth.Refused) -> HTTPException:
    """FastAPI's `{"detail": reason}`; a 401 says how to authenticate (RFC 6750)."""
    headers = None
    if refused.status == 401:
        error = "" if refused.reason == "no token" else ', error="invalid_token"'
        headers = {"WWW-Authenticate": f'Bearer realm="chat"{error}'}
    return HTTPException(refused.status, refused.reason, headers=headers)


# Declares the scheme in the OpenAPI document (see `document_access`); never refuses by itself.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SCHEME,
    bearerFormat="JWT",
    description="An access token signed with CHAT_AUTH_SECRET (HS256)",
)


def get_caller(
    chat: ChatDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> auth.Identity | None:
    """Who calls: from the `Authorization: Bearer` header only (never the query string)."""
    token = credentials.credentials.strip() or None if credentials is not None else None
    try:
        return auth.caller(token, chat.settings.access)
    except auth.Refused as refused:
        raise refusal(refused) from None


CallerDep = Annotated[auth.Identity | None, Depends(get_caller)]


def check_room(caller: auth.Identity | None, room_id: str, access: auth.Access) -> None:
    try:
        auth.check_room(caller, room_id, access)
    except auth.Refused as refused:
        raise refusal(refused) from None


def document_access(app: FastAPI, access: auth.Access) -> None:
    """The OpenAPI document tells the truth about tokens. FastAPI marks every operation that
    asks for its caller with the bearer scheme; with tokens on, the token is optional there
    (public rooms need none) and the operation may answer 401 or 403; with tokens off, no
    operation takes one and the scheme is left out."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    tokens = access.tokens

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI; the changes below are idempotent
        components = schema.setdefault("components", {})
        if tokens:
            components.setdefault("schemas", {}).setdefault(
                "ErrorDetail", ErrorDetail.model_json_schema()
            )
        else:
            components.pop("securitySchemes", None)
        for operation in _operations(schema):
            if "security" not in operation:
                continue
            if not tokens:
                del operation["security"]
                continue
            operation["security"] = [{SCHEME: []}, {}]
            operation["responses"]["401"] = {
                "description": "No token where one is needed, or a token that is not valid",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": _ERROR,
            }
            operation["responses"]["403"] = {
                "description": "The token does not allow this room",
                "content": _ERROR,
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in schema.get("paths", {}).values():
        yield from (op for op in path.values() if isinstance(op, dict))
