"""The SQLite registry's schema: versioned migrations, each a list of statements.

The tables are PostgreSQL's (:mod:`sealgate.verify.postgres.schema`), column for column;
``tests/verify/test_schemas.py`` compares the two.
"""

from __future__ import annotations

from pathlib import Path

from sealgate.verify import sqlite_toolkit

# Entry N brings user_version from N to N+1. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
            holder_key BLOB NOT NULL,
            valid_from TEXT NOT NULL,
            valid_until TEXT,
            expires_at REAL,
            issued_at REAL NOT NULL,
            status TEXT NOT NULL,
            status_changed_at REAL NOT NULL,
            superseded_by TEXT,
            signer_client TEXT NOT NULL,
            document BLOB NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX proofs_holder ON proofs (holder_key, type)",
        """CREATE TABLE idempotency_keys (
            client_id TEXT NOT NULL,
            key TEXT NOT NULL,
            request_digest BLOB NOT NULL,
            codes TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (client_id, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE seals (
            seal_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            unit_name TEXT NOT NULL,
            unit_code TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE seal_keys (
            seal_id TEXT NOT NULL REFERENCES seals (seal_id),
            version INTEGER NOT NULL,
            key_label TEXT NOT NULL UNIQUE,
            certificate BLOB NOT NULL,
            state TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (seal_id, version)
        )""",
        """CREATE TABLE clients (
            client_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            office TEXT,
            token_digest BLOB NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE client_seals (
            client_id TEXT NOT NULL REFERENCES clients (client_id),
            seal_id TEXT NOT NULL REFERENCES seals (seal_id),
            PRIMARY KEY (client_id, seal_id)
        )""",
        """CREATE TABLE roots (
            fingerprint BLOB PRIMARY KEY,
            certificate BLOB NOT NULL,
            key_label TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE client_purposes (
            client_id TEXT NOT NULL REFERENCES clients (client_id),
            purpose TEXT NOT NULL,
            PRIMARY KEY (client_id, purpose)
        )""",
    ),
    (
        "ALTER TABLE proofs ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE status_history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL,
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            reason TEXT NOT NULL,
            superseded_by TEXT,
            client_id TEXT NOT NULL,
            changed_at REAL NOT NULL
        )""",
        "CREATE INDEX status_history_code ON status_history (code, seq)",
    ),
    # 3: proofs in a rowid table. WITHOUT ROWID keeps whole rows in the code's B-tree; with
    # a sealed document (~1.5 KB) in each row, random codes split pages at every insert
    # (measured ≈ 230 µs per proof at 20 k proofs). Rows now append in issue order and the
    # code's index holds only codes.
    (
        """CREATE TABLE proofs_v3 (
            code TEXT NOT NULL UNIQUE,
            seal_id TEXT NOT NULL,
            unit_name TEXT NOT NULL,
            unit_code TEXT NOT NULL,
            type TEXT NOT NULL,
            holder_kind TEXT NOT NULL,
            holder_name_masked TEXT NOT NULL,
            holder_id_masked TEXT NOT NULL,
            holder_key BLOB NOT NULL,
            valid_from TEXT NOT NULL,
            valid_until TEXT,
            expires_at REAL,
            issued_at REAL NOT NULL,
            status TEXT NOT NULL,
            status_changed_at REAL NOT NULL,
            superseded_by TEXT,
            signer_client TEXT NOT NULL,
            document BLOB NOT NULL,
            version INTEGER NOT NULL DEFAULT 0
        )""",
        """INSERT INTO proofs_v3 (
            code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,
            holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at,
            status, status_changed_at, superseded_by, signer_client, document, version
        ) SELECT
            code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,
            holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at,
            status, status_changed_at, superseded_by, signer_client, document, version
        FROM proofs ORDER BY issued_at""",
        "DROP TABLE proofs",
        "ALTER TABLE proofs_v3 RENAME TO proofs",
        "CREATE INDEX proofs_holder ON proofs (holder_key, type)",
    ),
    # 4: status_history.code refers to its proof, as in PostgreSQL (the two had drifted).
    # A column's constraint cannot be added in place: the table is copied, its seq values
    # and so the AUTOINCREMENT counter (moved by the rename) kept.
    (
        """CREATE TABLE status_history_v4 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL REFERENCES proofs (code),
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            reason TEXT NOT NULL,
            superseded_by TEXT,
            client_id TEXT NOT NULL,
            changed_at REAL NOT NULL
        )""",
        """INSERT INTO status_history_v4 (
            seq, code, from_status, to_status, reason, superseded_by, client_id, changed_at
        ) SELECT
            seq, code, from_status, to_status, reason, superseded_by, client_id, changed_at
        FROM status_history ORDER BY seq""",
        "DROP TABLE status_history",
        "ALTER TABLE status_history_v4 RENAME TO status_history",
        "CREATE INDEX status_history_code ON status_history (code, seq)",
    ),
    # 5: a client's own limit on failed lookups (`sealgate client set-limits`).
    (
        """CREATE TABLE client_limits (
            client_id TEXT PRIMARY KEY REFERENCES clients (client_id),
            failures INTEGER NOT NULL,
            window_seconds REAL NOT NULL
        )""",
    ),
    # 6: the root-signed trust documents (GET /v1/trust), one row per published version.
    (
        """CREATE TABLE trust_documents (
            version INTEGER PRIMARY KEY,
            document BLOB NOT NULL,
            published_at REAL NOT NULL
        )""",
    ),
    # 7: verification requests (协查核验 / 在线开具) and their events, the years of the
    # working-day calendar an operator loaded, and a seal's suspension.
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
            holder_key BLOB NOT NULL,
            matter TEXT NOT NULL,
            case_ref TEXT NOT NULL,
            registered_at REAL NOT NULL,
            due_at REAL NOT NULL,
            provisional INTEGER NOT NULL,
            extended INTEGER NOT NULL,
            answered_at REAL,
            answer_code TEXT,
            reason TEXT,
            version INTEGER NOT NULL,
            overdue_announced_at REAL
        )""",
        "CREATE INDEX requests_responder ON requests (responder_office, state, due_at)",
        "CREATE INDEX requests_requester ON requests (requester_office, state, due_at)",
        "CREATE INDEX requests_holder ON requests (holder_key)",
        "CREATE INDEX requests_due ON requests (state, due_at)",
        """CREATE TABLE request_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL REFERENCES requests (request_id),
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            tier TEXT NOT NULL,
            due_at REAL NOT NULL,
            reason TEXT,
            approver TEXT,
            operator TEXT NOT NULL,
            client_id TEXT NOT NULL,
            at REAL NOT NULL,
            code TEXT
        )""",
        "CREATE INDEX request_events_request ON request_events (request_id, seq)",
        """CREATE TABLE calendar_years (
            year INTEGER PRIMARY KEY,
            days TEXT NOT NULL,
            loaded_at REAL NOT NULL
        )""",
        "ALTER TABLE seals ADD COLUMN suspended_at REAL",
        # unit: one office's seal; platform: the city's, used by the units granted it
        "ALTER TABLE seals ADD COLUMN scope TEXT NOT NULL DEFAULT 'unit'",
        # the office that owns the proof's data, when it is not the sealing unit
        "ALTER TABLE proofs ADD COLUMN data_owner TEXT",
    ),
    # 8: each proof a QR code names gets an index in the status lists (docs/design.md §13).
    (
        """CREATE TABLE status_slots (
            idx INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE REFERENCES proofs (code)
        )""",
    ),
    # 9: holders' consents (docs/design.md §14).
    (
        """CREATE TABLE consents (
            consent_id TEXT PRIMARY KEY,
            holder_key BLOB NOT NULL,
            grantee TEXT NOT NULL,
            matter TEXT NOT NULL,
            proof_types TEXT NOT NULL,
            expires_at REAL NOT NULL,
            uses_left INTEGER NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        )""",
        "CREATE INDEX consents_holder ON consents (holder_key)",
    ),
    # 10: a seal key's retirement, revocation and destruction; the CRLs the root issued.
    (
        "ALTER TABLE seal_keys ADD COLUMN retired_at REAL",
        "ALTER TABLE seal_keys ADD COLUMN destroy_after REAL",
        "ALTER TABLE seal_keys ADD COLUMN destroyed_at REAL",
        "ALTER TABLE seal_keys ADD COLUMN revoked_at REAL",
        "ALTER TABLE seal_keys ADD COLUMN revocation_reason TEXT",
        "ALTER TABLE seal_keys ADD COLUMN invalid_since REAL",
        """CREATE TABLE crls (
            number INTEGER PRIMARY KEY,
            certificate_list BLOB NOT NULL,
            this_update REAL NOT NULL,
            next_update REAL NOT NULL
        )""",
    ),
    # 11: the failed-lookup buckets every worker of a home shares when there is no Redis
    # (docs/design.md §8): a client's failures, and the city's budget (one row, 'city').
    (
        """CREATE TABLE lookup_failures (
            client_id TEXT PRIMARY KEY,
            level REAL NOT NULL,
            at REAL NOT NULL,
            refused INTEGER NOT NULL
        )""",
        """CREATE TABLE lookup_budget (
            bucket TEXT PRIMARY KEY,
            tokens REAL NOT NULL,
            at REAL NOT NULL,
            empty INTEGER NOT NULL
        )""",
    ),
    # 12: the city's table of matters (docs/design.md §17), which every purpose grant
    # names. Each purpose already granted becomes a matter of its own name that reads no
    # content, so existing grants keep checking as before. client_purposes is copied to
    # gain its reference to matters (a column's constraint cannot be added in place).
    (
        """CREATE TABLE matters (
            matter TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE matter_contents (
            matter TEXT NOT NULL REFERENCES matters (matter),
            proof_type TEXT NOT NULL,
            fields TEXT,
            PRIMARY KEY (matter, proof_type)
        )""",
        """INSERT INTO matters (matter, name, created_at)
            SELECT DISTINCT purpose, purpose, (julianday('now') - 2440587.5) * 86400.0
            FROM client_purposes""",
        """CREATE TABLE client_purposes_v12 (
            client_id TEXT NOT NULL REFERENCES clients (client_id),
            purpose TEXT NOT NULL REFERENCES matters (matter),
            PRIMARY KEY (client_id, purpose)
        )""",
        """INSERT INTO client_purposes_v12 (client_id, purpose)
            SELECT client_id, purpose FROM client_purposes""",
        "DROP TABLE client_purposes",
        "ALTER TABLE client_purposes_v12 RENAME TO client_purposes",
    ),
    # 13: change notices: subscriptions, the outbox of deliveries, the feeds' cursors
    # (docs/design.md §18).
    (
        """CREATE TABLE subscriptions (
            subscription_id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            purpose TEXT,
            office TEXT,
            created_at REAL NOT NULL,
            status_from INTEGER NOT NULL,
            requests_from INTEGER NOT NULL,
            deleted_at REAL
        )""",
        "CREATE INDEX subscriptions_client ON subscriptions (client_id)",
        "CREATE INDEX subscriptions_office ON subscriptions (office)",
        """CREATE TABLE subscription_codes (
            code TEXT NOT NULL,
            subscription_id TEXT NOT NULL REFERENCES subscriptions (subscription_id),
            PRIMARY KEY (code, subscription_id)
        )""",
        """CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            subscription_id TEXT NOT NULL REFERENCES subscriptions (subscription_id),
            event_id TEXT NOT NULL,
            event TEXT NOT NULL,
            occurred_at REAL NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at REAL,
            last_attempt_at REAL,
            last_status INTEGER,
            last_error TEXT,
            claimed_by TEXT,
            claimed_until REAL,
            UNIQUE (subscription_id, event_id)
        )""",
        "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
        "CREATE INDEX deliveries_subscription ON deliveries (subscription_id, seq)",
        """CREATE TABLE notice_cursors (
            feed TEXT PRIMARY KEY,
            position REAL NOT NULL
        )""",
        # Notices start with the log as it stands: history is nobody's to be told.
        """INSERT INTO notice_cursors (feed, position)
            SELECT 'status', coalesce(max(seq), 0) FROM status_history""",
        """INSERT INTO notice_cursors (feed, position)
            SELECT 'requests', coalesce(max(seq), 0) FROM request_events""",
        "INSERT INTO notice_cursors (feed, position) VALUES ('overdue', 0)",
    ),
    # 14: the endorsement a request's answer carries (宁波 第十四条), so a status check can
    # show it (docs/design.md §6.2). Answers sealed before are endorsed as their requests
    # say: every answer has carried its request's units since requests began.
    (
        "ALTER TABLE proofs ADD COLUMN extracting_unit TEXT",
        "ALTER TABLE proofs ADD COLUMN verifying_unit TEXT",
        """UPDATE proofs SET
            extracting_unit = (SELECT requester_unit FROM requests WHERE answer_code = proofs.code),
            verifying_unit = (SELECT responder_unit FROM requests WHERE answer_code = proofs.code)
        WHERE code IN (SELECT answer_code FROM requests WHERE answer_code IS NOT NULL)""",
    ),
    # 15: change notices' deliveries by state and age: what pruning deletes (the settled
    # ones past the retention), and what is owed and since when, for /metrics
    # (docs/design.md §18).
    ("CREATE INDEX deliveries_age ON deliveries (state, created_at)",),
)


def migrate(path: Path) -> int:
    """Bring the registry file's schema up to date; returns the resulting version."""
    return sqlite_toolkit.migrate(path, MIGRATIONS)
