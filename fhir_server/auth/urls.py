"""The authorization server's URLs under the FHIR base: discovery and the CapabilityStatement share them."""

from __future__ import annotations

from typing import Any

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_EXTENSION_NAMES = {"authorize": "authorization_endpoint", "token": "token_endpoint",
                    "introspect": "introspection_endpoint", "revoke": "revocation_endpoint",
                    "register": "registration_endpoint"}


def endpoints(base: str) -> dict[str, str]:
    return {"authorization_endpoint": f"{base}/auth/authorize", "token_endpoint": f"{base}/auth/token",
            "introspection_endpoint": f"{base}/auth/introspect", "revocation_endpoint": f"{base}/auth/revoke",
            "registration_endpoint": f"{base}/auth/register", "jwks_uri": f"{base}/auth/jwks"}


def rest_security(base: str) -> dict[str, Any]:
    """`CapabilityStatement.rest.security`: SMART-on-FHIR with the oauth-uris extension."""
    urls = endpoints(base)
    return {
        "cors": True,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile"}],
        "extension": [{"url": OAUTH_URIS, "extension": [{"url": name, "valueUri": urls[key]}
                                                        for name, key in _EXTENSION_NAMES.items()]}],
        "description": "SMART App Launch 2.x and Backend Services; discovery at /.well-known/smart-configuration",
    }
