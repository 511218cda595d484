"""A PyMongo command listener for tests that check which queries reach the database."""

from __future__ import annotations

from pymongo import monitoring


class FindFilters(monitoring.CommandListener):
    """The filters of the `find` commands a client sends (to `collection` only, when given)."""

    def __init__(self, collection: str | None = None) -> None:
        self.collection = collection
        self.filters: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and self.collection in (None, event.command["find"]):
            self.filters.append(event.command["filter"])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
