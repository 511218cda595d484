"""Which profiles a resource is validated against, on write and by `$validate`.

A resource is checked against every profile its `meta.profile` names that the server knows (the
clinic's profiles and the R4 core profiles it ships, such as vitalsigns); a URL it does not know
is accepted with a warning. `FHIR_REQUIRE_PROFILES` (`Settings.required_profiles`) names resource
types whose clinic profile is mandatory: resources of those types are checked against it whether
they claim it or not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

from fhir_server.fhir.outcome import FhirError
from fhir_server.validation.issue import Issue
from fhir_server.validation.profile import validate_profile
from fhir_server.validation.profile_definitions import CORE, clinic_profiles, definition

Json = dict[str, Any]
log = logging.getLogger(__name__)


@cache
def clinic_profile_of_type() -> dict[str, str]:
    """The clinic's profile URL for each resource type it profiles."""
    return {sd["type"]: url for url, sd in clinic_profiles().items()}


def check_required_types(types: Iterable[str]) -> None:
    """Refuse (ValueError) a `FHIR_REQUIRE_PROFILES` type the clinic has no profile for."""
    unknown = sorted(set(types) - set(clinic_profile_of_type()))
    if unknown:
        raise ValueError(f"FHIR_REQUIRE_PROFILES: no clinic profile for {', '.join(unknown)} "
                         f"(profiled types: {', '.join(sorted(clinic_profile_of_type()))})")


def profiles_for(resource: Json, required_types: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
    """The profile URLs `resource` is validated against, claimed, required and `extra`, in order."""
    claimed = (resource.get("meta") or {}).get("profile") or []
    required = clinic_profile_of_type().get(resource["resourceType"]) if resource["resourceType"] in set(
        required_types) else None
    return list(dict.fromkeys([*claimed, *([required] if required else []), *extra]))


def profile_issues(resource: Json, urls: Iterable[str], *, base: bool = False) -> list[Issue]:
    """The issues of `resource` (structurally valid) against each of `urls`, and against its base
    definition when `base`; an unknown URL is one warning."""
    urls = list(urls)
    if base:
        urls.insert(0, CORE + resource["resourceType"])
    issues: list[Issue] = []
    for url in urls:
        if definition(url) is None:
            issues.append(Issue("warning", "not-supported", f"profile {url} is not known: not validated against it",
                                "meta.profile"))
        else:
            issues += validate_profile(resource, url)
    return list(dict.fromkeys(issues))


def enforce_profiles(resource: Json, required_types: Iterable[str]) -> None:
    """Raise 422 with one issue per violation of the profiles `resource` claims or its type requires."""
    urls = profiles_for(resource, required_types)
    if not urls:
        return
    issues = profile_issues(resource, urls)
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    for issue in issues:
        if issue.code == "not-supported" and issue.expression == "meta.profile":
            log.warning("%s claims an unknown profile: %s", resource["resourceType"], issue.diagnostics)
    if errors:
        raise FhirError(422, errors[0].code, errors[0].diagnostics, issues=errors)
