"""SMART-on-FHIR authorization: accounts, clients, scopes, signing keys, tokens and their enforcement.

`service.AuthService` ties the pieces together for the running server (`app.state.auth`);
`routes` holds the OAuth endpoints, `access.TokenAccess` what a verified token may do on the
FHIR API, `commands` the operator CLI.
"""
