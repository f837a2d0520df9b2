"""The table of matters (docs/design.md §17) in the directory's store, for either backend.

A mixin of :class:`~sealgate.verify.sql_directory.SqlDirectory`: the same connection,
transactions and parameter style. ``client_purposes.purpose`` refers to ``matters``, so
no grant can name a matter the table lacks, nor a matter be removed while granted.
"""

from __future__ import annotations

import contextlib
import json
from abc import abstractmethod
from typing import Any

from sealgate.verify.directory import NotFound
from sealgate.verify.matters import Matter, MatterInUse


class SqlMatters:
    """``add_matter``, ``remove_matter`` and ``matters`` of the Directory interface."""

    @abstractmethod
    def _transaction(self, what: str) -> contextlib.AbstractContextManager[Any]: ...

    @abstractmethod
    def _sql(self, text: str) -> str: ...

    @abstractmethod
    def _conflicts_as(self, message: str) -> contextlib.AbstractContextManager[None]: ...

    def add_matter(self, matter: Matter) -> None:
        with (
            self._conflicts_as(f"matter {matter.matter_id} already exists"),
            self._transaction("write") as conn,
        ):
            conn.execute(
                self._sql("INSERT INTO matters (matter, name, created_at) VALUES (?, ?, ?)"),
                (matter.matter_id, matter.name, matter.created_at),
            )
            with contextlib.closing(conn.cursor()) as cursor:
                cursor.executemany(
                    self._sql(
                        "INSERT INTO matter_contents (matter, proof_type, fields) VALUES (?, ?, ?)"
                    ),
                    [
                        (matter.matter_id, proof_type, _fields_text(fields))
                        for proof_type, fields in sorted(matter.contents.items())
                    ],
                )

    def remove_matter(self, matter_id: str) -> None:
        with self._transaction("write") as conn:
            granted = [
                r[0]
                for r in conn.execute(
                    self._sql(
                        "SELECT client_id FROM client_purposes WHERE purpose = ? ORDER BY client_id"
                    ),
                    (matter_id,),
                ).fetchall()
            ]
            if granted:
                raise MatterInUse(
                    f"matter {matter_id} is granted to {', '.join(granted)}: remove them first"
                )
            args = (matter_id,)
            conn.execute(self._sql("DELETE FROM matter_contents WHERE matter = ?"), args)
            removed = conn.execute(self._sql("DELETE FROM matters WHERE matter = ?"), args)
            if removed.rowcount == 0:
                raise NotFound(f"no matter {matter_id}")

    def matters(self) -> list[Matter]:
        with self._transaction("read") as conn:
            rows = conn.execute(
                "SELECT matter, name, created_at FROM matters ORDER BY matter"
            ).fetchall()
            content_rows = conn.execute(
                "SELECT matter, proof_type, fields FROM matter_contents"
            ).fetchall()
        contents: dict[str, dict[str, frozenset[str] | None]] = {}
        for matter_id, proof_type, fields in content_rows:
            listed = None if fields is None else frozenset(json.loads(fields))
            contents.setdefault(matter_id, {})[proof_type] = listed
        return [Matter(r[0], r[1], r[2], contents.get(r[0], {})) for r in rows]

    def unknown_matters(self, conn: Any, purposes: frozenset[str]) -> list[str]:
        """Those of ``purposes`` the table lacks, read in the caller's transaction (a
        grant names few: one small query each)."""
        sql = self._sql("SELECT 1 FROM matters WHERE matter = ?")
        return sorted(p for p in purposes if conn.execute(sql, (p,)).fetchone() is None)


def _fields_text(fields: frozenset[str] | None) -> str | None:
    """A content grant's fields as stored: a JSON array, NULL for every field."""
    return None if fields is None else json.dumps(sorted(fields), ensure_ascii=False)
