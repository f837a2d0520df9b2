"""The PostgreSQL backend's schema and connection settings: migrations, each a list of
statements run one by one, the version check every pool and connection makes, and what
a failure message may say of a URL.

The tables are SQLite's (:mod:`sealgate.verify.sqlite.schema`), column for column;
``tests/verify/test_schemas.py`` compares the two.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from sealgate.verify.registry import RegistryUnavailable

SCHEMES = ("postgresql", "postgres")

# Versioned schema: migration N (1-based) is recorded in schema_migrations when applied.
# Append, never edit: a database that has N applied never runs it again.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "registry, change log and directory",
        (
            """CREATE TABLE proofs (
                code TEXT PRIMARY KEY,
                seal_id TEXT NOT NULL,
                unit_name TEXT NOT NULL,
                unit_code TEXT NOT NULL,
                type TEXT NOT NULL,
                holder_kind TEXT NOT NULL,
                holder_name_masked TEXT NOT NULL,
                holder_id_masked TEXT NOT NULL,
                holder_key BYTEA NOT NULL,
                valid_from TEXT NOT NULL,
                valid_until TEXT,
                expires_at DOUBLE PRECISION,
                issued_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                status_changed_at DOUBLE PRECISION NOT NULL,
                superseded_by TEXT,
                signer_client TEXT NOT NULL,
                document BYTEA NOT NULL,
                version INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX proofs_holder ON proofs (holder_key, type)",
            """CREATE TABLE idempotency_keys (
                client_id TEXT NOT NULL,
                key TEXT NOT NULL,
                request_digest BYTEA NOT NULL,
                codes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (client_id, key)
            )""",
            # seq comes from an identity sequence with the default CACHE 1: a session-level
            # cache would hand out numbers out of order across sessions, which the change
            # log's ordering (see the registry) must not have.
            """CREATE TABLE status_history (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                code TEXT NOT NULL REFERENCES proofs (code),
                from_status TEXT NOT NULL,
                to_status TEXT NOT NULL,
                reason TEXT NOT NULL,
                superseded_by TEXT,
                client_id TEXT NOT NULL,
                changed_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX status_history_code ON status_history (code, seq)",
            """CREATE TABLE seals (
                seal_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                unit_name TEXT NOT NULL,
                unit_code TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE seal_keys (
                seal_id TEXT NOT NULL REFERENCES seals (seal_id),
                version INTEGER NOT NULL,
                key_label TEXT NOT NULL UNIQUE,
                certificate BYTEA NOT NULL,
                state TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (seal_id, version)
            )""",
            """CREATE TABLE clients (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                office TEXT,
                token_digest BYTEA NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE client_seals (
                client_id TEXT NOT NULL REFERENCES clients (client_id),
                seal_id TEXT NOT NULL REFERENCES seals (seal_id),
                PRIMARY KEY (client_id, seal_id)
            )""",
            """CREATE TABLE client_purposes (
                client_id TEXT NOT NULL REFERENCES clients (client_id),
                purpose TEXT NOT NULL,
                PRIMARY KEY (client_id, purpose)
            )""",
            """CREATE TABLE roots (
                fingerprint BYTEA PRIMARY KEY,
                certificate BYTEA NOT NULL,
                key_label TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        "a client's own limit on failed lookups",
        (
            """CREATE TABLE client_limits (
                client_id TEXT PRIMARY KEY REFERENCES clients (client_id),
                failures INTEGER NOT NULL,
                window_seconds DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        "the root-signed trust documents (GET /v1/trust), one row per published version",
        (
            """CREATE TABLE trust_documents (
                version INTEGER PRIMARY KEY,
                document BYTEA NOT NULL,
                published_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        "verification requests, their events, loaded calendar years, seal suspension",
        (
            """CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                mode TEXT NOT NULL,
                tier TEXT NOT NULL,
                state TEXT NOT NULL,
                requester_client TEXT NOT NULL,
                requester_office TEXT NOT NULL,
                requester_unit TEXT NOT NULL,
                responder_office TEXT NOT NULL,
                responder_unit TEXT NOT NULL,
                proof_type TEXT NOT NULL,
                holder_kind TEXT NOT NULL,
                holder_name_masked TEXT NOT NULL,
                holder_id_masked TEXT NOT NULL,
                holder_key BYTEA NOT NULL,
                matter TEXT NOT NULL,
                case_ref TEXT NOT NULL,
                registered_at DOUBLE PRECISION NOT NULL,
                due_at DOUBLE PRECISION NOT NULL,
                provisional INTEGER NOT NULL,
                extended INTEGER NOT NULL,
                answered_at DOUBLE PRECISION,
                answer_code TEXT,
                reason TEXT,
                version INTEGER NOT NULL,
                overdue_announced_at DOUBLE PRECISION
            )""",
            "CREATE INDEX requests_responder ON requests (responder_office, state, due_at)",
            "CREATE INDEX requests_requester ON requests (requester_office, state, due_at)",
            "CREATE INDEX requests_holder ON requests (holder_key)",
            "CREATE INDEX requests_due ON requests (state, due_at)",
            """CREATE TABLE request_events (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                request_id TEXT NOT NULL REFERENCES requests (request_id),
                action TEXT NOT NULL,
                from_state TEXT,
                to_state TEXT NOT NULL,
                tier TEXT NOT NULL,
                due_at DOUBLE PRECISION NOT NULL,
                reason TEXT,
                approver TEXT,
                operator TEXT NOT NULL,
                client_id TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                code TEXT
            )""",
            "CREATE INDEX request_events_request ON request_events (request_id, seq)",
            """CREATE TABLE calendar_years (
                year INTEGER PRIMARY KEY,
                days TEXT NOT NULL,
                loaded_at DOUBLE PRECISION NOT NULL
            )""",
            "ALTER TABLE seals ADD COLUMN suspended_at DOUBLE PRECISION",
            "ALTER TABLE seals ADD COLUMN scope TEXT NOT NULL DEFAULT 'unit'",
            "ALTER TABLE proofs ADD COLUMN data_owner TEXT",
        ),
    ),
    (
        "each proof a QR code names gets an index in the status lists",
        (
            """CREATE TABLE status_slots (
                idx BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                code TEXT NOT NULL UNIQUE REFERENCES proofs (code)
            )""",
        ),
    ),
    (
        "holders' consents",
        (
            """CREATE TABLE consents (
                consent_id TEXT PRIMARY KEY,
                holder_key BYTEA NOT NULL,
                grantee TEXT NOT NULL,
                matter TEXT NOT NULL,
                proof_types TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                uses_left INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION
            )""",
            "CREATE INDEX consents_holder ON consents (holder_key)",
        ),
    ),
    (
        "a seal key's retirement, revocation and destruction; the root's CRLs",
        (
            "ALTER TABLE seal_keys ADD COLUMN retired_at DOUBLE PRECISION",
            "ALTER TABLE seal_keys ADD COLUMN destroy_after DOUBLE PRECISION",
            "ALTER TABLE seal_keys ADD COLUMN destroyed_at DOUBLE PRECISION",
            "ALTER TABLE seal_keys ADD COLUMN revoked_at DOUBLE PRECISION",
            "ALTER TABLE seal_keys ADD COLUMN revocation_reason TEXT",
            "ALTER TABLE seal_keys ADD COLUMN invalid_since DOUBLE PRECISION",
            """CREATE TABLE crls (
                number BIGINT PRIMARY KEY,
                certificate_list BYTEA NOT NULL,
                this_update DOUBLE PRECISION NOT NULL,
                next_update DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        "the failed-lookup buckets every gateway shares when there is no Redis",
        (
            """CREATE TABLE lookup_failures (
                client_id TEXT PRIMARY KEY,
                level DOUBLE PRECISION NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                refused INTEGER NOT NULL
            )""",
            """CREATE TABLE lookup_budget (
                bucket TEXT PRIMARY KEY,
                tokens DOUBLE PRECISION NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                empty INTEGER NOT NULL
            )""",
        ),
    ),
    (
        "the city's table of matters; every purpose grant names one",
        (
            """CREATE TABLE matters (
                matter TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE matter_contents (
                matter TEXT NOT NULL REFERENCES matters (matter),
                proof_type TEXT NOT NULL,
                fields TEXT,
                PRIMARY KEY (matter, proof_type)
            )""",
            # each purpose already granted: a matter of its own name, reading no content
            """INSERT INTO matters (matter, name, created_at)
                SELECT DISTINCT purpose, purpose, extract(epoch from now())
                FROM client_purposes""",
            """ALTER TABLE client_purposes ADD CONSTRAINT client_purposes_purpose_fkey
                FOREIGN KEY (purpose) REFERENCES matters (matter)""",
        ),
    ),
    (
        "change notices: subscriptions, the outbox of deliveries, the feeds' cursors",
        (
            """CREATE TABLE subscriptions (
                subscription_id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                url TEXT NOT NULL,
                events TEXT NOT NULL,
                purpose TEXT,
                office TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                status_from BIGINT NOT NULL,
                requests_from BIGINT NOT NULL,
                deleted_at DOUBLE PRECISION
            )""",
            "CREATE INDEX subscriptions_client ON subscriptions (client_id)",
            "CREATE INDEX subscriptions_office ON subscriptions (office)",
            """CREATE TABLE subscription_codes (
                code TEXT NOT NULL,
                subscription_id TEXT NOT NULL REFERENCES subscriptions (subscription_id),
                PRIMARY KEY (code, subscription_id)
            )""",
            """CREATE TABLE deliveries (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subscription_id TEXT NOT NULL REFERENCES subscriptions (subscription_id),
                event_id TEXT NOT NULL,
                event TEXT NOT NULL,
                occurred_at DOUBLE PRECISION NOT NULL,
                data TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at DOUBLE PRECISION,
                last_attempt_at DOUBLE PRECISION,
                last_status INTEGER,
                last_error TEXT,
                claimed_by TEXT,
                claimed_until DOUBLE PRECISION,
                UNIQUE (subscription_id, event_id)
            )""",
            "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
            "CREATE INDEX deliveries_subscription ON deliveries (subscription_id, seq)",
            """CREATE TABLE notice_cursors (
                feed TEXT PRIMARY KEY,
                position DOUBLE PRECISION NOT NULL
            )""",
            """INSERT INTO notice_cursors (feed, position)
                SELECT 'status', coalesce(max(seq), 0) FROM status_history""",
            """INSERT INTO notice_cursors (feed, position)
                SELECT 'requests', coalesce(max(seq), 0) FROM request_events""",
            "INSERT INTO notice_cursors (feed, position) VALUES ('overdue', 0)",
        ),
    ),
    (
        "the endorsement a request's answer carries, answers sealed before endorsed as "
        "their requests say",
        (
            "ALTER TABLE proofs ADD COLUMN extracting_unit TEXT",
            "ALTER TABLE proofs ADD COLUMN verifying_unit TEXT",
            """UPDATE proofs SET extracting_unit = r.requester_unit,
                verifying_unit = r.responder_unit
            FROM requests r WHERE r.answer_code = proofs.code""",
        ),
    ),
    (
        "change notices' deliveries by state and age, for pruning and the backlog's metrics",
        ("CREATE INDEX deliveries_age ON deliveries (state, created_at)",),
    ),
)

# Any fixed number works; it only has to be the same in every sealgate that migrates.
_MIGRATION_LOCK = 0x5EA19A7E

CONNECT_TIMEOUT = 5.0  # seconds to open a connection
ACQUIRE_TIMEOUT = 5.0  # seconds to wait for a free pooled connection
COMMAND_TIMEOUT = 10.0  # seconds for one statement
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 10  # per gateway process; size the server's max_connections to match
IDLE_LIFETIME = 300.0  # a pooled connection idle this long is closed


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in SCHEMES


def redacted(url: str) -> str:
    """The URL with any password replaced, for messages and output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def failure(what: str, exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    return f"{what} failed: {type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")


class SchemaOutdated(RegistryUnavailable):
    """The database lacks migrations this sealgate needs: run ``sealgate db migrate``."""


def migrate(url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> int:
    """Apply the missing migrations in one transaction; returns the schema version.

    Safe to run again (applied migrations are skipped) and from several machines at once
    (an advisory lock makes the second wait and then find nothing to do).
    """
    try:
        with (
            psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for number, (description, statements) in enumerate(MIGRATIONS, start=1):
                if number in applied:
                    continue
                for statement in statements:
                    conn.execute(statement.encode())  # a constant, no parameters
                conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (number, description),
                )
            return max(applied | {len(MIGRATIONS)})
    except psycopg.OperationalError as exc:
        # libpq's message says which host and why (refused, auth failed); never a password.
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RegistryUnavailable(f"cannot migrate {redacted(url)}: {reason}") from exc
    except psycopg.Error as exc:
        raise RegistryUnavailable(failure(f"migrating {redacted(url)}", exc)) from exc


def schema_version(url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> int:
    """The newest migration applied to the database (0 for none)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn:
            return applied_version(conn.execute)
    except psycopg.Error as exc:
        raise RegistryUnavailable(failure(f"reading the schema of {redacted(url)}", exc)) from exc


def applied_version(execute: Any) -> int:
    row = execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    return int(execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])


def outdated(found: int) -> SchemaOutdated:
    return SchemaOutdated(
        f"the database schema is at version {found}, this sealgate needs {len(MIGRATIONS)}:"
        " run 'sealgate db migrate'"
    )


async def applied_version_async(conn: Any) -> int:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
