"""`fhir-server import --skip-invalid`: load what can be loaded of Bundles refused for invalid resources.

A transaction is all or nothing, so one resource that fails validation refuses its whole Bundle
with 422. When a Bundle is refused with 422 naming an entry (`Bundle.entry[N]`, as
`bundles.responses.naming_entry` writes it), `SkippingTarget` validates every entry's resource
here the way the write path does (`check_valid`: structure, then the profiles it claims or the
settings require) to find all the invalid ones at once, leaves them out together with every
entry that references them through their fullUrl (transitively, so nothing dangles), and
submits the rest as one transaction. It repeats, `MAX_ROUNDS` at most, while the server still
names an entry: one this check cannot see, such as a PATCH or a profile only a remote server
knows. A Bundle that loads at once costs nothing more.

Only validation failures (422) are skipped: a malformed resource (400), a conflict (409, 412) or a
server failure still refuses the Bundle and is reported as its error.
"""

from __future__ import annotations

import re
from collections import defaultdict

from fhir_server.bundles.references import Identities, base_of, reference_holders
from fhir_server.config import Settings
from fhir_server.fhir.outcome import FhirError
from fhir_server.importing.loader import ENTRY_LABEL, Json, Outcome, Skipped, Target
from fhir_server.interactions.responses import check_valid

# Each round after the first drops at least the entry the server named; a Bundle still refused
# after this many is reported as an error rather than retried one entry at a time.
MAX_ROUNDS = 5
# How `naming_entry` prefixes each issue's diagnostics; the index is that of the resubmitted Bundle.
_ENTRY_PREFIX = re.compile(r"^Bundle\.entry\[\d+\] \(.*?\): ")


class SkippingTarget:
    """Submits Bundles to `target`, leaving out the invalid entries of those refused with 422.

    `settings` are the validation settings of the server written to (`FHIR_REQUIRE_PROFILES`);
    None when they are not known here (`--url`): then only the claimed profiles are checked.
    """

    def __init__(self, target: Target, settings: Settings | None) -> None:
        self.target = target
        self.settings = settings

    async def submit(self, bundle: Json) -> Outcome:
        outcome = await self.target.submit(bundle)
        entries: list[Json] = list(bundle.get("entry") or [])
        positions = list(range(len(entries)))  # each remaining entry's index in the Bundle as read
        skipped: list[Skipped] = []
        for round_number in range(MAX_ROUNDS):
            named = named_entry(outcome, len(entries))
            if named is None:
                break
            # The local check finds every invalid entry at once; later rounds only meet what it cannot see.
            invalid = invalid_entries(entries, self.settings) if round_number == 0 else {}
            invalid.setdefault(named, refusal_reason(outcome.refusal or {}))
            dropped = with_dependents(entries, invalid)
            skipped += [Skipped(positions[i], describe(entries[i]), reason) for i, reason in sorted(dropped.items())]
            kept = [i for i in range(len(entries)) if i not in dropped]
            entries, positions = [entries[i] for i in kept], [positions[i] for i in kept]
            if not entries:
                outcome = Outcome()
                break
            outcome = await self.target.submit({**bundle, "entry": entries})
        outcome.skipped = sorted(skipped, key=lambda s: s.index)
        return outcome


def named_entry(outcome: Outcome, count: int) -> int | None:
    """The entry a Bundle refused with 422 names as the invalid one, if any."""
    if outcome.status != 422 or not outcome.refusal:
        return None
    for issue in outcome.refusal.get("issue") or []:
        for expression in issue.get("expression") or []:
            match = ENTRY_LABEL.fullmatch(expression)
            if match and int(match[1]) < count:
                return int(match[1])
    return None


def refusal_reason(refusal: Json) -> str:
    """The diagnostics of the issues of a refused Bundle, without the entry prefix."""
    return "; ".join(_ENTRY_PREFIX.sub("", issue.get("diagnostics") or issue.get("code", ""))
                     for issue in refusal.get("issue") or [])


def invalid_entries(entries: list[Json], settings: Settings | None) -> dict[int, str]:
    """The entries creating or updating a resource the server would refuse with 422, with why."""
    found: dict[int, str] = {}
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if (entry.get("request") or {}).get("method") not in ("POST", "PUT") or not isinstance(resource, dict) \
                or not isinstance(resource.get("resourceType"), str):
            continue
        try:
            # 400 as `accept_resource` answers a structural error: such a Bundle is malformed, not skippable.
            check_valid(resource, 400, settings)
        except FhirError as error:
            if error.status == 422:
                found[index] = "; ".join(issue.diagnostics for issue in error.issues)
    return found


def with_dependents(entries: list[Json], invalid: dict[int, str]) -> dict[int, str]:
    """`invalid` and, transitively, every entry whose resource references one of them by fullUrl."""
    identities = Identities()
    for index, entry in enumerate(entries):
        identities.add(entry.get("fullUrl"), str(index))
    referrers: dict[int, set[int]] = defaultdict(set)
    for index, entry in enumerate(entries):
        base = base_of(entry.get("fullUrl"))
        for holder in reference_holders(entry.get("resource")):
            target = identities.resolve(holder["reference"], base)
            if target is not None and int(target) != index:
                referrers[int(target)].add(index)
    dropped = dict(invalid)
    pending = list(invalid)
    while pending:
        target = pending.pop()
        for index in sorted(referrers[target] - dropped.keys()):
            dropped[index] = f"references a skipped entry ({entries[target].get('fullUrl')})"
            pending.append(index)
    return dropped


def describe(entry: Json) -> str:
    """`Type/id` of the entry's resource, else its fullUrl, else its type or request URL."""
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
    if resource.get("resourceType") and resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return entry.get("fullUrl") or resource.get("resourceType") or (entry.get("request") or {}).get("url", "?")
