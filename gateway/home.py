"""The sealgate home: config, secrets, the registry file and (SoftHSM2) the token.

Layout::

    HOME/config.toml        settings (no secrets)
    HOME/secrets/           0700; token PINs, the code-tag and holder-key secrets
    HOME/registry.db        the SQLite registry (embedded default; a postgresql:// database
                            URL puts the registry and the directory there instead)
    HOME/softhsm/           SoftHSM2 token store and its softhsm2.conf: the gateway's token
                            and the city root's token, each with its own PIN; the root's
                            PIN is never stored (docs/design.md §5.2)
    HOME/soft-keys/         the development-only soft keystore
    HOME/root.pem           the city root CA certificate (public)
    HOME/crl.der            the newest CRL the root issued (public)
    HOME/tsa-roots.pem      the roots of the TSAs whose timestamps are trusted (public)

Settings resolve as flag > environment (``SEALGATE_*``) > config file > default
(:mod:`sealgate.gateway.config_file` reads them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sealgate.cache.lookup import DEFAULT_OUTAGE_FRESHNESS
from sealgate.crypto.errors import ContentError
from sealgate.crypto.verification import TrustList
from sealgate.errors import Error
from sealgate.gateway.audit_sink import HeadSink, instance_name
from sealgate.gateway.auth import CACHE_SECONDS as DEFAULT_TOKEN_CACHE
from sealgate.gateway.bounded import DEFAULT_REQUEST_DEADLINE
from sealgate.gateway.instants import CHINA
from sealgate.gateway.webhooks import TargetRules
from sealgate.hsm.keystore import KeystoreConfig
from sealgate.hsm.softhsm import follow_moved_tokens
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import Directory, LookupLimit
from sealgate.verify.registry import Registry
from sealgate.verify.workdays import OfficeHours

DEFAULT_HOME = Path(".sealgate")
DEFAULT_QR_LIFETIME = 90.0
QR_LIFETIMES = (60.0, 120.0)
DEFAULT_STATUS_LIST_BOUND = 60.0
# Days change notices' settled deliveries stay in the delivery log (docs/design.md §18).
DEFAULT_NOTICE_RETENTION_DAYS = 30
MIN_NOTICE_RETENTION_DAYS = 2
#: Where ``make run``'s demo gateway serves its CRL; a city sets its public address.
DEFAULT_CRL_URL = "http://127.0.0.1:8080/v1/crl"
#: How long a CRL is current: the root must issue the next one within it.
DEFAULT_CRL_NEXT_UPDATE = 24 * 3600.0
DEFAULT_CATALOG_REFRESH = 5.0  # seconds between two loads of a worker's seal catalog
CONFIG_NAME = "config.toml"


class HomeError(Error):
    """The home is missing, incomplete or misconfigured."""


def resolve_home(flag: str | None) -> Path:
    return Path(flag or os.environ.get("SEALGATE_HOME") or DEFAULT_HOME).absolute()


SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql``, from the URL's scheme; any other is a HomeError.

    Only the scheme is ever quoted: the rest of a URL may hold a password.
    """
    if url.startswith(SQLITE_PREFIX):
        return "sqlite"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return "postgresql"
    raise HomeError(
        f"unsupported database URL scheme {scheme or url.split(':')[0]!r}:"
        " use sqlite:///PATH or postgresql://HOST/DATABASE"
    )


# NIST SP 800-63B §5.2.2: at most 100 consecutive failures; drained in 10 minutes
DEFAULT_LOOKUP_LIMIT = LookupLimit(100, 600.0)


@dataclass(frozen=True, slots=True)
class FailedLookupSettings:
    per_client: LookupLimit = DEFAULT_LOOKUP_LIMIT
    typo_weight: float = 0.1  # a code its check character refuses weighs this much
    global_burst: int = 2000
    global_per_second: float = 1000.0

    @classmethod
    def from_config(cls, table: object) -> FailedLookupSettings:
        """The ``[failed_lookups]`` table; a HomeError naming what is wrong in it."""
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise HomeError("failed_lookups must be a table ([failed_lookups])")
        known = {"per_client", "window_seconds", "typo_weight", "global_burst", "global_per_second"}
        if unknown := sorted(set(table) - known):
            raise HomeError(f"failed_lookups: unknown setting {unknown[0]!r}")
        default = cls()
        try:
            settings = cls(
                LookupLimit(
                    int(table.get("per_client", default.per_client.failures)),
                    float(table.get("window_seconds", default.per_client.window_seconds)),
                ),
                float(table.get("typo_weight", default.typo_weight)),
                int(table.get("global_burst", default.global_burst)),
                float(table.get("global_per_second", default.global_per_second)),
            )
        except (TypeError, ValueError) as exc:
            raise HomeError(f"failed_lookups: {exc}") from None
        if not 0 < settings.typo_weight <= 1:
            raise HomeError("failed_lookups: typo_weight must be more than 0 and at most 1")
        if settings.global_burst < 1 or not settings.global_per_second > 0:
            raise HomeError("failed_lookups: the global budget must be positive")
        return settings


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    region: str
    city: str
    backend: str  # "pkcs11" or "soft"
    pkcs11_module: str
    token_label: str
    database_url: str
    redis_url: str | None
    # A city setting (config.toml ``archival_issuance = true``): seal proofs whose
    # validity has already ended, recorded after the fact, which then show "expired".
    # Off by default: such a request is refused 422 ``validity-ended``.
    archival_issuance: bool = False
    # Bounded waits, and serving through a registry or directory outage (§11): how long
    # a request may wait on them, and how long past the change feed's last confirmation
    # cached statuses and clients still answer.
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    outage_freshness: float = DEFAULT_OUTAGE_FRESHNESS
    # config.toml ``token_cache``, ``catalog_refresh`` (seconds): how long a worker
    # remembers a token's client, how often it re-reads its seal catalog; the bounds
    # within which a change reaches it when no announcement on Redis does (§6.2).
    token_cache: float = DEFAULT_TOKEN_CACHE
    catalog_refresh: float = DEFAULT_CATALOG_REFRESH
    # Where signed audit heads are also appended, out of the home owner's reach
    # (sealgate.gateway.audit_sink): a redis:// URL, or None.
    audit_sink: str | None = None
    # When set, /metrics asks for "Authorization: Bearer <this>" (a secret: from
    # SEALGATE_METRICS_TOKEN or secrets/metrics-token, never config.toml).
    metrics_token: str | None = None
    # The city root's own token (PKCS#11) that no gateway process opens; its PIN is asked
    # for by the commands that need the root, never kept (docs/design.md §5.2).
    root_token_label: str = "root-sealgate"  # noqa: S105 - a token's label, not a secret
    # Where seal certificates say their CRL is published (their CRL distribution point),
    # and how long each CRL the root issues is current (its nextUpdate).
    crl_url: str = DEFAULT_CRL_URL
    crl_next_update: float = DEFAULT_CRL_NEXT_UPDATE
    # How long a key retired by ``seal rotate`` stays in the token before it is destroyed
    # (0: at once); ``seal purge`` destroys the keys whose grace has passed.
    retired_key_grace: float = 0.0
    # The city's time-stamping authority (RFC 3161 over HTTP): every proof sealed gets a
    # signature timestamp from it (CAdES-B-T). None: proofs are sealed without (B-B).
    tsa_url: str | None = None
    # When that TSA cannot stamp: refuse the sealing, 503 (the default), or seal without
    # timestamps and say so in each answer (tsa_unavailable = "seal-untimestamped").
    seal_untimestamped: bool = False
    # config.toml [failed_lookups] (docs/design.md §8): the city's limits on failed code
    # lookups; a client's own (`sealgate client set-limits`) replaces ``per_client``.
    failed_lookups: FailedLookupSettings = FailedLookupSettings()
    # config.toml ``answer_offset`` ("+08:00" by default, "Z", any ±HH:MM): the UTC offset
    # every instant in an answer is written in (sealgate.gateway.instants).
    answer_offset: dt.timezone = CHINA
    # config.toml [requests] (docs/design.md §12): whether the 30-minute tier counts office
    # hours only ("09:00-17:00"; absent: every minute counts), and where overdue requests
    # are announced (signed with the secret ``webhook-key``).
    office_hours: OfficeHours | None = None
    overdue_webhook: str | None = None
    # config.toml [notices] (docs/design.md §18): where change notices may be sent
    # besides public HTTPS hosts (plain http, networks otherwise refused), and how many
    # days delivered and given-up deliveries stay in the delivery log before the courier
    # deletes them (retention_days, at least 2: a delivery is retried for a day).
    notice_targets: TargetRules = dataclasses.field(default_factory=TargetRules)
    notice_retention_days: int = DEFAULT_NOTICE_RETENTION_DAYS
    # City settings for 亮码扫码 (docs/design.md §13): how long a dynamic QR payload lasts
    # (60-120 s), the bound within which a status change is in the published status
    # list, and the gateway's public address, the base of the list URIs in payloads.
    qr_lifetime: float = DEFAULT_QR_LIFETIME
    status_list_bound: float = DEFAULT_STATUS_LIST_BOUND
    public_url: str = ""
    # The public check page's checks per client address per minute (config.toml).
    check_per_minute: int = 20
    # Document downloads and reuse lookups by verifiers need the holder's consent
    # (config.toml ``consent_required``, default true); false keeps the purpose-only mode.
    consent_required: bool = True

    @property
    def database_kind(self) -> str:
        """``sqlite`` (embedded default) or ``postgresql`` (city scale)."""
        return database_kind(self.database_url)

    @property
    def database_label(self) -> str:
        """The database URL with any password hidden, for messages."""
        if self.database_kind == "postgresql":
            from sealgate.verify.postgres import redacted

            return redacted(self.database_url)
        return self.database_url

    @property
    def sqlite_path(self) -> Path:
        if self.database_kind != "sqlite":
            raise HomeError("the database is not SQLite")
        return Path(self.database_url[len(SQLITE_PREFIX) :])

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def root_certificate_path(self) -> Path:
        return self.home / "root.pem"

    @property
    def crl_path(self) -> Path:
        """The newest CRL the city root issued, DER."""
        return self.home / "crl.der"

    @property
    def tsa_roots_path(self) -> Path:
        """The PEM bundle of trusted TSA roots: timestamps are checked against these."""
        return self.home / "tsa-roots.pem"

    def tsa_trust(self) -> TrustList | None:
        """The trusted TSA roots, or None if the home has none (timestamps not checked)."""
        try:
            return TrustList.from_pem(self.tsa_roots_path.read_bytes())
        except FileNotFoundError:
            return None
        except ContentError as exc:
            raise HomeError(f"{self.tsa_roots_path}: {exc}") from None

    @property
    def audit_path(self) -> Path:
        return self.home / "audit.db"

    @property
    def audit_head_path(self) -> Path:
        """The newest signed checkpoint, kept outside the trail to detect truncation."""
        return self.home / "audit-head.json"

    @property
    def audit_key_path(self) -> Path:
        """The audit key's public half (PEM); the private half never leaves the token."""
        return self.home / "audit-key.pem"

    def head_sink(self) -> HeadSink | None:
        """The audit heads' append-only sink, when one is set."""
        if self.audit_sink is None:
            return None
        from cryptography.hazmat.primitives import serialization

        try:
            public = serialization.load_pem_public_key(self.audit_key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise HomeError(f"cannot read the audit key {self.audit_key_path}: {exc}") from None
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return HeadSink(self.audit_sink, instance_name(der))

    def read_secret(self, name: str) -> bytes:
        path = self.secrets_dir / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise HomeError(f"secret {name!r} missing from {self.secrets_dir}") from None

    def document_cipher(self) -> DocumentCipher:
        return DocumentCipher(self.read_secret("document-key"))

    # The backends are imported when chosen, so an embedded gateway never loads the
    # PostgreSQL drivers.
    def open_registry(self) -> Registry:
        """The registry these settings name (the SQLite file by default)."""
        if self.database_kind == "postgresql":
            from sealgate.verify.postgres import PostgresRegistry

            return PostgresRegistry(self.database_url, self.document_cipher())
        from sealgate.verify.sqlite import SqliteRegistry

        return SqliteRegistry(self.sqlite_path, self.document_cipher())

    def open_directory(self) -> Directory:
        """The directory of seals and clients, in the registry's database."""
        if self.database_kind == "postgresql":
            from sealgate.verify.postgres import PostgresDirectory

            return PostgresDirectory(self.database_url)
        from sealgate.verify.sqlite import SqliteDirectory

        return SqliteDirectory(self.sqlite_path)

    def migrate_database(self) -> int:
        """Bring the database's schema up to date; returns its version."""
        if self.database_kind == "postgresql":
            from sealgate.verify.postgres import migrate as migrate_postgres

            return migrate_postgres(self.database_url)
        from sealgate.verify.sqlite import migrate as migrate_sqlite

        return migrate_sqlite(self.sqlite_path)

    def keystore_config(self) -> KeystoreConfig:
        if self.backend == "soft":
            return KeystoreConfig(backend="soft", directory=self.home / "soft-keys")
        pin = os.environ.get("SEALGATE_PKCS11_PIN") or self.read_secret("token-pin").decode()
        return dataclasses.replace(self.keystore_config_without_pin(), pin=pin)

    def root_keystore_config(self, pin: str) -> KeystoreConfig:
        """The city root's keystore: its own token (or, soft backend, its own directory),
        opened only by the provisioning commands that are given its PIN."""
        if self.backend == "soft":
            return KeystoreConfig(backend="soft", directory=self.home / "soft-root-keys")
        gateway = self.keystore_config_without_pin()
        return KeystoreConfig(
            backend="pkcs11",
            module=gateway.module,
            token_label=self.root_token_label,
            pin=pin,
            softhsm2_conf=gateway.softhsm2_conf,
        )

    def keystore_config_without_pin(self) -> KeystoreConfig:
        conf = self.home / "softhsm" / "softhsm2.conf"
        if conf.exists():
            follow_moved_tokens(conf)
        return KeystoreConfig(
            backend="pkcs11",
            module=self.pkcs11_module,
            token_label=self.token_label,
            softhsm2_conf=str(conf) if conf.exists() else "",
        )


def tighten_home(home: Path) -> None:
    """Make a home's files its owner's alone (0600, folders 0700): homes made before
    sealgate set its umask had registry.db, audit.db and config.toml readable by all."""
    if not (home / CONFIG_NAME).is_file():
        return
    for path in [home, *home.rglob("*")]:
        if path.is_symlink():
            continue
        mode = 0o700 if path.is_dir() else 0o600
        try:
            if path.stat().st_mode & 0o777 & ~mode:
                path.chmod(mode)
        except OSError:
            continue  # not ours to change (a mounted token store): left as it is


def write_secret(home: Path, name: str, value: bytes | None = None) -> bytes:
    """Create a secret file readable by the owner only; random 32 bytes by default."""
    directory = home / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = secrets.token_bytes(32) if value is None else value
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return data
