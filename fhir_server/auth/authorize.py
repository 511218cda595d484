"""`/auth/authorize`: the authorization code flow with PKCE, for standalone and EHR launch.

1. `GET|POST /auth/authorize` checks the client and its registered `redirect_uri` (errors shown on
   the page, since the redirect URI cannot be trusted yet), then `response_type=code`, PKCE S256
   (plain refused), `aud` = the FHIR base, a known `launch` (errors sent back to the redirect URI
   with `state`), stores the pending request and shows the login page;
2. `POST /auth/authorize/login` signs the user in (lockout applies), then shows the patient picker
   when `patient/` scopes or `launch/patient` need a patient the launch did not give and the user
   may see several, else the consent page;
3. `POST /auth/authorize/consent` records the chosen patient or the decision; on approval an
   authorization code (single use, 60 s) goes back to the redirect URI with `state`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from fhir_server.auth import pages
from fhir_server.auth.accounts import Account
from fhir_server.auth.clients import Client
from fhir_server.auth.collections import CODES, LAUNCHES, REQUESTS
from fhir_server.auth.grants import Grant, needs_patient, user_grant
from fhir_server.auth.http import base_url, emit, redirect_with
from fhir_server.auth.service import AuthService, digest
from fhir_server.fhir.primitives import now

router = APIRouter()
REQUEST_SECONDS = 600
CODE_SECONDS = 60
PICKER_SIZE = 50
_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch", "code_challenge",
           "code_challenge_method", "nonce")


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                                  "Content-Security-Policy": "default-src 'self'; "
                                                  "style-src 'unsafe-inline'; form-action 'self' *"})


@router.api_route("/auth/authorize", methods=["GET", "POST"], include_in_schema=False)
async def authorize(request: Request) -> Response:
    if request.method == "POST":
        params = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    else:
        params = dict(request.query_params)
    auth: AuthService = request.app.state.auth
    client = await auth.clients.get(params.get("client_id", "")) if params.get("client_id") else None
    if client is None:
        return _html(pages.error_page("Unknown or disabled client_id."), 400)
    redirect_uri = params.get("redirect_uri") or (client.redirect_uris[0] if len(client.redirect_uris) == 1 else "")
    if redirect_uri not in client.redirect_uris:
        return _html(pages.error_page("The redirect_uri is not registered for this client."), 400)
    state = params.get("state")

    def refuse(error: str, description: str) -> Response:
        return redirect_with(redirect_uri, {"error": error, "error_description": description, "state": state})

    if params.get("response_type") != "code":
        return refuse("unsupported_response_type", "response_type must be code")
    if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
        return refuse("invalid_request", "PKCE is required, with code_challenge_method S256 (plain is refused)")
    if params.get("aud", "").rstrip("/") != base_url(request):
        return refuse("invalid_request", f"aud must be this server's FHIR base URL {base_url(request)}")
    launch = None
    if params.get("launch"):
        launch = await request.app.state.database.collection(LAUNCHES).find_one(
            {"_id": digest(params["launch"]), "expires": {"$gt": now()}})
        if launch is None:
            return refuse("invalid_request", "unknown, used or expired launch")
    request_id = secrets.token_urlsafe(24)
    doc = {k: params.get(k) for k in _PARAMS}
    doc.update(_id=request_id, redirect_uri=redirect_uri, launch=params.get("launch") if launch else None,
               context=_launch_context(launch), expires=now() + timedelta(seconds=REQUEST_SECONDS))
    await request.app.state.database.collection(REQUESTS).insert_one(doc)
    return _html(pages.login_page(request_id, client.name or client.client_id))


def _launch_context(launch: dict | None) -> dict | None:
    if launch is None:
        return None
    return {"patient": launch.get("patient"), "encounter": launch.get("encounter"),
            "fhirContext": launch.get("fhirContext") or []}


async def _pending(request: Request, form: dict[str, str]) -> dict | None:
    return await request.app.state.database.collection(REQUESTS).find_one(
        {"_id": form.get("request_id", ""), "expires": {"$gt": now()}})


@router.post("/auth/authorize/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    pending = await _pending(request, form)
    if pending is None:
        return _html(pages.error_page("This sign-in request has expired; start again from the app."), 400)
    auth: AuthService = request.app.state.auth
    client = await auth.clients.get(pending["client_id"])
    if client is None:
        return _html(pages.error_page("The client has been disabled."), 400)
    username = form.get("username", "")
    account, outcome = await auth.accounts.authenticate(username, form.get("password", ""))
    await emit(request, "login", outcome, account is not None, None,
               {"username": username, "client_id": client.client_id})
    if account is None:
        message = ("Too many failed attempts: this account is locked for a while." if outcome == "locked"
                   else "Wrong username or password.")
        return _html(pages.login_page(pending["_id"], client.name or client.client_id, message), 401)
    words, scopes = user_grant(pending.get("scope") or "", client, account)
    patient = (pending.get("context") or {}).get("patient") or account.patient_id
    await request.app.state.database.collection(REQUESTS).update_one(
        {"_id": pending["_id"]}, {"$set": {"username": account.username, "patient": patient}})
    if patient is None and (needs_patient(scopes) or "launch/patient" in words):
        choices = await _patients(request)
        if len(choices) > 1:
            return _html(pages.patient_picker(pending["_id"], choices))
        patient = choices[0][0] if choices else None
        await request.app.state.database.collection(REQUESTS).update_one(
            {"_id": pending["_id"]}, {"$set": {"patient": patient}})
    return _html(pages.consent_page(pending["_id"], client.name or client.client_id, account.username, words,
                                    scopes, patient))


async def _patients(request: Request) -> list[tuple[str, str]]:
    """The patients a user may pick from (users who reach several are clinicians: all of them)."""
    found = await request.app.state.store.find("Patient", {}, PICKER_SIZE)
    return [(v.id, _name(v.resource)) for v in found]


def _name(patient: dict) -> str:
    for name in patient.get("name") or ():
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
        if text:
            return text
    return "(no name)"


@router.post("/auth/authorize/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    pending = await _pending(request, form)
    if pending is None or not pending.get("username"):
        return _html(pages.error_page("This request has expired or was not signed in; start again."), 400)
    auth: AuthService = request.app.state.auth
    client = await auth.clients.get(pending["client_id"])
    account = await auth.accounts.get(pending["username"])
    if client is None or account is None:
        return _html(pages.error_page("The client or the account has been disabled."), 400)
    words, scopes = user_grant(pending.get("scope") or "", client, account)
    requests = request.app.state.database.collection(REQUESTS)
    if form.get("step") == "patient":
        chosen = form.get("patient", "")
        if pending.get("patient") or chosen not in {pid for pid, _ in await _patients(request)}:
            return _html(pages.error_page("That patient cannot be chosen."), 400)
        await requests.update_one({"_id": pending["_id"]}, {"$set": {"patient": chosen}})
        return _html(pages.consent_page(pending["_id"], client.name or client.client_id, account.username, words,
                                        scopes, chosen))
    await requests.delete_one({"_id": pending["_id"]})
    state = pending.get("state")
    if form.get("decision") != "approve":
        return redirect_with(pending["redirect_uri"], {"error": "access_denied",
                                                       "error_description": "the user denied access",
                                                       "state": state}, 303)
    if pending.get("launch"):  # a launch is single use
        await request.app.state.database.collection(LAUNCHES).delete_one({"_id": digest(pending["launch"])})
    code = secrets.token_urlsafe(32)
    grant = _grant(client, account, words, scopes, pending)
    await request.app.state.database.collection(CODES).insert_one(
        {"_id": digest(code), "client_id": client.client_id, "redirect_uri": pending["redirect_uri"],
         "code_challenge": pending["code_challenge"], "nonce": pending.get("nonce"), "grant": grant.to_doc(),
         "expires": now() + timedelta(seconds=CODE_SECONDS)})
    return redirect_with(pending["redirect_uri"], {"code": code, "state": state}, 303)


def _grant(client: Client, account: Account, words: list[str], scopes: list, pending: dict) -> Grant:
    context = pending.get("context") or {}
    patient = pending.get("patient")
    return Grant(client.client_id, tuple(words), tuple(scopes), account.username, account.fhir_user, (account.role,),
                 patient if (patient and (needs_patient(scopes) or "launch/patient" in words or context)) else None,
                 context.get("encounter"), context.get("fhirContext") or [],
                 need_patient_banner=not pending.get("launch"))
