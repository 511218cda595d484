"""The HTML pages of the authorization flow: login, patient picker, consent and error.

Plain server-rendered forms (no JavaScript), every value HTML-escaped; each form carries the
pending request's unguessable id, which is all that ties the steps together.
"""

from __future__ import annotations

from html import escape

from fhir_server.auth.scopes import Scope

_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_CONTEXTS = {"patient": "about the selected patient", "user": "that you can access",
             "system": "on the whole server"}
_WORDS = {
    "openid": "Confirm your identity to the app",
    "fhirUser": "Tell the app who you are (your FHIR record)",
    "profile": "Tell the app your name",
    "launch": "Use the context the EHR launched the app in",
    "launch/patient": "Know which patient is selected",
    "launch/encounter": "Know which encounter is selected",
    "offline_access": "Stay connected while you are away (until you revoke it)",
    "online_access": "Stay connected while you are logged in",
}
_STYLE = """body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b2733}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;
padding:.5rem;font-size:1rem}button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem;font-size:1rem}
.error{color:#a01010;font-weight:bold}li{margin:.3rem 0}.app{font-weight:bold}"""


def describe(scope: Scope) -> str:
    """A resource scope in words: `Read and search Observation records about the selected patient`."""
    verbs = [v for letter, v in _VERBS.items() if letter in scope.permissions]
    what = "all records" if scope.resource_type == "*" else f"{scope.resource_type} records"
    text = f"{' and '.join([', '.join(verbs[:-1]), verbs[-1]] if len(verbs) > 1 else verbs).capitalize()} {what} "
    text += _CONTEXTS[scope.context]
    if scope.params:
        text += " where " + " and ".join(f"{k} is {v}" for k, v in scope.params)
    return text


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width"><style>{_STYLE}</style></head>'
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")


def login_page(request_id: str, app_name: str, error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page("Sign in to MedicalCycle FHIR", f"""
<p><span class="app">{escape(app_name)}</span> asks to access health records on your behalf.</p>{message}
<form method="post" action="/auth/authorize/login">
<input type="hidden" name="request_id" value="{escape(request_id)}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username"
 required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password"
 autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button></form>""")


def patient_picker(request_id: str, patients: list[tuple[str, str]]) -> str:
    options = "".join(f'<li><label><input type="radio" name="patient" value="{escape(pid)}"'
                      f'{" checked" if i == 0 else ""}> {escape(name)} <small>(Patient/{escape(pid)})</small>'
                      "</label></li>" for i, (pid, name) in enumerate(patients))
    return _page("Choose a patient", f"""
<p>The app works with one patient at a time. Which patient?</p>
<form method="post" action="/auth/authorize/consent">
<input type="hidden" name="request_id" value="{escape(request_id)}"><input type="hidden" name="step" value="patient">
<ul>{options}</ul><button type="submit" id="choose-patient">Continue</button></form>""")


def consent_page(request_id: str, app_name: str, username: str, words: list[str], scopes: list[Scope],
                 patient: str | None) -> str:
    items = [_WORDS[w] for w in words if w in _WORDS] + [describe(s) for s in scopes]
    listing = "".join(f"<li>{escape(item)}</li>" for item in items) or "<li>Nothing beyond signing in</li>"
    selected = f"<p>Selected patient: Patient/{escape(patient)}</p>" if patient else ""
    return _page("Allow access?", f"""
<p>Signed in as <strong>{escape(username)}</strong>.
<span class="app">{escape(app_name)}</span> will be able to:</p><ul id="scopes">{listing}</ul>{selected}
<form method="post" action="/auth/authorize/consent">
<input type="hidden" name="request_id" value="{escape(request_id)}"><input type="hidden" name="step" value="consent">
<button type="submit" name="decision" value="approve" id="approve">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button></form>""")


def error_page(message: str) -> str:
    return _page("Authorization error", f'<p class="error" role="alert">{escape(message)}</p>'
                 "<p>The app's request cannot be completed. You may close this window.</p>")
