"""`python -m fhir_server` runs the `fhir-server` command."""

import sys

from fhir_server.cli import main

sys.exit(main())
