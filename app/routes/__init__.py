"""Every route of the app, gathered in one place."""

from fastapi import APIRouter

from app.routes import api, pages, search, ws

router = APIRouter()
router.include_router(api.router)
router.include_router(search.router)
router.include_router(pages.router)
router.include_router(ws.router)
