"""Operator commands against a running `fhir-server serve`: users, clients, launches, keys; and
`serve --insecure-no-auth`, which refuses a non-loopback host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fhir_data import fhir_headers, patient
from tests.smart import HTTP, BearerAuth, backend_token, generate_key
from tests.test_cli_serve import _free_port, _stop, _wait_ready


def _cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    return subprocess.run([sys.executable, "-m", "fhir_server", *args, "--data-dir", str(data_dir)], input=stdin,
                          env=env, capture_output=True, text=True, timeout=120)


def test_operator_commands_on_a_running_server(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    process = subprocess.Popen([sys.executable, "-m", "fhir_server", "serve", "--port", str(port), "--data-dir",
                                str(data_dir)], stdout=(tmp_path / "serve.log").open("ab"),
                               stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(url, process)
        assert HTTP.post(f"{url}/Patient", json=patient(), headers=fhir_headers()).status_code == 401
        key = generate_key("ES384")
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
        created = _cli(data_dir, "client", "create", "--client-id", "ehr-backend", "--scope", "system/*.cruds",
                       "--jwks", str(jwks))
        assert created.returncode == 0, created.stderr
        token = backend_token(url, "ehr-backend", key).json()["access_token"]
        patient_id = HTTP.post(f"{url}/Patient", json=patient(), headers=fhir_headers(),
                                auth=BearerAuth(token)).json()["id"]

        made = _cli(data_dir, "user", "create", "--username", "dr.who", "--password-stdin", "--role", "doctor",
                    "--fhir-user", "Practitioner/42", stdin="a long enough password\n")
        assert made.returncode == 0, made.stderr
        assert _cli(data_dir, "user", "create", "--username", "dr.who", "--password-stdin", "--role", "doctor",
                    stdin="another password\n").returncode == 2  # exists already
        assert "dr.who\tdoctor\tPractitioner/42\tactive" in _cli(data_dir, "user", "list").stdout
        assert _cli(data_dir, "user", "disable", "--username", "dr.who").returncode == 0
        assert "dr.who\tdoctor\tPractitioner/42\tdisabled" in _cli(data_dir, "user", "list").stdout

        app = _cli(data_dir, "client", "create", "--client-id", "web-app", "--redirect-uri",
                   "https://app.example/cb", "--scope", "launch patient/*.rs")
        assert "client secret (shown once)" in app.stdout
        assert "web-app\tclient_secret_basic" in _cli(data_dir, "client", "list").stdout

        launch = _cli(data_dir, "launch", "create", "--patient", patient_id)
        assert launch.returncode == 0 and len(launch.stdout.strip()) > 20

        rotated = _cli(data_dir, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert len(HTTP.get(f"{url}/auth/jwks").json()["keys"]) == 2  # the old key stays published
        assert HTTP.get(f"{url}/Patient/{patient_id}", auth=BearerAuth(token)).status_code == 200

        assert _cli(data_dir, "client", "disable", "--client-id", "ehr-backend").returncode == 0
        assert backend_token(url, "ehr-backend", key).status_code == 401
    finally:
        _stop(process)


def test_insecure_no_auth_refuses_a_public_host(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fhir_server", "serve", "--insecure-no-auth", "--host", "0.0.0.0",
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "loopback" in result.stderr
