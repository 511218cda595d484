"""FHIR ids and instants: generating, checking, formatting and parsing them."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE_TIME = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def new_id() -> str:
    """A fresh server-assigned logical id."""
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def now() -> datetime:
    """The server's UTC time, truncated to the millisecond that BSON dates keep."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_instant(moment: datetime) -> str:
    """`2024-05-01T10:20:30.123Z`: a FHIR instant in UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, for Last-Modified."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def date_time_range(value: str) -> tuple[datetime, datetime] | None:
    """A FHIR date, dateTime or instant as the UTC [start, end) range it covers; None if malformed.

    `2024` covers the whole year, `2024-05-01T10:20` a minute; a time without a zone is taken
    as UTC, the server's zone.
    """
    match = _DATE_TIME.fullmatch(value.strip())
    if not match:
        return None
    g = match.groupdict()
    try:
        year = int(g["year"])
        if g["month"] is None:
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        month = int(g["month"])
        if g["day"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        day = int(g["day"])
        if g["hour"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        zone = g["tz"] or "Z"
        offset = timedelta() if zone == "Z" else (1 if zone[0] == "+" else -1) * timedelta(
            hours=int(zone[1:3]), minutes=int(zone[4:6]))
        fraction = g["fraction"] or ""
        local = datetime(year, month, day, int(g["hour"]), int(g["minute"]), int(g["second"] or 0),
                         int(float(fraction or 0) * 1_000_000), tzinfo=UTC)
    except ValueError:
        return None
    start = local - offset
    if g["second"] is None:
        width = timedelta(minutes=1)
    elif not fraction:
        width = timedelta(seconds=1)
    else:
        width = max(timedelta(seconds=10 ** -(len(fraction) - 1)), timedelta(microseconds=1))
    return start, start + width
