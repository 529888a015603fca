"""The browser client: a room picker and the chat room page (left out of the API schema)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.chat import ChatDep
from app.routes.params import RoomId
from app.schema import ROOT

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=ROOT / "templates")
# The pages' scripts and styles, served by the app itself: no CDN, so a closed network works.
static_files = StaticFiles(directory=ROOT / "app" / "static")


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, chat: ChatDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "index.html", {"max_message_bytes": chat.settings.max_message_bytes}
    )


@router.get("/rooms/{room_id}", response_class=HTMLResponse)
async def chatroom(request: Request, room_id: RoomId, chat: ChatDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "chatroom.html",
        {
            "room_id": room_id,
            "max_message_bytes": chat.settings.max_message_bytes,
            "history_replay": chat.settings.history_replay,
            "tokens": chat.settings.access.tokens,
            # The page paces its sends to stay within the server's token bucket (0: no limit).
            "rate_limit": chat.settings.rate_limit if chat.settings.rate_limited else 0,
            "rate_burst": chat.settings.rate_burst,
        },
    )
