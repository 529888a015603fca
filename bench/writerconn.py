"""The project's store with something done on its SQLite writer's connection as it opens,
after app/db.py's own pragmas: how bench/ variants change one thing about the writer."""

import sqlite3
from collections.abc import Callable
from typing import Any

from app.store import Store

Setup = Callable[[sqlite3.Connection], None]


def with_writer_setup(
    setup: Setup, name: str = "SetUpStore", *, follow_search_index: bool = True
) -> type[Store]:
    """`follow_search_index=False`: nothing adds the stored messages to the search index in
    the background or before a search (app/search_index.py), for a setup that indexes them
    some other way or not at all."""

    class SetUpStore(Store):
        def __init__(self, engine: Any) -> None:
            super().__init__(engine)
            if not follow_search_index:
                self._search_index = None
            thread = self._sqlite
            if thread is not None:
                own = thread._on_connect

                def on_connect(db: sqlite3.Connection, record: Any) -> None:
                    own(db, record)
                    setup(db)

                thread._on_connect = on_connect

    SetUpStore.__name__ = SetUpStore.__qualname__ = name
    return SetUpStore
