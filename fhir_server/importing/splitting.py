"""`fhir-server import`: a transaction over `FHIR_MAX_TRANSACTION_BYTES` is loaded as several transactions.

The server refuses such a transaction with 413: the database stalls committing more (see
docs/bundles.md). `SplittingTarget` measures each transaction Bundle as the server does
(`bundles.size`) and submits one over the limit as consecutive runs of its entries, in request
order, each run a transaction under the limit. A run cannot name another run's entries by their
fullUrl, so every entry referenced through its fullUrl (anywhere in any resource, as
`bundles.references` finds references, or as a search value in an entry's URL) must have an
identity fixed before the server sees it: `PUT Type/id`, which `sources.idempotent` makes of
every create of a resource with an id. Those references are rewritten to that `Type/id` first.
A referenced entry whose id the server chooses (a create without id or with `ifNoneExist`, a
conditional update), or an entry over the limit on its own, makes the Bundle unsplittable: it is
submitted whole and the server's 413 is reported with why it was not split. Conditional
references (`Patient?identifier=...`) are left to the server, which resolves them per run.

The runs are committed one after the other; the first that fails ends the Bundle, reported with
the runs already committed. Entry indexes the server names in a refusal (`Bundle.entry[N]`) are
renumbered to the Bundle as submitted, so that `--skip-invalid` (`skipping`, which wraps this
target) leaves out the right entries and resubmits the rest, split again.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from fhir_server.bundles.references import Identities, base_of, copy_json, reference_holders
from fhir_server.bundles.size import entry_bytes
from fhir_server.fhir.outcome import FhirError
from fhir_server.importing.loader import ENTRY_LABEL, Json, Outcome, Target, outcome_of
from fhir_server.interactions.routing import parse_route


class Unsplittable(Exception):
    """Why a transaction over the limit cannot be loaded as several."""


class SplittingTarget:
    """Submits to `target` every transaction over `limit` bytes as several transactions under it."""

    def __init__(self, target: Target, limit: int) -> None:
        self.target = target
        self.limit = limit

    async def submit(self, bundle: Json) -> Outcome:
        if bundle.get("type") != "transaction":  # a batch commits entry by entry: never too large
            return await self.target.submit(bundle)
        try:
            runs = split_transaction(bundle, self.limit)
        except Unsplittable as reason:
            # Whole: the server answers its 413, or takes it if its own limit is higher (`--url`).
            outcome = await self.target.submit(bundle)
            outcome.errors = [f"{error}; not split into smaller transactions: {reason}" for error in outcome.errors]
            return outcome
        if len(runs) == 1:
            return await self.target.submit(bundle)
        written = 0
        for number, (_, run) in enumerate(runs, 1):
            outcome = await self.target.submit(run)
            if outcome.errors:
                return self._failed(outcome, runs, number, written)
            written += outcome.written
        return Outcome(written, transactions=len(runs))

    def _failed(self, outcome: Outcome, runs: list[tuple[int, Json]], number: int, written: int) -> Outcome:
        """The failure of run `number`, naming the entries of the Bundle as submitted and what was committed."""
        start, run = runs[number - 1]
        if outcome.refusal is not None:
            outcome = outcome_of(outcome.status, renumbered(outcome.refusal, start))
        committed = f"{_span(1, number - 1)} committed ({written} resources)" if number > 1 else "nothing committed"
        if number < len(runs):
            committed += f", {_span(number + 1, len(runs))} not sent"
        # Only plain creates are not idempotent: `sources.idempotent` made those of resources with an id PUTs.
        creates = sum(1 for _, done in runs[:number - 1] for e in done["entry"]
                      if (e.get("request") or {}).get("method") == "POST" and not e["request"].get("ifNoneExist"))
        rerun = (f"re-running the import creates its {creates} committed entries without id again" if creates
                 else "re-running the import is safe (PUT by id)")
        where = (f"split into {len(runs)} transactions (over FHIR_MAX_TRANSACTION_BYTES, {self.limit} bytes): "
                 f"transaction {number} (entries {start}-{start + len(run['entry']) - 1}) failed, {committed}, "
                 f"{rerun}")
        return Outcome(written, [f"{where}: {error}" for error in outcome.errors], status=outcome.status,
                       refusal=outcome.refusal, transactions=len(runs))


def split_transaction(bundle: Json, limit: int) -> list[tuple[int, Json]]:
    """`bundle` as consecutive transactions of at most `limit` bytes of resources each, with the
    index of each one's first entry; `[(0, bundle)]` when it is within the limit."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return [(0, bundle)]
    sizes = [entry_bytes(e) for e in entries]
    if sum(sizes) <= limit:
        return [(0, bundle)]
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Unsplittable(f"entry[{index}] is not an object")
        if sizes[index] > limit:
            raise Unsplittable(f"entry[{index}] alone takes {sizes[index]} bytes")
    entries = with_fixed_references(entries)
    starts, size = [0], 0
    for index, entry_size in enumerate(sizes):
        if size + entry_size > limit:
            starts.append(index)
            size = 0
        size += entry_size
    ends = [*starts[1:], len(entries)]
    return [(start, {**bundle, "entry": entries[start:end]}) for start, end in zip(starts, ends, strict=True)]


def with_fixed_references(entries: list[Json]) -> list[Json]:
    """The entries with every reference to another entry's fullUrl replaced by its `Type/id` (on
    copies of what changes); `Unsplittable` when a referenced entry has no fixed identity."""
    identities = Identities()
    for index, entry in enumerate(entries):
        identities.add(entry.get("fullUrl"), str(index))
    targets = [fixed_identity(e) for e in entries]

    def target(referrer: int, reference: str, base: str | None) -> str | None:
        found = identities.resolve(reference, base)
        if found is None or int(found) == referrer:  # not an entry, or itself: always in its own run
            return None
        if targets[int(found)] is None:
            raise Unsplittable(f"entry[{referrer}] references entry[{found}] ({reference}), whose id the server "
                               f"chooses ({_request(entries[int(found)])}); only PUT Type/id entries can be "
                               "referenced across transactions")
        return targets[int(found)]

    fixed = []
    for index, entry in enumerate(entries):
        base = base_of(entry.get("fullUrl"))
        entry = dict(entry)
        if any(target(index, holder["reference"], base) for holder in reference_holders(entry.get("resource"))):
            entry["resource"] = copy_json(entry["resource"])
            for holder in reference_holders(entry["resource"]):
                holder["reference"] = target(index, holder["reference"], base) or holder["reference"]
        request = entry.get("request")
        if isinstance(request, dict) and isinstance(request.get("url"), str) and "?" in request["url"]:
            url = _with_query(request["url"], lambda value, referrer=index: target(referrer, value, None))
            entry["request"] = {**request, "url": url}
        fixed.append(entry)
    return fixed


def fixed_identity(entry: Json) -> str | None:
    """The `Type/id` a `PUT Type/id` entry writes; None for any entry whose target the server chooses."""
    request = entry.get("request")
    url = request.get("url") if isinstance(request, dict) else None
    if not isinstance(url, str) or request.get("method") != "PUT" or "?" in url or "://" in url:
        return None
    try:
        route = parse_route("PUT", url.strip("/"))
    except FhirError:
        return None
    return f"{route.type}/{route.id}" if route.interaction == "update" else None


def renumbered(refusal: Json, start: int) -> Json:
    """A run's refusal with its entry indexes (`Bundle.entry[N]`) made those of the whole Bundle."""
    def shift(text: str) -> str:
        return ENTRY_LABEL.sub(lambda match: f"Bundle.entry[{int(match[1]) + start}]", text)

    issues = []
    for issue in refusal.get("issue") or []:
        issue = dict(issue)
        if isinstance(issue.get("diagnostics"), str):
            issue["diagnostics"] = shift(issue["diagnostics"])
        if isinstance(issue.get("expression"), list):
            issue["expression"] = [shift(e) for e in issue["expression"]]
        issues.append(issue)
    return {**refusal, "issue": issues}


def _with_query(url: str, target: Callable[[str], str | None]) -> str:
    """`url` with the search values naming an entry replaced by its `Type/id`, as the server would."""
    path, query = url.split("?", 1)
    params = parse_qsl(query, keep_blank_values=True)
    rewritten = [(name, target(value) or value) for name, value in params]
    return url if rewritten == params else f"{path}?{urlencode(rewritten)}"


def _span(first: int, last: int) -> str:
    return f"transaction {first}" if first == last else f"transactions {first}-{last}"


def _request(entry: Json) -> str:
    request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
    extra = f" ifNoneExist {request['ifNoneExist']}" if request.get("ifNoneExist") else ""
    return f"{request.get('method')} {request.get('url')}{extra}"
