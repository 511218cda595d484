"""Operator commands for accounts, clients, EHR launches and signing keys.

    fhir-server user create --username U --password-stdin --role R [--fhir-user Practitioner/ID]
    fhir-server user list | disable --username U
    fhir-server client create --client-id ID --redirect-uri URL --scope "..."
                              [--public | --secret-stdin | --jwks FILE | --jwks-url URL] [--name NAME]
    fhir-server client list | disable --client-id ID
    fhir-server launch create --patient ID [--encounter ID]      prints a single-use launch value
    fhir-server keys rotate                                      new signing key; old ones stay published

They work on the database of a running server (or start its embedded database themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from fhir_server.auth.accounts import AccountError, Accounts
from fhir_server.auth.clients import ClientError, Clients
from fhir_server.auth.endpoints import LAUNCH_SECONDS, create_launch
from fhir_server.auth.keys import KeyRing
from fhir_server.auth.records import Records
from fhir_server.auth.roles import ROLES
from fhir_server.cli import add_data_dir, settings_from
from fhir_server.storage import Database
from fhir_server.storage.operator import open_database

Action = Callable[[argparse.Namespace, Database], Awaitable[int]]


def _stdin_line(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise AccountError(f"no {what} on standard input")
    return value


async def _user_create(args: argparse.Namespace, database: Database) -> int:
    accounts = Accounts(database, settings_from(args))
    account = await accounts.create(args.username, _stdin_line("password"), args.role, args.fhir_user)
    print(f"created user {account.username} (role {account.role}, {account.fhir_user or 'no FHIR identity'})")
    return 0


async def _user_list(args: argparse.Namespace, database: Database) -> int:
    for account in await Accounts(database, settings_from(args)).list():
        state = "disabled" if account.disabled else "active"
        print(f"{account.username}\t{account.role}\t{account.fhir_user or '-'}\t{state}")
    return 0


def _disabling(noun: str, key: str, records: Callable[[argparse.Namespace, Database], Records]) -> Action:
    """The `disable` action for users or clients (`key` names the argument holding the name)."""

    async def disable(args: argparse.Namespace, database: Database) -> int:
        name = getattr(args, key)
        if not await records(args, database).disable(name):
            print(f"no {noun} {name}", file=sys.stderr)
            return 1
        print(f"disabled {noun} {name}")
        return 0

    return disable


async def _client_create(args: argparse.Namespace, database: Database) -> int:
    jwks = json.loads(Path(args.jwks).read_text()) if args.jwks else None
    secret = _stdin_line("client secret") if args.secret_stdin else None
    client, generated = await Clients(database).register(
        args.client_id, args.redirect_uri or [], args.scope, secret=secret, public=args.public, jwks=jwks,
        jwks_url=args.jwks_url, name=args.name or "")
    print(f"created client {client.client_id} ({client.auth_method})")
    if generated:
        print(f"client secret (shown once): {generated}")
    return 0


async def _client_list(args: argparse.Namespace, database: Database) -> int:
    for client in await Clients(database).list():
        state = "disabled" if client.disabled else "active"
        print(f"{client.client_id}\t{client.auth_method}\t{client.scope}\t{' '.join(client.redirect_uris)}\t{state}")
    return 0


async def _launch_create(args: argparse.Namespace, database: Database) -> int:
    print(await create_launch(database, args.patient, args.encounter, []))
    print(f"single use, valid {LAUNCH_SECONDS} s", file=sys.stderr)
    return 0


async def _keys_rotate(args: argparse.Namespace, database: Database) -> int:
    settings = settings_from(args)
    grace = max(3600, settings.access_token_seconds, settings.backend_token_seconds)
    kid = await KeyRing(database).rotate(grace_seconds=grace)
    print(f"new signing key {kid}; previous keys stay published for {grace} s")
    return 0


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    async def run(args: argparse.Namespace) -> int:
        async with open_database(settings_from(args)) as database:
            try:
                return await action(args, database)
            except (AccountError, ClientError, OSError, ValueError) as error:
                print(f"error: {error}", file=sys.stderr)
                return 2

    return lambda args: asyncio.run(run(args))


def _group(commands: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    parser = commands.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _action(group: argparse._SubParsersAction, name: str, help_text: str, action: Action) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text)
    add_data_dir(parser)
    parser.set_defaults(run=_runner(action))
    return parser


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `fhir-server user|client|launch|keys ...`."""
    users = _group(commands, "user", "create, list or disable login accounts")
    create = _action(users, "create", "create an account (password read from standard input)", _user_create)
    create.add_argument("--username", required=True)
    create.add_argument("--password-stdin", action="store_true", required=True,
                        help="read the password from the first line of standard input")
    create.add_argument("--role", required=True, choices=sorted(ROLES))
    create.add_argument("--fhir-user", help="the FHIR identity: Practitioner/ID, Patient/ID or RelatedPerson/ID")
    _action(users, "list", "list accounts", _user_list)
    accounts = _disabling("user", "username", lambda args, db: Accounts(db, settings_from(args)))
    _action(users, "disable", "disable an account", accounts).add_argument("--username", required=True)

    clients = _group(commands, "client", "create, list or disable OAuth clients (SMART apps, backend services)")
    create = _action(clients, "create", "register a client", _client_create)
    create.add_argument("--client-id", required=True)
    create.add_argument("--redirect-uri", action="append", help="registered redirect URI (repeatable)")
    create.add_argument("--scope", required=True, help='the scopes the client may ever get, e.g. "patient/*.rs"')
    create.add_argument("--name", help="the name shown on the consent page")
    kind = create.add_mutually_exclusive_group()
    kind.add_argument("--public", action="store_true", help="a public client (PKCE, no secret)")
    kind.add_argument("--secret-stdin", action="store_true", help="read the client secret from standard input")
    kind.add_argument("--jwks", help="a JWKS file with the client's public keys (private_key_jwt)")
    kind.add_argument("--jwks-url", help="where the client publishes its JWKS (private_key_jwt)")
    _action(clients, "list", "list clients", _client_list)
    registrations = _disabling("client", "client_id", lambda args, db: Clients(db))
    _action(clients, "disable", "disable a client", registrations).add_argument("--client-id", required=True)

    launches = _group(commands, "launch", "EHR launch contexts")
    create = _action(launches, "create", "print a single-use launch value for a patient", _launch_create)
    create.add_argument("--patient", required=True)
    create.add_argument("--encounter")

    keys = _group(commands, "keys", "token signing keys")
    _action(keys, "rotate", "make a new signing key (previous keys stay published until their tokens expire)",
            _keys_rotate)
