"""`$validate` at type and instance level (hl7.org/fhir/R4/resource-operation-validate.html).

Input parameters: `resource` (in a Parameters body, or the resource itself as the POST body),
`mode` (`create`, `update`, `delete`; absent: a general check) and `profile` (a canonical URL the
resource must also meet). `GET [type]/[id]/$validate` checks the stored current version.

The answer is 200 with an OperationOutcome listing every issue found, valid or not: structure,
the base definition (invariants, required bindings, reference targets), the profiles the resource
claims or `FHIR_REQUIRE_PROFILES` requires, and `profile`. A 4xx means the validation could not be
performed: malformed parameters, an unknown `profile`, a resource of another type, or (mode
`delete`, or no `resource` at instance level) no such resource.
"""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.outcome import bad_request, operation_outcome
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.responses import current_resource
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation
from fhir_server.validation import validate_resource
from fhir_server.validation.conformance import profile_issues, profiles_for
from fhir_server.validation.issue import Issue
from fhir_server.validation.profile_definitions import definition

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
MODES = ("create", "update", "delete")
PARAMETERS = ("resource", "mode", "profile")


@operation("validate", levels={"type", "instance"}, definition=DEFINITION)
async def validate(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    params = _parameters(req)
    mode, profile = params.get("mode"), params.get("profile")
    if mode is not None and mode not in MODES:
        raise bad_request(f"mode must be one of {', '.join(MODES)}, not '{mode}'", "mode")
    if profile is not None and (not isinstance(profile, str) or definition(profile) is None):
        raise bad_request(f"profile '{profile}' is not a StructureDefinition this server knows", "profile",
                          code="not-supported")
    if mode == "delete":
        return await _validate_delete(ctx, route)
    resource = params.get("resource")
    if resource is None:
        if route.id is None:
            raise bad_request("$validate at type level needs the resource to validate", "resource")
        ctx.access.require("read", route.type)
        resource = (await current_resource(ctx, route.type, route.id)).resource
    if not isinstance(resource, dict) or resource.get("resourceType") != route.type:
        found = resource.get("resourceType") if isinstance(resource, dict) else None
        raise bad_request(f"The resource to validate must be a {route.type}, not {found}", "resource")
    issues = _mode_issues(resource, mode, route)
    issues += validate_resource(resource)
    if not any(i.severity in ("error", "fatal") for i in issues):
        urls = profiles_for(resource, ctx.settings.required_profiles, [profile] if profile else [])
        issues += profile_issues(resource, urls, base=True)
    return _outcome(issues or [Issue("information", "informational", "No issues found: the resource is valid")])


def _parameters(req: FhirRequest) -> dict[str, Any]:
    body = req.body
    if isinstance(body, dict) and body.get("resourceType") not in (None, "Parameters"):
        # The resource itself as the body (its only resource parameter), the rest from the query.
        pairs = [*operation_parameters(FhirRequest(req.method, req.path, req.params)), ("resource", body)]
    else:
        pairs = operation_parameters(req)
    params: dict[str, Any] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise bad_request(f"Unknown parameter '{name}': $validate takes {', '.join(PARAMETERS)}", name)
        if name in params:
            raise bad_request(f"Parameter '{name}' is given more than once", name)
        params[name] = value
    return params


def _mode_issues(resource: Json, mode: str | None, route: Route) -> list[Issue]:
    if mode != "update":
        return []
    if "id" not in resource:
        return [Issue("error", "required", "An update needs the resource's id", f"{route.type}.id")]
    if route.id is not None and resource["id"] != route.id:
        return [Issue("error", "invalid", f"The resource id '{resource['id']}' differs from '{route.id}' in the URL",
                      f"{route.type}.id")]
    return []


async def _validate_delete(ctx: Context, route: Route) -> FhirResponse:
    if route.id is None:
        raise bad_request("mode delete validates the deletion of an instance: invoke it on [type]/[id]", "mode")
    ctx.access.require("delete", route.type)
    await current_resource(ctx, route.type, route.id)
    return _outcome([Issue("information", "informational",
                           f"{route.type}/{route.id} exists and nothing prevents its deletion")])


def _outcome(issues: list[Issue]) -> FhirResponse:
    return FhirResponse(200, operation_outcome(issues))
