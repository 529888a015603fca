"""The collector setting of app/heap.py, in the app's own lifespan (unit level: no socket)."""

import gc

from fastapi.testclient import TestClient

from app import heap
from app.main import create_app
from app.settings import Settings


def test_startup_objects_are_frozen_while_serving_and_handed_back_at_shutdown(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    gc.unfreeze()
    young = gc.get_threshold()[0]
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000  # the modules, SQLAlchemy, pydantic, FastAPI
        assert gc.get_threshold()[0] == heap.YOUNG  # a message's objects mostly die young
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] == young
