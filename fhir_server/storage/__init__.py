"""Storage: the only code that knows MongoDB.

`Database` owns the client, transactions and indexes; `ResourceStore` is the narrow API the FHIR
interactions use (read, versions, create/update/delete, history pages). `embedded` runs the
default SecantusDB server. Layout of the collections: `docs/storage.md`.
"""

from fhir_server.storage.database import UNAVAILABLE_ERRORS, Database, Session
from fhir_server.storage.repository import HistoryPage, ResourceStore, Version

__all__ = ["UNAVAILABLE_ERRORS", "Database", "HistoryPage", "ResourceStore", "Session", "Version"]
