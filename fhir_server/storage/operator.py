"""The database an operator command (`fhir-server import`, `user create`...) works on.

In order: the MongoDB named by `MONGODB_URI`; the embedded database of a running `fhir-server
serve` on the same data directory (its address is in `<data-dir>/embedded.json`); or, when no
server runs, the embedded database started just for the command.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fhir_server.config import Settings
from fhir_server.storage.database import Database
from fhir_server.storage.embedded import EmbeddedDatabase, running_address

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """A connected `Database` for the duration of an operator command."""
    embedded = None
    uri = settings.mongodb_uri or running_address(settings.data_dir)
    if uri is None:
        log.info("no server is running on %s: starting its embedded database for this command",
                 settings.data_dir)
        embedded = EmbeddedDatabase(settings.data_dir, cache_mb=settings.embedded_cache_mb)
        uri = embedded.start()
    database = Database(uri, settings.database_name, timeout_ms=settings.db_timeout_ms,
                        transaction_attempts=settings.transaction_attempts)
    try:
        yield database
    finally:
        await database.close()
        if embedded is not None:
            embedded.stop()
