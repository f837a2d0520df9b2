"""The directory's queries, written once for both backends.

:class:`SqlDirectory` implements :class:`~sealgate.verify.directory.Directory` over a
DB-API connection; a backend gives it a transaction and its driver's constraint error,
and says how it writes a parameter (``?`` for sqlite3, ``%s`` for psycopg) and how it
locks a row it reads before writing (``FOR UPDATE`` where rows lock; SQLite's write
transaction already holds the whole file).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from sealgate.verify.directory import (
    AlreadyExists,
    Client,
    Directory,
    IssuedCrl,
    KeyState,
    LookupLimit,
    NotFound,
    RevocationReason,
    Role,
    Seal,
    SealKey,
    SealKind,
    SealScope,
    token_digest,
)
from sealgate.verify.sql_matters import SqlMatters

# a client and its own lookup limit, if it has one
_CLIENTS_SELECT = (
    "SELECT c.client_id, name, role, office, created_at, l.failures, l.window_seconds"
    " FROM clients c LEFT JOIN client_limits l ON l.client_id = c.client_id"
)


class SqlDirectory(SqlMatters, Directory):
    """:class:`Directory` on the registry's tables, for any DB-API driver."""

    PARAM: ClassVar[str]  # how the driver writes a parameter
    LOCK_FOR_WRITE: ClassVar[str]  # appended to a read that a write in its transaction follows
    # The driver's constraint violation: each caller names the conflict it means.
    CONFLICT: ClassVar[type[Exception]]

    @abstractmethod
    def _transaction(self, what: str) -> contextlib.AbstractContextManager[Any]:
        """The driver's connection (sqlite3's or psycopg's: both have ``execute``,
        ``cursor`` and cursors with ``fetchone``, ``fetchall``, ``executemany`` and
        ``rowcount``) for one ``what`` ("read" or "write"); the store's failures come out
        as DirectoryUnavailable, constraint violations (:attr:`CONFLICT`) pass through."""

    def _sql(self, text: str) -> str:
        """``text`` with its ``?`` parameters in the driver's style."""
        return text.replace("?", self.PARAM)

    @contextlib.contextmanager
    def _conflicts_as(self, message: str) -> Iterator[None]:
        try:
            yield
        except self.CONFLICT as exc:
            raise AlreadyExists(message) from exc

    def add_seal(self, seal: Seal) -> None:
        with (
            self._conflicts_as(f"seal {seal.seal_id} already exists"),
            self._transaction("write") as conn,
        ):
            conn.execute(
                self._sql(
                    "INSERT INTO seals (seal_id, kind, unit_name, unit_code, created_at, scope)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (
                    seal.seal_id,
                    seal.kind.value,
                    seal.unit_name,
                    seal.unit_code,
                    seal.created_at,
                    seal.scope.value,
                ),
            )
            for key in seal.keys:
                self._insert_key(conn, key)

    def _insert_key(self, conn: Any, key: SealKey) -> None:
        conn.execute(
            self._sql(
                "INSERT INTO seal_keys (seal_id, version, key_label, certificate, state,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (
                key.seal_id,
                key.version,
                key.key_label,
                key.certificate,
                key.state.value,
                key.created_at,
            ),
        )

    def add_seal_key(self, key: SealKey, *, destroy_after: float | None = None) -> None:
        with (
            self._conflicts_as(f"seal {key.seal_id} already has version {key.version}"),
            self._transaction("write") as conn,
        ):
            # Locked, so that two rotations of one seal run one after the other.
            found = conn.execute(
                self._sql(f"SELECT 1 FROM seals WHERE seal_id = ?{self.LOCK_FOR_WRITE}"),  # noqa: S608
                (key.seal_id,),
            ).fetchone()
            if found is None:
                raise NotFound(f"no seal {key.seal_id}")
            # A revoked version stays revoked; an active one is retired as of the new key.
            conn.execute(
                self._sql(
                    "UPDATE seal_keys SET state = ?, retired_at = ?, destroy_after = ?"
                    " WHERE seal_id = ? AND version < ? AND state = ?"
                ),
                (
                    KeyState.RETIRED.value,
                    key.created_at,
                    key.created_at if destroy_after is None else destroy_after,
                    key.seal_id,
                    key.version,
                    KeyState.ACTIVE.value,
                ),
            )
            self._insert_key(conn, key)

    def revoke_seal_keys(
        self,
        seal_id: str,
        *,
        version: int | None,
        at: float,
        reason: RevocationReason,
        invalid_since: float | None,
    ) -> list[SealKey]:
        with self._transaction("write") as conn:
            found = conn.execute(
                self._sql(f"SELECT 1 FROM seals WHERE seal_id = ?{self.LOCK_FOR_WRITE}"),  # noqa: S608
                (seal_id,),
            ).fetchone()
            if found is None:
                raise NotFound(f"no seal {seal_id}")
            which = "" if version is None else " AND version = ?"
            args: tuple[Any, ...] = (seal_id,) if version is None else (seal_id, version)
            rows = conn.execute(
                self._sql(
                    f"SELECT version FROM seal_keys WHERE seal_id = ?{which}"  # noqa: S608
                    " AND state <> 'revoked' ORDER BY version"
                ),
                args,
            ).fetchall()
            if version is not None and not rows:
                raise NotFound(f"seal {seal_id} has no unrevoked version {version}")
            for (number,) in rows:
                conn.execute(
                    self._sql(
                        "UPDATE seal_keys SET state = ?, revoked_at = ?, revocation_reason = ?,"
                        " invalid_since = ? WHERE seal_id = ? AND version = ?"
                    ),
                    (KeyState.REVOKED.value, at, reason.value, invalid_since, seal_id, number),
                )
        revoked = {number for (number,) in rows}
        return [k for k in self.seal(seal_id).keys if k.version in revoked]

    def key_destroyed(self, key_label: str, at: float) -> None:
        with self._transaction("write") as conn:
            conn.execute(
                self._sql("UPDATE seal_keys SET destroyed_at = ? WHERE key_label = ?"),
                (at, key_label),
            )

    def add_crl(self, crl: IssuedCrl) -> None:
        with (
            self._conflicts_as(f"CRL number {crl.number} was issued already"),
            self._transaction("write") as conn,
        ):
            conn.execute(
                self._sql(
                    "INSERT INTO crls (number, certificate_list, this_update, next_update)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (crl.number, crl.der, crl.this_update, crl.next_update),
            )

    def latest_crl(self) -> IssuedCrl | None:
        with self._transaction("read") as conn:
            row = conn.execute(
                "SELECT number, certificate_list, this_update, next_update FROM crls"
                " ORDER BY number DESC LIMIT 1"
            ).fetchone()
        return None if row is None else IssuedCrl(int(row[0]), bytes(row[1]), row[2], row[3])

    def _seals(self, where: str, args: tuple[Any, ...]) -> list[Seal]:
        # where: a constant of this class, its values in args
        with self._transaction("read") as conn:
            seal_rows = conn.execute(
                self._sql(
                    "SELECT seal_id, kind, unit_name, unit_code, created_at, suspended_at,"  # noqa: S608
                    " scope FROM seals"
                    f" {where} ORDER BY seal_id"
                ),
                args,
            ).fetchall()
            key_rows = conn.execute(
                self._sql(
                    "SELECT seal_id, version, key_label, certificate, state, created_at,"  # noqa: S608
                    " retired_at, destroy_after, destroyed_at, revoked_at, revocation_reason,"
                    f" invalid_since FROM seal_keys {where} ORDER BY seal_id, version"
                ),
                args,
            ).fetchall()
        keys: dict[str, list[SealKey]] = {}
        for r in key_rows:
            keys.setdefault(r[0], []).append(
                SealKey(
                    r[0],
                    r[1],
                    r[2],
                    bytes(r[3]),
                    KeyState(r[4]),
                    r[5],
                    retired_at=r[6],
                    destroy_after=r[7],
                    destroyed_at=r[8],
                    revoked_at=r[9],
                    revocation_reason=None if r[10] is None else RevocationReason(r[10]),
                    invalid_since=r[11],
                )
            )
        return [
            Seal(
                r[0],
                SealKind(r[1]),
                r[2],
                r[3],
                r[4],
                tuple(keys.get(r[0], ())),
                r[5],
                SealScope(r[6]),
            )
            for r in seal_rows
        ]

    def seal(self, seal_id: str) -> Seal:
        found = self._seals("WHERE seal_id = ?", (seal_id,))
        if not found:
            raise NotFound(f"no seal {seal_id}")
        return found[0]

    def seals(self) -> list[Seal]:
        return self._seals("", ())

    def suspend_seal(self, seal_id: str, at: float | None) -> None:
        with self._transaction("write") as conn:
            changed = conn.execute(
                self._sql("UPDATE seals SET suspended_at = ? WHERE seal_id = ?"), (at, seal_id)
            )
            if changed.rowcount == 0:
                raise NotFound(f"no seal {seal_id}")

    def load_calendar_year(self, year: int, days: str) -> None:
        with self._transaction("write") as conn:
            conn.execute(self._sql("DELETE FROM calendar_years WHERE year = ?"), (year,))
            conn.execute(
                self._sql("INSERT INTO calendar_years (year, days, loaded_at) VALUES (?, ?, ?)"),
                (year, days, time.time()),
            )

    def calendar_years(self) -> list[str]:
        with self._transaction("read") as conn:
            rows = conn.execute("SELECT days FROM calendar_years ORDER BY year").fetchall()
        return [r[0] for r in rows]

    def add_root(self, certificate: bytes, key_label: str) -> None:
        fingerprint = hashlib.sha256(certificate).digest()
        with (
            self._conflicts_as("that root certificate is already trusted"),
            self._transaction("write") as conn,
        ):
            conn.execute(
                self._sql(
                    "INSERT INTO roots (fingerprint, certificate, key_label, created_at)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (fingerprint, certificate, key_label, time.time()),
            )

    def roots(self) -> list[tuple[bytes, str]]:
        with self._transaction("read") as conn:
            rows = conn.execute(
                "SELECT certificate, key_label FROM roots ORDER BY created_at"
            ).fetchall()
        return [(bytes(r[0]), r[1]) for r in rows]

    def add_trust_document(self, version: int, document: bytes) -> None:
        with (
            self._conflicts_as(f"trust document version {version} is already published"),
            self._transaction("write") as conn,
        ):
            conn.execute(
                self._sql(
                    "INSERT INTO trust_documents (version, document, published_at) VALUES (?, ?, ?)"
                ),
                (version, document, time.time()),
            )

    def trust_document(self) -> tuple[int, bytes] | None:
        with self._transaction("read") as conn:
            row = conn.execute(
                "SELECT version, document FROM trust_documents ORDER BY version DESC LIMIT 1"
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def add_client(self, client: Client, token: str) -> None:
        with (
            self._conflicts_as(
                f"client {client.client_id} already exists or names an unknown seal"
            ),
            self._transaction("write") as conn,
        ):
            # Said plainly here; the foreign key to matters would refuse it too.
            unknown = self.unknown_matters(conn, client.purposes)
            if unknown:
                raise NotFound(
                    f"no matter {unknown[0]} in the city's table: add it first"
                    " (sealgate matter add)"
                )
            conn.execute(
                self._sql(
                    "INSERT INTO clients (client_id, name, role, office, token_digest,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (
                    client.client_id,
                    client.name,
                    client.role.value,
                    client.office,
                    token_digest(token),
                    client.created_at,
                ),
            )
            self._insert_grants(conn, client)

    def _insert_grants(self, conn: Any, client: Client) -> None:
        with contextlib.closing(conn.cursor()) as cursor:
            cursor.executemany(
                self._sql("INSERT INTO client_seals (client_id, seal_id) VALUES (?, ?)"),
                [(client.client_id, s) for s in sorted(client.seals)],
            )
            cursor.executemany(
                self._sql("INSERT INTO client_purposes (client_id, purpose) VALUES (?, ?)"),
                [(client.client_id, p) for p in sorted(client.purposes)],
            )

    def set_client_grants(
        self,
        client_id: str,
        *,
        role: Role,
        office: str | None,
        seals: frozenset[str],
        purposes: frozenset[str],
    ) -> None:
        with (
            self._conflicts_as(f"client {client_id}'s grants name an unknown seal"),
            self._transaction("write") as conn,
        ):
            args = (client_id,)
            updated = conn.execute(
                self._sql("UPDATE clients SET role = ?, office = ? WHERE client_id = ?"),
                (role.value, office, client_id),
            )
            if updated.rowcount == 0:
                raise NotFound(f"no client {client_id}")
            conn.execute(self._sql("DELETE FROM client_seals WHERE client_id = ?"), args)
            conn.execute(self._sql("DELETE FROM client_purposes WHERE client_id = ?"), args)
            self._insert_grants(conn, Client(client_id, "", role, office, seals, purposes, 0.0))

    def client(self, client_id: str) -> Client:
        found = self._clients("WHERE c.client_id = ?", (client_id,))
        if not found:
            raise NotFound(f"no client {client_id}")
        return found[0]

    def remove_client(self, client_id: str) -> None:
        with self._transaction("write") as conn:
            args = (client_id,)
            conn.execute(self._sql("DELETE FROM client_seals WHERE client_id = ?"), args)
            conn.execute(self._sql("DELETE FROM client_purposes WHERE client_id = ?"), args)
            conn.execute(self._sql("DELETE FROM client_limits WHERE client_id = ?"), args)
            removed = conn.execute(self._sql("DELETE FROM clients WHERE client_id = ?"), args)
            if removed.rowcount == 0:
                raise NotFound(f"no client {client_id}")

    def set_lookup_limit(self, client_id: str, limit: LookupLimit | None) -> None:
        with self._transaction("write") as conn:
            if not conn.execute(
                self._sql("SELECT 1 FROM clients WHERE client_id = ?"), (client_id,)
            ).fetchall():
                raise NotFound(f"no client {client_id}")
            conn.execute(self._sql("DELETE FROM client_limits WHERE client_id = ?"), (client_id,))
            if limit is not None:
                conn.execute(
                    self._sql(
                        "INSERT INTO client_limits (client_id, failures, window_seconds)"
                        " VALUES (?, ?, ?)"
                    ),
                    (client_id, limit.failures, limit.window_seconds),
                )

    def _clients(self, where: str, args: tuple[Any, ...]) -> list[Client]:
        # where: a constant of this class on the clients c, its values in args
        with self._transaction("read") as conn:
            rows = conn.execute(
                self._sql(f"{_CLIENTS_SELECT} {where} ORDER BY c.client_id"),
                args,
            ).fetchall()
            seals = self._grants(conn, "client_seals", "seal_id", where, args)
            purposes = self._grants(conn, "client_purposes", "purpose", where, args)
        return [
            Client(
                r[0],
                r[1],
                Role(r[2]),
                r[3],
                frozenset(seals.get(r[0], ())),
                frozenset(purposes.get(r[0], ())),
                r[4],
                None if r[5] is None else LookupLimit(int(r[5]), float(r[6])),
            )
            for r in rows
        ]

    def _grants(
        self, conn: Any, table: str, column: str, where: str, args: tuple[Any, ...]
    ) -> dict[str, set[str]]:
        """A grant table's values by client, for the clients that ``where`` picks: one
        query for them all, where a query a client would cost a round trip each."""
        found: dict[str, set[str]] = {}
        for client_id, value in conn.execute(
            self._sql(
                f"SELECT g.client_id, g.{column} FROM {table} g"  # noqa: S608
                f" JOIN clients c ON c.client_id = g.client_id {where}"
            ),
            args,
        ).fetchall():
            found.setdefault(client_id, set()).add(value)
        return found

    def client_by_token(self, token: str) -> Client | None:
        found = self._clients("WHERE c.token_digest = ?", (token_digest(token),))
        return found[0] if found else None

    def clients(self) -> list[Client]:
        return self._clients("", ())
