"""The project's store with something done on its SQLite writer's connection as it opens,
after app/db.py's own pragmas: how bench/ variants change one thing about the writer."""

import sqlite3
from collections.abc import Callable
from typing import Any

from app.store import Store

Setup = Callable[[sqlite3.Connection], None]


def with_writer_setup(setup: Setup, name: str = "SetUpStore") -> type[Store]:
    class SetUpStore(Store):
        def __init__(self, engine: Any) -> None:
            super().__init__(engine)
            thread = self._sqlite
            if thread is not None:
                own = thread._on_connect

                def on_connect(db: sqlite3.Connection, record: Any) -> None:
                    own(db, record)
                    setup(db)

                thread._on_connect = on_connect

    SetUpStore.__name__ = SetUpStore.__qualname__ = name
    return SetUpStore
