"""Operations' provisioning: the home, the city root CA, seals, clients.

Runs in the CLI process, with the keystore opened in-process: these are one-shot
commands, not the serving path. Every key is generated inside the keystore; only public
keys and certificates come out.

The city root's key lives in a token of its own with its own PIN (docs/design.md §5.2):
a :class:`Provisioner` given that PIN opens the root's token for the one step that needs
it (certifying a seal key, issuing a CRL); no gateway process ever has it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from sealgate.crypto.certificates import (
    PendingCertificate,
    certificate_pem,
    certificate_validity,
    prepare_root_certificate,
    prepare_seal_certificate,
)
from sealgate.gateway import administration
from sealgate.gateway.administration import Grants, new_id, plain_text
from sealgate.gateway.attestation import GatewayKeys, create_gateway_keys
from sealgate.gateway.audit import AUDIT_KEY_LABEL
from sealgate.gateway.config_file import load_settings, write_config
from sealgate.gateway.home import CONFIG_NAME, HomeError, Settings, database_kind, write_secret
from sealgate.gateway.revoking import issue_crl, purge_retired_keys
from sealgate.gateway.trust_publication import publish_trust_document, root_signer
from sealgate.hsm.errors import HsmError
from sealgate.hsm.keystore import KeyAlgorithm, Keystore, open_keystore
from sealgate.hsm.softhsm import SOFTHSM2_MODULE, create_softhsm_token
from sealgate.verify.directory import (
    Client,
    Directory,
    KeyState,
    Role,
    Seal,
    SealKey,
    SealKind,
    SealScope,
)
from sealgate.verify.holders import HolderKind, InvalidHolderId, normalise_holder_id
from sealgate.verify.matters import new_matter

ROOT_KEY_LABEL = "sealgate-root-ca-1"
ROOT_YEARS = 20
SEAL_YEARS = 5
#: The least a city root PIN may have (a demo's random one has 32).
MIN_ROOT_PIN = 8
#: No seal key is issued for less: the city root CA is that close to its end.
MIN_SEAL_DAYS = 30

DEMO_OFFICE = ("益阳市公安局", "11430900006151330B")  # demo unit; GB 32100 check valid
DEMO_PURPOSE = "demo"
# The demo's matter (docs/design.md §17): it reads the content of this type, every field
DEMO_CONTENT_TYPE = "无犯罪记录证明"

# Called with the subject (a seal or client id) just before the directory is changed,
# to audit the change ahead of it; raises, and nothing is changed, if it cannot.
Ahead = Callable[[str], None]


def _nothing_ahead(subject: str) -> None:
    """Provisioning with no trail yet (``init``): there is nothing to audit ahead into."""


def _sign(keystore: Keystore, label: str, pending: PendingCertificate) -> bytes:
    return pending.finish(keystore.sign_digest(label, pending.digest))


def _years(start: dt.datetime, years: int) -> dt.datetime:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February, into a common year
        return start.replace(year=start.year + years, day=28)


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    seals: list[Seal]
    clients: list[tuple[Client, str]]  # with the token, shown once
    root_pin: str = field(default="", repr=False)  # shown once, stored nowhere

    def lines(self) -> list[str]:
        out = [f"root-pin\t{self.root_pin}"] if self.root_pin else []
        out += [f"seal\t{s.seal_id}\t{s.kind.value}" for s in self.seals]
        out += [f"{c.role.value}\t{c.client_id}\t{token}" for c, token in self.clients]
        return out


class Provisioner:
    """Provisioning operations on one home."""

    def __init__(self, settings: Settings, *, root_pin: str | None = None) -> None:
        self.settings = settings
        self._root_pin = root_pin
        self._root: Keystore | None = None

    def keystore(self) -> Keystore:
        return open_keystore(self.settings.keystore_config())

    @contextlib.contextmanager
    def root_keystore(self) -> Iterator[Keystore]:
        """The city root's own keystore, open for the ``with`` block; needs the root PIN
        this provisioner was given. Nested blocks share it (a token takes one login per
        process)."""
        if self._root is not None:
            yield self._root
            return
        if self._root_pin is None and self.settings.backend != "soft":
            raise HomeError(
                "this step needs the city root's PIN: give --root-pin-file FILE, or type it"
                " at the prompt"
            )
        pin = self._root_pin or ""  # the soft backend's root key is a file: no PIN
        with open_keystore(self.settings.root_keystore_config(pin)) as root:
            self._root = root
            try:
                yield root
            finally:
                self._root = None

    def directory(self) -> Directory:
        return self.settings.open_directory()

    def publish_trust(self, directory: Directory) -> int:
        """Publish the next trust document: the directory's roots and seal keys and the
        home's gateway keys, signed in the root's token (its PIN needed); its version."""
        keys = GatewayKeys.load(self.settings.home).trust
        with self.root_keystore() as root:
            return publish_trust_document(directory, root_signer(root, directory), keys)

    def create_root(self, root: Keystore, directory: Directory, city: str) -> bytes:
        """The city root CA: its key generated in ``root``, the root's own keystore."""
        info = root.generate_key(ROOT_KEY_LABEL, KeyAlgorithm.EC_P256)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        pending = prepare_root_certificate(
            info.public_key_der,
            common_name=f"{city} 无证明城市 Root CA" if city else "sealgate city Root CA",
            organization=city or "sealgate",
            not_before=now - dt.timedelta(minutes=5),
            not_after=_years(now, ROOT_YEARS),
            serial=secrets.randbits(127),
        )
        certificate = _sign(root, ROOT_KEY_LABEL, pending)
        directory.add_root(certificate, ROOT_KEY_LABEL)
        self.settings.root_certificate_path.write_text(certificate_pem(certificate))
        return certificate

    def create_audit_key(self, keystore: Keystore) -> None:
        """The key that signs the audit trail's checkpoints; its public half in the home."""
        info = keystore.generate_key(AUDIT_KEY_LABEL, KeyAlgorithm.EC_P256)
        public = serialization.load_der_public_key(info.public_key_der)
        self.settings.audit_key_path.write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @contextlib.contextmanager
    def _new_seal_key(
        self,
        keystore: Keystore,
        directory: Directory,
        *,
        seal_id: str,
        version: int,
        kind: SealKind,
        unit_name: str,
        unit_code: str,
        algorithm: KeyAlgorithm,
    ) -> Iterator[SealKey]:
        """A seal key generated in the keystore, with its certificate from the city root.

        The key pair is destroyed again unless the ``with`` block (which registers it)
        completes: a failed or interrupted create or rotate leaves no key behind.
        """
        root_der, root_label = self._root_and_label(directory)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        # A certificate may not outlive its issuer: near the root's end seals get less.
        root_ends = certificate_validity(root_der)[1]
        not_after = min(_years(now, SEAL_YEARS), root_ends)
        if not_after - now < dt.timedelta(days=MIN_SEAL_DAYS):
            raise HomeError(
                f"the city root CA ends on {root_ends:%Y-%m-%d}: too soon to issue a seal key"
            )
        # Unique to this attempt: a key left by an attempt killed outright (SIGKILL, a
        # power cut) never blocks the next one. The directory keeps the label.
        label = f"seal-{seal_id}-v{version}-{secrets.token_hex(4)}"
        try:
            info = keystore.generate_key(label, algorithm)
            pending = prepare_seal_certificate(
                info.public_key_der,
                issuer_certificate_der=root_der,
                unit_name=unit_name,
                unit_code=unit_code,
                seal_id=seal_id,
                kind_name=kind.chinese_name,
                not_before=now - dt.timedelta(minutes=5),
                not_after=not_after,
                serial=secrets.randbits(127),
                crl_url=self.settings.crl_url,
            )
            with self.root_keystore() as root:
                certificate = _sign(root, root_label, pending)
            yield SealKey(seal_id, version, label, certificate, KeyState.ACTIVE, time.time())
        except BaseException:
            with contextlib.suppress(HsmError):
                keystore.destroy_key(label)
            raise

    @staticmethod
    def _root_and_label(directory: Directory) -> tuple[bytes, str]:
        roots = directory.roots()
        if not roots:
            raise HomeError("the home has no city root CA (run 'sealgate init')")
        return roots[-1]

    def create_seal(
        self,
        keystore: Keystore,
        directory: Directory,
        *,
        unit_name: str,
        unit_code: str,
        kind: SealKind,
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        ahead: Ahead = _nothing_ahead,
        scope: SealScope = SealScope.UNIT,
    ) -> Seal:
        unit_name = plain_text("the unit name", unit_name, 100)
        try:
            # Checked as an issuer's --office is: else no issuer could ever be added for
            # the office, and its proofs could never change status.
            unit_code = normalise_holder_id(HolderKind.ORG, unit_code)
        except InvalidHolderId as exc:
            raise HomeError(f"--unit-code: {exc}") from None
        seal_id = new_id("SEAL-")
        with self._new_seal_key(
            keystore,
            directory,
            seal_id=seal_id,
            version=1,
            kind=kind,
            unit_name=unit_name,
            unit_code=unit_code,
            algorithm=algorithm,
        ) as key:
            seal = Seal(seal_id, kind, unit_name, unit_code, time.time(), (key,), scope=scope)
            ahead(seal_id)  # inside the block: a failure destroys the new key again
            directory.add_seal(seal)
        return seal

    def rotate_seal(
        self,
        keystore: Keystore,
        directory: Directory,
        seal_id: str,
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        ahead: Ahead = _nothing_ahead,
        grace: float | None = None,
    ) -> SealKey:
        """A new active key for the seal; the one it replaces is retired as of now and
        destroyed in the token once ``grace`` seconds have passed (default: the city's
        ``retired_key_grace``, 0: at once). Its proofs keep verifying: they carry its
        certificate. Within the grace, ``seal purge`` (or the next rotate) destroys it."""
        grace = self.settings.retired_key_grace if grace is None else grace
        if grace < 0:
            raise HomeError("the grace period cannot be negative")
        seal = directory.seal(seal_id)
        with self._new_seal_key(
            keystore,
            directory,
            seal_id=seal_id,
            version=seal.keys[-1].version + 1,
            kind=seal.kind,
            unit_name=seal.unit_name,
            unit_code=seal.unit_code,
            algorithm=algorithm,
        ) as key:
            ahead(seal_id)
            directory.add_seal_key(key, destroy_after=key.created_at + grace)
        purge_retired_keys(keystore, directory)
        return key

    def add_client(
        self,
        directory: Directory,
        *,
        name: str,
        role: Role,
        seals: Iterable[str] = (),
        purposes: Iterable[str] = (),
        office: str | None = None,
    ) -> tuple[Client, str]:
        """A client added unaudited (``init``'s demo; tests): an operator's goes through
        :mod:`sealgate.gateway.administration` with its audit records."""
        grants = Grants.checked(directory, role=role, seals=seals, purposes=purposes, office=office)
        change, client, token = administration.add_client(name, grants)
        change.write(directory)
        return client, token

    def demo(self, keystore: Keystore, directory: Directory) -> DemoCredentials:
        unit_name, unit_code = DEMO_OFFICE
        seals = [
            self.create_seal(
                keystore, directory, unit_name=unit_name, unit_code=unit_code, kind=kind
            )
            for kind in (SealKind.PROOF, SealKind.VERIFICATION)
        ]
        directory.add_matter(
            new_matter(DEMO_PURPOSE, "演示事项 (demo)", [DEMO_CONTENT_TYPE], time.time())
        )
        clients = [
            self.add_client(
                directory, name="demo signer", role=Role.SIGNER, seals=[s.seal_id for s in seals]
            ),
            self.add_client(directory, name="demo issuer", role=Role.ISSUER, office=unit_code),
            self.add_client(
                directory, name="demo verifier", role=Role.VERIFIER, purposes=[DEMO_PURPOSE]
            ),
            self.add_client(directory, name="demo admin", role=Role.ADMIN),
            self.add_client(directory, name="demo portal", role=Role.PORTAL),
        ]
        return DemoCredentials(seals, clients)


def init_home(
    home: Path,
    *,
    backend: str = "pkcs11",
    demo: bool = False,
    region: str = "430900",
    city: str = "益阳市",
    pkcs11_module: str | None = None,
    token_label: str = "sealgate",  # noqa: S107 - a token's label, not a secret
    root_token_label: str | None = None,
    root_pin: str | None = None,
    database_url: str | None = None,
    crl_url: str | None = None,
) -> tuple[Settings, DemoCredentials | None]:
    """Create a home: config, secrets, tokens (SoftHSM2 unless a module is given), root CA,
    the root's first CRL.

    The root's key goes into a token of its own (``root_token_label``; by default
    ``root-`` and the gateway's label, not the gateway's label with a suffix, which
    OpenSC's ``--token-label`` prefix match would take for the gateway's) under
    ``root_pin``, which is stored nowhere: a demo without one gets a random PIN,
    returned once in its credentials. The SO PINs of the
    tokens made here are random and kept nowhere either (a lost token is made anew).

    ``database_url`` (else ``SEALGATE_DATABASE_URL``, else the SQLite file in the home)
    is where the schema is created and the directory written; given here, it is also
    recorded in the config file, so it must not carry a password (libpq's
    ``PGPASSWORD`` or ``~/.pgpass`` hold that).
    """
    if backend not in ("pkcs11", "soft"):
        raise HomeError(f"unknown backend {backend!r} (pkcs11 or soft)")
    if database_url is not None:
        database_kind(database_url)
        if urlsplit(database_url).password is not None:
            raise HomeError(
                "the database URL is written to config.toml: leave the password out of it"
                " (use PGPASSWORD or ~/.pgpass)"
            )
    if not (len(region) == 6 and region.isdigit() and region.isascii()):
        raise HomeError("the region code has 6 digits (GB/T 2260), e.g. 430900")
    if root_pin is None:
        if not demo and backend != "soft":
            raise HomeError("the city root needs a PIN of its own (--root-pin-file, or a prompt)")
        root_pin = secrets.token_hex(16)  # the soft backend's is a formality: a key file
    if len(root_pin) < MIN_ROOT_PIN:
        raise HomeError(f"the city root's PIN has at least {MIN_ROOT_PIN} characters")
    root_label = root_token_label or f"root-{token_label}"
    if root_label == token_label:
        raise HomeError("the city root's token must not be the gateway's token")
    if (home / CONFIG_NAME).exists():
        raise HomeError(f"{home} is already a sealgate home")
    created = not home.exists()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        config = {
            "region": region,
            "city": city,
            "backend": backend,
            "token_label": token_label,
            "root_token_label": root_label,
        }
        write_secret(home, "code-key")
        write_secret(home, "holder-key")
        write_secret(home, "document-key")
        write_secret(home, "webhook-key")  # signs overdue announcements (§12)
        if backend == "pkcs11":
            if pkcs11_module:
                config["pkcs11_module"] = pkcs11_module
                if not os.environ.get("SEALGATE_PKCS11_PIN"):
                    raise HomeError("set SEALGATE_PKCS11_PIN to the token's user PIN")
            else:
                pin = secrets.token_hex(16)
                write_secret(home, "token-pin", pin.encode())
                for label, user_pin in ((token_label, pin), (root_label, root_pin)):
                    # The SO PIN only initialises the token: random, and forgotten.
                    create_softhsm_token(home / "softhsm", label, user_pin, secrets.token_hex(16))
                config["pkcs11_module"] = SOFTHSM2_MODULE
        if database_url is not None:
            config["database_url"] = database_url
        if crl_url is not None:
            config["crl_url"] = crl_url
        if demo:
            # The demo's verifier checks with a purpose alone (`make run`'s examples); a
            # city's home asks for the holder's consent (docs/design.md §14).
            config["consent_required"] = "false"
        write_config(home, config)
        settings = load_settings(home, database_url=database_url)
        settings.migrate_database()
        provisioner = Provisioner(settings, root_pin=root_pin)
        with provisioner.keystore() as keystore, provisioner.root_keystore() as root:
            directory = provisioner.directory()
            try:
                provisioner.create_root(root, directory, city)
                provisioner.create_audit_key(keystore)
                issue_crl(provisioner, directory)
                create_gateway_keys(keystore, home)
                credentials = provisioner.demo(keystore, directory) if demo else None
                provisioner.publish_trust(directory)  # with the gateway keys just made
            finally:
                directory.close()
        if credentials is not None:
            credentials = dataclasses.replace(credentials, root_pin=root_pin)
        return settings, credentials
    except BaseException:
        if created:
            shutil.rmtree(home, ignore_errors=True)
        else:
            (home / CONFIG_NAME).unlink(missing_ok=True)
        raise
