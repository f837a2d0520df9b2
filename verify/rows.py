"""The registry's rows: one layout, column for column, in both backends.

Records become rows and rows records here, and the registry's queries are written here
once; a backend only says how it writes a parameter (``?`` for SQLite, ``$1`` for
asyncpg).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.registry import (
    ProofRecord,
    ProofStatus,
    Status,
    StatusChange,
    StatusChangeRequest,
)
from sealgate.verify.rules import Successor

PROOF_COLUMNS = (
    "code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,"
    " holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at,"
    " status, status_changed_at, superseded_by, signer_client, document, data_owner,"
    " extracting_unit, verifying_unit"
)
STATUS_COLUMNS = (
    "code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,"
    " holder_id_masked, valid_from, valid_until, expires_at, issued_at, status,"
    " status_changed_at, superseded_by, version, data_owner, extracting_unit, verifying_unit"
)
HISTORY_COLUMNS = "seq, code, from_status, to_status, reason, superseded_by, client_id, changed_at"
IDEMPOTENCY_COLUMNS = "client_id, key, request_digest, codes, created_at"


@dataclass(frozen=True, slots=True)
class RegistryQueries:
    """The registry's statements in one placeholder style. Every name spliced into them
    is a constant of this module, never input."""

    select_proof: str
    select_status: str
    insert_proof: str
    insert_idempotency: str
    update_status: str
    insert_change: str
    successor: str
    history: str
    changes_since: str
    find_by_holder: str
    idempotent_result: str
    holder_proofs: str
    give_slot: str
    slot_of: str
    slots_since: str

    @classmethod
    def written_with(cls, param: Callable[[int], str]) -> RegistryQueries:
        """The statements with ``param(n)`` as the n-th (1-based) parameter."""

        def params(count: int) -> str:
            return ", ".join(param(n) for n in range(1, count + 1))

        p = param
        return cls(
            select_proof=f"SELECT {PROOF_COLUMNS} FROM proofs WHERE code = {p(1)}",  # noqa: S608
            select_status=f"SELECT {STATUS_COLUMNS} FROM proofs WHERE code = {p(1)}",  # noqa: S608
            insert_proof=f"INSERT INTO proofs ({PROOF_COLUMNS}) VALUES ({params(21)})",  # noqa: S608
            insert_idempotency=(
                f"INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS}) VALUES ({params(5)})"  # noqa: S608
            ),
            update_status=(
                f"UPDATE proofs SET status = {p(1)}, status_changed_at = {p(2)},"  # noqa: S608
                f" superseded_by = {p(3)}, version = version + 1 WHERE code = {p(4)}"
            ),
            insert_change=(
                "INSERT INTO status_history (code, from_status, to_status, reason,"  # noqa: S608
                f" superseded_by, client_id, changed_at) VALUES ({params(7)})"
            ),
            # What a supersession needs to know of the newer proof (n) and the old one (o).
            successor=(
                "SELECT n.holder_key = o.holder_key AND n.type = o.type, n.status,"  # noqa: S608
                " n.expires_at, n.issued_at > o.issued_at, n.valid_from"
                f" FROM proofs n, proofs o WHERE n.code = {p(1)} AND o.code = {p(2)}"
            ),
            history=(
                f"SELECT {HISTORY_COLUMNS} FROM status_history"  # noqa: S608
                f" WHERE code = {p(1)} ORDER BY seq"
            ),
            changes_since=(
                f"SELECT {HISTORY_COLUMNS} FROM status_history"  # noqa: S608
                f" WHERE seq > {p(1)} ORDER BY seq LIMIT {p(2)}"
            ),
            find_by_holder=(
                f"SELECT {STATUS_COLUMNS} FROM proofs"  # noqa: S608
                f" WHERE holder_key = {p(1)} AND type = {p(2)} AND status = {p(3)}"
                " ORDER BY issued_at DESC"
            ),
            idempotent_result=(
                "SELECT request_digest, codes FROM idempotency_keys"  # noqa: S608
                f" WHERE client_id = {p(1)} AND key = {p(2)}"
            ),
            holder_proofs=(
                f"SELECT {STATUS_COLUMNS} FROM proofs WHERE holder_key = {p(1)}"  # noqa: S608
                " ORDER BY issued_at DESC LIMIT 1000"
            ),
            give_slot=(
                "INSERT INTO status_slots (code) SELECT code FROM proofs"  # noqa: S608
                f" WHERE code = {p(1)} ON CONFLICT (code) DO NOTHING"
            ),
            slot_of=f"SELECT idx FROM status_slots WHERE code = {p(1)}",  # noqa: S608
            slots_since=(
                "SELECT s.idx, p.status FROM status_slots s JOIN proofs p ON p.code = s.code"  # noqa: S608
                f" WHERE s.idx > {p(1)} ORDER BY s.idx LIMIT {p(2)}"
            ),
        )


def proof_row(proof: ProofRecord, cipher: DocumentCipher) -> tuple[Any, ...]:
    """The row of :data:`PROOF_COLUMNS`, the document encrypted."""
    return (
        proof.code,
        proof.seal_id,
        proof.unit_name,
        proof.unit_code,
        proof.type,
        proof.holder_kind,
        proof.holder_name_masked,
        proof.holder_id_masked,
        proof.holder_key,
        proof.valid_from,
        proof.valid_until,
        proof.expires_at,
        proof.issued_at,
        proof.status.value,
        proof.status_changed_at,
        proof.superseded_by,
        proof.signer_client,
        cipher.encrypt(proof.code, proof.document),
        proof.data_owner,
        proof.extracting_unit,
        proof.verifying_unit,
    )


def proof_from_row(row: tuple[Any, ...], cipher: DocumentCipher) -> ProofRecord:
    return ProofRecord(
        code=row[0],
        seal_id=row[1],
        unit_name=row[2],
        unit_code=row[3],
        type=row[4],
        holder_kind=row[5],
        holder_name_masked=row[6],
        holder_id_masked=row[7],
        holder_key=bytes(row[8]),
        valid_from=row[9],
        valid_until=row[10],
        expires_at=row[11],
        issued_at=row[12],
        status=Status(row[13]),
        status_changed_at=row[14],
        superseded_by=row[15],
        signer_client=row[16],
        document=cipher.decrypt(row[0], bytes(row[17])),
        data_owner=row[18],
        extracting_unit=row[19],
        verifying_unit=row[20],
    )


def status_from_row(row: tuple[Any, ...]) -> ProofStatus:
    """A row of :data:`STATUS_COLUMNS`."""
    return ProofStatus(
        code=row[0],
        seal_id=row[1],
        unit_name=row[2],
        unit_code=row[3],
        type=row[4],
        holder_kind=row[5],
        holder_name_masked=row[6],
        holder_id_masked=row[7],
        valid_from=row[8],
        valid_until=row[9],
        expires_at=row[10],
        issued_at=row[11],
        status=Status(row[12]),
        status_changed_at=row[13],
        superseded_by=row[14],
        version=row[15],
        data_owner=row[16],
        extracting_unit=row[17],
        verifying_unit=row[18],
    )


def change_from_row(row: tuple[Any, ...]) -> StatusChange:
    """A row of :data:`HISTORY_COLUMNS`."""
    return StatusChange(
        seq=row[0],
        code=row[1],
        from_status=Status(row[2]),
        to_status=Status(row[3]),
        reason=row[4],
        superseded_by=row[5],
        client_id=row[6],
        changed_at=row[7],
    )


def status_update_row(change: StatusChangeRequest) -> tuple[Any, ...]:
    """The parameters of :attr:`RegistryQueries.update_status`."""
    return (change.status.value, change.at, change.superseded_by, change.code)


def change_row(current: ProofStatus, change: StatusChangeRequest) -> tuple[Any, ...]:
    """The parameters of :attr:`RegistryQueries.insert_change`."""
    return (
        change.code,
        current.status.value,
        change.status.value,
        change.reason,
        change.superseded_by,
        change.client_id,
        change.at,
    )


def successor_from_row(row: tuple[Any, ...] | None) -> Successor | None:
    """A row of :attr:`RegistryQueries.successor`; ``None`` for no row (no such proof)."""
    if row is None:
        return None
    same_holder_and_type, status, expires_at, issued_later, valid_from = row
    return Successor(
        bool(same_holder_and_type), Status(status), expires_at, bool(issued_later), valid_from
    )
