"""Server settings, read from the environment (and overridden by `fhir-server serve` flags).

Every environment variable the server reads is listed here and in `docs/configuration.md`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _flag_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{name} must be on or off, not '{raw}'")


@dataclass(frozen=True)
class Settings:
    """Everything the application needs to know at start-up."""

    mongodb_uri: str | None = None
    """`MONGODB_URI`: an external MongoDB; when unset the embedded SecantusDB is used."""
    database_name: str = "fhir"
    """`FHIR_DATABASE`: the MongoDB database holding all collections."""
    base_url: str | None = None
    """`FHIR_BASE_URL`: public base URL for Location headers and Bundle links (else from Host)."""
    data_dir: Path = field(default_factory=lambda: Path("fhir-data"))
    """`FHIR_DATA_DIR` / `--data-dir`: where the embedded database keeps its files."""
    embedded_cache_mb: int = 1024
    """`FHIR_EMBEDDED_CACHE_MB`: the embedded database's cache (WiredTiger), in MiB. A transaction's
    writes must fit in it until the commit: raise it with `FHIR_MAX_TRANSACTION_BYTES`."""
    max_body_bytes: int = 16 * 1024 * 1024
    """`FHIR_MAX_BODY_BYTES`: larger request bodies get 413."""
    default_page_size: int = 50
    """`FHIR_DEFAULT_COUNT`: page size when `_count` is absent."""
    max_page_size: int = 1000
    """`FHIR_MAX_COUNT`: upper bound for `_count`."""
    db_timeout_ms: int = 5000
    """`FHIR_DB_TIMEOUT_MS`: how long to wait for the database before answering 503."""
    transaction_attempts: int = 8
    """`FHIR_TRANSACTION_ATTEMPTS`: bounded retries of a write on transient conflicts."""
    max_bundle_entries: int = 10_000
    """`FHIR_MAX_BUNDLE_ENTRIES`: batch/transaction Bundles with more entries get 413."""
    max_transaction_bytes: int = 12 * 1024 * 1024
    """`FHIR_MAX_TRANSACTION_BYTES`: transaction Bundles whose resources, as compact JSON, are larger
    get 413. The embedded database holds a transaction's writes in its cache until the commit, and
    stalls instead of failing when they do not fit (docs/bundles.md, Figures)."""
    audit_enabled: bool = True
    """`FHIR_AUDIT` (`on`/`off`): record an AuditEvent for every interaction. Off only for benchmarks."""
    audit_fail_open: bool = False
    """`FHIR_AUDIT_FAIL_OPEN`: answer even when the audit log cannot be written (logged, retried)."""
    audit_retention_days: int | None = None
    """`FHIR_AUDIT_RETENTION_DAYS`: AuditEvents older than this are pruned (unset: kept forever)."""
    auth_enabled: bool = True
    """Every FHIR request needs a bearer token; only `serve --insecure-no-auth` turns this off."""
    cors_origins: tuple[str, ...] = ()
    """`FHIR_CORS_ORIGINS` (comma-separated): browser origins allowed beyond discovery and /metadata."""
    access_token_seconds: int = 3600
    """`FHIR_ACCESS_TOKEN_SECONDS`: lifetime of user access tokens (at most 3600)."""
    backend_token_seconds: int = 300
    """`FHIR_BACKEND_TOKEN_SECONDS`: lifetime of Backend Services (client_credentials) tokens."""
    refresh_token_days: int = 30
    """`FHIR_REFRESH_TOKEN_DAYS`: lifetime of refresh tokens (each use rotates them)."""
    hidden_status: int = 404
    """`FHIR_HIDDEN_STATUS` (404 or 403): answer to a direct read of a resource outside the token's reach."""
    login_max_failures: int = 5
    """`FHIR_LOGIN_MAX_FAILURES`: failed logins in a row before the account is locked for a while."""
    login_lockout_seconds: int = 60
    """`FHIR_LOGIN_LOCKOUT_SECONDS`: first lockout; it doubles with each further failure."""
    required_profiles: frozenset[str] = frozenset()
    """`FHIR_REQUIRE_PROFILES` (`MedicationRequest,Patient`): types whose clinic profile every write must meet."""
    prescription_sweep_seconds: int = 60
    """`FHIR_PRESCRIPTION_SWEEP_SECONDS`: how often expired prescriptions are set to stopped (0: never)."""
    search_parameter_refresh_seconds: int = 5
    """`FHIR_SEARCH_PARAMETER_REFRESH_SECONDS`: how often a process checks whether another one changed the
    stored SearchParameters, on the next request (0: on every request)."""

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from environment variables, with explicit overrides winning."""
        defaults = cls()
        settings = cls(
            mongodb_uri=os.environ.get("MONGODB_URI") or None,
            database_name=os.environ.get("FHIR_DATABASE", defaults.database_name),
            base_url=(os.environ.get("FHIR_BASE_URL") or "").rstrip("/") or None,
            data_dir=Path(os.environ.get("FHIR_DATA_DIR", str(defaults.data_dir))),
            embedded_cache_mb=_int_env("FHIR_EMBEDDED_CACHE_MB", defaults.embedded_cache_mb),
            max_body_bytes=_int_env("FHIR_MAX_BODY_BYTES", defaults.max_body_bytes),
            default_page_size=_int_env("FHIR_DEFAULT_COUNT", defaults.default_page_size),
            max_page_size=_int_env("FHIR_MAX_COUNT", defaults.max_page_size),
            db_timeout_ms=_int_env("FHIR_DB_TIMEOUT_MS", defaults.db_timeout_ms),
            transaction_attempts=_int_env("FHIR_TRANSACTION_ATTEMPTS", defaults.transaction_attempts),
            max_bundle_entries=_int_env("FHIR_MAX_BUNDLE_ENTRIES", defaults.max_bundle_entries),
            max_transaction_bytes=_int_env("FHIR_MAX_TRANSACTION_BYTES", defaults.max_transaction_bytes),
            audit_enabled=_flag_env("FHIR_AUDIT", defaults.audit_enabled),
            audit_fail_open=_flag_env("FHIR_AUDIT_FAIL_OPEN", defaults.audit_fail_open),
            audit_retention_days=_int_env("FHIR_AUDIT_RETENTION_DAYS", defaults.audit_retention_days),
            cors_origins=tuple(o.strip() for o in os.environ.get("FHIR_CORS_ORIGINS", "").split(",") if o.strip()),
            access_token_seconds=min(3600, _int_env("FHIR_ACCESS_TOKEN_SECONDS", defaults.access_token_seconds)),
            backend_token_seconds=_int_env("FHIR_BACKEND_TOKEN_SECONDS", defaults.backend_token_seconds),
            refresh_token_days=_int_env("FHIR_REFRESH_TOKEN_DAYS", defaults.refresh_token_days),
            hidden_status=_int_env("FHIR_HIDDEN_STATUS", defaults.hidden_status),
            login_max_failures=_int_env("FHIR_LOGIN_MAX_FAILURES", defaults.login_max_failures),
            login_lockout_seconds=_int_env("FHIR_LOGIN_LOCKOUT_SECONDS", defaults.login_lockout_seconds),
            required_profiles=frozenset(
                t.strip() for t in os.environ.get("FHIR_REQUIRE_PROFILES", "").split(",") if t.strip()),
            prescription_sweep_seconds=_int_env("FHIR_PRESCRIPTION_SWEEP_SECONDS",
                                                defaults.prescription_sweep_seconds),
            search_parameter_refresh_seconds=_int_env("FHIR_SEARCH_PARAMETER_REFRESH_SECONDS",
                                                      defaults.search_parameter_refresh_seconds),
        )
        settings = replace(settings, **overrides)
        if settings.hidden_status not in (403, 404):
            raise ValueError(f"FHIR_HIDDEN_STATUS must be 403 or 404, not {settings.hidden_status}")
        return settings
