"""One-command entry points for a fresh machine with only Python 3.11+.

    python3 dev.py serve [ARGS...]   install into .venv if needed, then `fhir-server serve ARGS`
    python3 dev.py test  [ARGS...]   install into .venv (with test extras) if needed, then pytest

The virtual environment is created beside this file and reinstalled only when pyproject.toml
changes, so repeated runs start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _ensure_installed(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py must explain itself on an old Python
        sys.exit("MedicalCycle FHIR needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f".{extras}"], cwd=ROOT, check=True)
    stamp.write_text(digest)


def main() -> None:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "serve":
        _ensure_installed("")
        os.execv(BIN / "fhir-server", [str(BIN / "fhir-server"), "serve", *args])
    elif command == "test":
        _ensure_installed("[test]")
        os.chdir(ROOT)
        os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *args])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
