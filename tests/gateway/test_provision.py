"""Provisioning seal keys on a real SoftHSM2 token: a failed or interrupted step leaves
no key behind, and a seal certificate never outlives the city root that issues it."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.crypto.certificates import (
    certificate_validity,
    prepare_root_certificate,
    prepare_seal_certificate,
)
from sealgate.gateway.app import create_app
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.home import HomeError, Settings
from sealgate.gateway.keys import REGISTRY
from sealgate.gateway.provision import DEMO_OFFICE, Provisioner, _years, init_home
from sealgate.hsm.keystore import KeyAlgorithm, Keystore
from sealgate.verify.directory import (
    Directory,
    DirectoryUnavailable,
    KeyState,
    Role,
    Seal,
    SealKey,
    SealKind,
)
from tests.gateway.conftest import GatewayClient, proof_request

UNIT_NAME, UNIT_CODE = DEMO_OFFICE
ROOT_PIN = "the root pin of these tests"


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings, _ = init_home(tmp_path_factory.mktemp("provision") / "home", root_pin=ROOT_PIN)
    return settings


@pytest.fixture
def provisioner(home: Settings) -> Provisioner:
    return Provisioner(home, root_pin=ROOT_PIN)


@pytest.fixture
def directory(provisioner: Provisioner) -> Iterator[Directory]:
    directory = provisioner.directory()
    yield directory
    directory.close()


@pytest.fixture
def keystore(provisioner: Provisioner) -> Iterator[Keystore]:
    with provisioner.keystore() as keystore:
        yield keystore


@pytest.fixture
def root(provisioner: Provisioner) -> Iterator[Keystore]:
    """The city root's own keystore (its token, its PIN)."""
    with provisioner.root_keystore() as keystore:
        yield keystore


def labels(keystore: Keystore) -> set[str]:
    everything = keystore.keys()
    return {info.label for info in everything}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def add_root(
    keystore: Keystore, directory: Directory, not_before: dt.datetime, not_after: dt.datetime
) -> str:
    """Trust one more city root (the newest issues seals); returns its key's label."""
    label = f"test-root-{secrets.token_hex(4)}"
    info = keystore.generate_key(label, KeyAlgorithm.EC_P256)
    pending = prepare_root_certificate(
        info.public_key_der,
        common_name="测试根CA",
        organization="测试",
        not_before=not_before,
        not_after=not_after,
        serial=secrets.randbits(127),
    )
    directory.add_root(pending.finish(keystore.sign_digest(label, pending.digest)), label)
    return label


def create_seal(provisioner: Provisioner, keystore: Keystore, directory: Directory) -> Seal:
    return provisioner.create_seal(
        keystore, directory, unit_name=UNIT_NAME, unit_code=UNIT_CODE, kind=SealKind.PROOF
    )


def test_five_years_from_29_february_end_on_28_february() -> None:
    leap_day = dt.datetime(2028, 2, 29, 10, 30, tzinfo=dt.UTC)
    assert _years(leap_day, 5) == dt.datetime(2033, 2, 28, 10, 30, tzinfo=dt.UTC)
    assert _years(leap_day, 4) == leap_day.replace(year=2032)


def test_a_seal_create_that_fails_to_register_leaves_no_key(
    provisioner: Provisioner,
    keystore: Keystore,
    directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def locked(seal: Seal) -> None:
        raise DirectoryUnavailable("the directory's store failed: database is locked")

    monkeypatch.setattr(directory, "add_seal", locked)
    before = labels(keystore)
    with pytest.raises(DirectoryUnavailable):
        create_seal(provisioner, keystore, directory)
    assert labels(keystore) == before


@pytest.mark.parametrize(
    ("unit_name", "unit_code", "refusal"),
    [
        (UNIT_NAME, "91330200MA2AAAAA0X", "check character"),  # G is right
        (UNIT_NAME, "NOT-A-USCC", "--unit-code"),
        ("宁波\t市", UNIT_CODE, "control character"),
        ("  ", UNIT_CODE, "empty"),
        ("局" * 101, UNIT_CODE, "longer than 100"),
    ],
)
def test_a_seal_for_a_unit_the_directory_cannot_hold_is_refused_before_any_key(
    provisioner: Provisioner,
    keystore: Keystore,
    directory: Directory,
    unit_name: str,
    unit_code: str,
    refusal: str,
) -> None:
    before = labels(keystore)
    with pytest.raises(HomeError, match=refusal):
        provisioner.create_seal(
            keystore, directory, unit_name=unit_name, unit_code=unit_code, kind=SealKind.PROOF
        )
    assert labels(keystore) == before
    assert directory.seals() == []


def test_an_interrupted_rotate_leaves_no_key_and_the_next_one_works(
    provisioner: Provisioner,
    keystore: Keystore,
    directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seal = create_seal(provisioner, keystore, directory)
    before = labels(keystore)

    def interrupted(key: SealKey, **_: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, in the CLI) while registering

    monkeypatch.setattr(directory, "add_seal_key", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provisioner.rotate_seal(keystore, directory, seal.seal_id)
    assert labels(keystore) == before
    monkeypatch.undo()

    key = provisioner.rotate_seal(keystore, directory, seal.seal_id)
    assert key.version == 2
    # The retired key is destroyed at once (no grace period set), its retirement recorded.
    assert labels(keystore) == before - {seal.active_key.key_label} | {key.key_label}
    old, new = directory.seal(seal.seal_id).keys
    assert (old.state, new.state) == (KeyState.RETIRED, KeyState.ACTIVE)
    assert old.retired_at == new.created_at and old.destroyed_at is not None


def test_a_key_left_by_a_killed_attempt_does_not_block_the_next(
    provisioner: Provisioner, keystore: Keystore, directory: Directory
) -> None:
    seal = create_seal(provisioner, keystore, directory)
    # What a rotate killed outright (SIGKILL) between key and registry would leave.
    keystore.generate_key(f"seal-{seal.seal_id}-v2", KeyAlgorithm.EC_P256)
    key = provisioner.rotate_seal(keystore, directory, seal.seal_id)
    assert key.version == 2 and key.key_label in labels(keystore)


def test_a_seal_certificate_ends_with_its_root(
    provisioner: Provisioner, keystore: Keystore, root: Keystore, directory: Directory
) -> None:
    root_ends = now() + dt.timedelta(days=365)
    add_root(root, directory, now() - dt.timedelta(days=1), root_ends)
    seal = create_seal(provisioner, keystore, directory)
    assert certificate_validity(seal.active_key.certificate)[1] == root_ends


def test_no_seal_key_within_a_month_of_the_roots_end(
    provisioner: Provisioner, keystore: Keystore, directory: Directory
) -> None:
    seal = create_seal(provisioner, keystore, directory)
    add_root(keystore, directory, now() - dt.timedelta(days=1), now() + dt.timedelta(days=29))
    before = labels(keystore)
    with pytest.raises(HomeError, match="too soon to issue a seal key"):
        provisioner.rotate_seal(keystore, directory, seal.seal_id)
    assert labels(keystore) == before
    assert len(directory.seal(seal.seal_id).keys) == 1


def _expired_seal(
    provisioner: Provisioner, keystore: Keystore, directory: Directory
) -> tuple[Seal, str]:
    """A seal whose only key's certificate ended yesterday, and a signer's token for it."""
    root_label = add_root(
        keystore, directory, now() - dt.timedelta(days=3650), now() + dt.timedelta(days=3650)
    )
    root = directory.roots()[-1][0]
    seal_id = f"SEAL-EXPIRED{secrets.randbelow(10**6):06d}"
    label = f"seal-{seal_id}-v1"
    info = keystore.generate_key(label, KeyAlgorithm.EC_P256)
    pending = prepare_seal_certificate(
        info.public_key_der,
        issuer_certificate_der=root,
        unit_name=UNIT_NAME,
        unit_code=UNIT_CODE,
        seal_id=seal_id,
        kind_name=SealKind.PROOF.chinese_name,
        not_before=now() - dt.timedelta(days=1826),
        not_after=now() - dt.timedelta(days=1),
        serial=secrets.randbits(127),
    )
    certificate = pending.finish(keystore.sign_digest(root_label, pending.digest))
    key = SealKey(seal_id, 1, label, certificate, KeyState.ACTIVE, 0.0)
    seal = Seal(seal_id, SealKind.PROOF, UNIT_NAME, UNIT_CODE, 0.0, (key,))
    directory.add_seal(seal)
    _, token = provisioner.add_client(directory, name="signer", role=Role.SIGNER, seals=[seal_id])
    return seal, token


async def test_a_seal_whose_certificate_ended_refuses_to_seal_and_is_named(
    home: Settings,
    provisioner: Provisioner,
    keystore: Keystore,
    directory: Directory,
    gateway_client: GatewayClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seal, token = _expired_seal(provisioner, keystore, directory)
    api: TestClient[Any, Any] = await gateway_client(create_app(home))
    auth = {"Authorization": f"Bearer {token}"}

    response = await api.post("/v1/certificates", json=proof_request(seal.seal_id), headers=auth)
    assert response.status == 503
    problem = await response.json()
    assert problem["code"] == "seal-certificate-not-valid"
    assert seal.seal_id in problem["detail"]
    batch = {"items": [proof_request(seal.seal_id)] * 3}
    assert (await api.post("/v1/certificates", json=batch, headers=auth)).status == 503
    assert await api.app[REGISTRY].count() == 0  # nothing sealed, nothing stored

    ready = await api.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["ready"]  # verification and other seals go on
    assert f"{seal.seal_id} cannot seal: its certificate ended" in body["checks"]["seals"]
    assert any(seal.seal_id in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_the_catalog_names_a_seal_a_month_before_its_certificate_ends(
    provisioner: Provisioner,
    keystore: Keystore,
    directory: Directory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seal = create_seal(provisioner, keystore, directory)
    ends = certificate_validity(seal.active_key.certificate)[1]
    for days_left, expected in (
        (31, None),
        (29, f"{seal.seal_id}: its certificate ends {ends:%Y-%m-%d}"),
        (-1, f"{seal.seal_id} cannot seal: its certificate ended {ends:%Y-%m-%d}"),
    ):
        moment = ends - dt.timedelta(days=days_left)
        catalog = SealCatalog(directory, clock=lambda moment=moment: moment)
        catalog.refresh()  # logged once per process, not once per refresh
        assert catalog.snapshot.expiry_warnings == (() if expected is None else (expected,))
        if expected is not None:
            assert [r.getMessage() for r in caplog.records].count(
                f"{expected} (sealgate seal rotate {seal.seal_id})"
            ) == 1
