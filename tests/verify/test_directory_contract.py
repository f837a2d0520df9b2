"""The directory of seals and clients, on both backends (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealgate.verify.directory import (
    AlreadyExists,
    Client,
    Directory,
    KeyState,
    NotFound,
    Role,
    Seal,
    SealKey,
    SealKind,
)
from sealgate.verify.matters import Matter, MatterInUse, new_matter
from tests.verify.backends import BACKENDS, open_backend


@pytest.fixture(params=BACKENDS)
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Directory]:
    opened = open_backend(request, tmp_path).directory()
    yield opened
    opened.close()


def key(seal_id: str, version: int, state: KeyState = KeyState.ACTIVE) -> SealKey:
    return SealKey(seal_id, version, f"seal-{seal_id}-v{version}", b"\x30\x01" + bytes([version]),
                   state, 10.0 + version)  # fmt: skip


def seal(seal_id: str, kind: SealKind = SealKind.PROOF) -> Seal:
    return Seal(seal_id, kind, "益阳市公安局", "11430900006151330B", 1.0, (key(seal_id, 1),))


def test_seals_are_stored_with_their_keys_and_listed_by_id(directory: Directory) -> None:
    directory.add_seal(seal("SEAL-B", SealKind.VERIFICATION))
    directory.add_seal(seal("SEAL-A"))
    assert [s.seal_id for s in directory.seals()] == ["SEAL-A", "SEAL-B"]
    assert directory.seal("SEAL-B") == seal("SEAL-B", SealKind.VERIFICATION)
    assert directory.seal("SEAL-A").active_key == key("SEAL-A", 1)
    with pytest.raises(NotFound):
        directory.seal("SEAL-MISSING")
    with pytest.raises(AlreadyExists):
        directory.add_seal(seal("SEAL-A"))


def test_a_new_key_retires_the_versions_before_it(directory: Directory) -> None:
    directory.add_seal(seal("SEAL-A"))
    directory.add_seal(seal("SEAL-B"))
    directory.add_seal_key(key("SEAL-A", 2))
    rotated = directory.seal("SEAL-A")
    assert [(k.version, k.state) for k in rotated.keys] == [
        (1, KeyState.RETIRED),
        (2, KeyState.ACTIVE),
    ]
    assert rotated.active_key.version == 2
    assert directory.seal("SEAL-B").active_key.version == 1  # another seal is untouched
    with pytest.raises(AlreadyExists):
        directory.add_seal_key(key("SEAL-A", 2))
    with pytest.raises(NotFound):
        directory.add_seal_key(key("SEAL-MISSING", 2))


def test_roots_are_trusted_once_oldest_first(directory: Directory) -> None:
    directory.add_root(b"\x30\x03root-1", "root-1")
    directory.add_root(b"\x30\x03root-2", "root-2")
    assert directory.roots() == [(b"\x30\x03root-1", "root-1"), (b"\x30\x03root-2", "root-2")]
    with pytest.raises(AlreadyExists):
        directory.add_root(b"\x30\x03root-1", "again")


def matters(directory: Directory, *names: str) -> None:
    """The city's table of matters that purpose grants name (docs/design.md §17)."""
    for name in names:
        directory.add_matter(new_matter(name, name, [], 1.0))


def test_clients_are_found_by_token_with_their_grants(directory: Directory) -> None:
    matters(directory, "贷款", "开户")
    directory.add_seal(seal("SEAL-A"))
    directory.add_seal(seal("SEAL-B"))
    signer = Client("C-1", "signer", Role.SIGNER, None, frozenset({"SEAL-A", "SEAL-B"}),
                    frozenset(), 5.0)  # fmt: skip
    verifier = Client("C-2", "bank", Role.VERIFIER, None, frozenset(),
                      frozenset({"贷款", "开户"}), 6.0)  # fmt: skip
    issuer = Client("C-3", "office", Role.ISSUER, "11430900006151330B", frozenset(),
                    frozenset(), 7.0)  # fmt: skip
    directory.add_client(signer, "sgt_signer")
    directory.add_client(verifier, "sgt_verifier")
    directory.add_client(issuer, "sgt_issuer")
    assert directory.client_by_token("sgt_signer") == signer
    assert directory.client_by_token("sgt_verifier") == verifier
    assert directory.client_by_token("sgt_issuer") == issuer
    assert directory.client_by_token("sgt_unknown") is None
    assert directory.clients() == [signer, verifier, issuer]


def test_a_client_is_refused_for_a_taken_id_token_or_an_unknown_seal(
    directory: Directory,
) -> None:
    directory.add_client(
        Client("C-1", "a", Role.ADMIN, None, frozenset(), frozenset(), 1.0), "sgt_one"
    )
    for client, token in [
        (Client("C-1", "b", Role.ADMIN, None, frozenset(), frozenset(), 1.0), "sgt_two"),
        (Client("C-2", "c", Role.ADMIN, None, frozenset(), frozenset(), 1.0), "sgt_one"),
        (Client("C-3", "d", Role.SIGNER, None, frozenset({"NOPE"}), frozenset(), 1.0), "sgt_3"),
    ]:
        with pytest.raises(AlreadyExists):
            directory.add_client(client, token)
    # Nothing of a refused client was kept.
    assert [c.client_id for c in directory.clients()] == ["C-1"]
    assert directory.client_by_token("sgt_3") is None


def test_a_removed_client_is_gone_with_its_grants(directory: Directory) -> None:
    matters(directory, "贷款")
    directory.add_seal(seal("SEAL-A"))
    kept = Client("C-1", "a", Role.VERIFIER, None, frozenset(), frozenset({"贷款"}), 1.0)
    gone = Client("C-2", "b", Role.SIGNER, None, frozenset({"SEAL-A"}), frozenset(), 2.0)
    directory.add_client(kept, "sgt_kept")
    directory.add_client(gone, "sgt_gone")
    directory.remove_client("C-2")
    assert directory.client_by_token("sgt_gone") is None
    assert directory.clients() == [kept]
    with pytest.raises(NotFound):
        directory.remove_client("C-2")
    # Its id and token can be given out again: nothing of it was left behind.
    directory.add_client(gone, "sgt_gone")
    assert directory.client_by_token("sgt_gone") == gone


def test_the_table_of_matters_and_the_grants_that_name_them(directory: Directory) -> None:
    loan = new_matter("loan", "贷款审批", ["无犯罪记录证明=结论,用途", "婚姻状况证明"], 3.0)
    directory.add_matter(loan)
    matters(directory, "开户")
    assert directory.matters() == [
        loan,
        Matter("开户", "开户", 1.0, {}),
    ]
    assert directory.matters()[0].contents == {
        "无犯罪记录证明": frozenset({"结论", "用途"}),
        "婚姻状况证明": None,
    }
    with pytest.raises(AlreadyExists):
        directory.add_matter(new_matter("loan", "again", [], 4.0))
    # a grant names a matter the table holds, and a granted matter stays
    bank = Client("C-1", "bank", Role.VERIFIER, None, frozenset(), frozenset({"nope"}), 1.0)
    with pytest.raises(NotFound):
        directory.add_client(bank, "sgt_bank")
    assert directory.clients() == []
    directory.add_client(dataclasses.replace(bank, purposes=frozenset({"loan"})), "sgt_bank")
    with pytest.raises(MatterInUse):
        directory.remove_matter("loan")
    directory.remove_matter("开户")
    with pytest.raises(NotFound):
        directory.remove_matter("开户")
    directory.remove_client("C-1")
    directory.remove_matter("loan")
    assert directory.matters() == []
