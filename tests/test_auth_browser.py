"""The login, consent and patient-picker pages in a real headless Chromium (Playwright driving
Debian's `chromium`, installed here when missing); screenshots go to `test-artifacts/`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import HTTP, PASSWORD, REDIRECT, create_user, exchange, pkce, register_app

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        installed = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True,
                                   timeout=900, check=False)
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"Debian's chromium is missing and could not be installed: {installed.stderr[-300:]}")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def _authorize_url(server: LiveServer, app: str, scope: str, challenge: str) -> str:
    return f"{server.url}/auth/authorize?" + urlencode({
        "response_type": "code", "client_id": app, "redirect_uri": REDIRECT, "scope": scope, "state": "xyz",
        "aud": server.url, "code_challenge": challenge, "code_challenge_method": "S256"})


def test_login_picker_and_consent_in_chromium(server: LiveServer, browser) -> None:
    with httpx.Client(base_url=server.url, auth=server.auth, headers=fhir_headers(), timeout=60) as admin:
        chosen = admin.post("/Patient", json=patient(name=[{"text": "Grace Hopper"}])).json()["id"]
        admin.post("/Patient", json=patient())
    doctor = create_user(server.settings, "doctor", "Practitioner/dr-browser")
    scope = "launch/patient openid fhirUser patient/Observation.rs patient/Patient.r"
    app, _ = register_app(server.settings, scope, name="Growth Chart")
    verifier, challenge = pkce()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    page.route(f"{REDIRECT}**", lambda route: route.fulfill(status=200, body="back in the app"))
    page.goto(_authorize_url(server, app, scope, challenge))
    assert "Growth Chart" in page.content()
    page.fill("#username", doctor.username)
    page.fill("#password", "not the password")
    page.click("#sign-in")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    page.fill("#username", doctor.username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.screenshot(path=str(ARTIFACTS / "auth-patient-picker.png"), full_page=True)
    page.check(f"input[name=patient][value='{chosen}']")
    page.click("#choose-patient")
    listed = page.locator("#scopes li").all_inner_texts()
    assert "Read and search Observation records about the selected patient" in listed
    assert "Read Patient records about the selected patient" in listed
    assert "Know which patient is selected" in listed
    page.screenshot(path=str(ARTIFACTS / "auth-consent.png"), full_page=True)
    page.click("#approve")
    page.wait_for_url(f"{REDIRECT}**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["xyz"]
    page.close()
    body = exchange(server.url, app, query["code"][0], verifier).json()
    assert body["patient"] == chosen
    assert (ARTIFACTS / "auth-consent.png").stat().st_size > 1000


def test_deny_in_chromium(server: LiveServer, browser) -> None:
    owner = HTTP.post(f"{server.url}/Patient", json=patient(), headers=fhir_headers(), auth=server.auth).json()
    account = create_user(server.settings, "patient", f"Patient/{owner['id']}")
    app, _ = register_app(server.settings, "patient/*.rs")
    _, challenge = pkce()
    page = browser.new_page()
    page.route(f"{REDIRECT}**", lambda route: route.fulfill(status=200, body="back in the app"))
    page.goto(_authorize_url(server, app, "patient/*.rs", challenge))
    page.fill("#username", account.username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.click("#deny")
    page.wait_for_url(f"{REDIRECT}**")
    assert parse_qs(urlsplit(page.url).query)["error"] == ["access_denied"]
    page.close()
