"""The sealgate home: config, secrets, the registry file and (SoftHSM2) the token.

Layout::

    HOME/config.toml        settings (no secrets)
    HOME/secrets/           0700; token PINs, the code-tag and holder-key secrets
    HOME/registry.db        the SQLite registry (embedded default)
    HOME/softhsm/           SoftHSM2 token store and its softhsm2.conf
    HOME/soft-keys/         the development-only soft keystore
    HOME/root.pem           the city root CA certificate (public)

Settings resolve as flag > environment (``SEALGATE_*``) > config file > default.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hsm.keystore import KeystoreConfig
from verify.at_rest import DocumentCipher
from verify.registry import Registry
from verify.sqlite import SqliteRegistry

DEFAULT_HOME = Path(".sealgate")
CONFIG_NAME = "config.toml"


class HomeError(Exception):
    """The home is missing, incomplete or misconfigured."""


def resolve_home(flag: str | None) -> Path:
    return Path(flag or os.environ.get("SEALGATE_HOME") or DEFAULT_HOME).absolute()


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

    @property
    def sqlite_path(self) -> Path:
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            raise HomeError(
                f"unsupported database URL scheme in {self.database_url.split(':')[0]!r}"
            )
        return Path(self.database_url[len(prefix) :])

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def root_certificate_path(self) -> Path:
        return self.home / "root.pem"

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

    def read_secret(self, name: str) -> bytes:
        path = self.secrets_dir / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise HomeError(f"secret {name!r} missing from {self.secrets_dir}") from None

    def document_cipher(self) -> DocumentCipher:
        return DocumentCipher(self.read_secret("document-key"))

    def open_registry(self) -> Registry:
        """The registry these settings name (the SQLite file by default)."""
        return SqliteRegistry(self.sqlite_path, self.document_cipher())

    def keystore_config(self) -> KeystoreConfig:
        if self.backend == "soft":
            return KeystoreConfig(backend="soft", directory=self.home / "soft-keys")
        pin = os.environ.get("SEALGATE_PKCS11_PIN") or self.read_secret("token-pin").decode()
        conf = self.home / "softhsm" / "softhsm2.conf"
        return KeystoreConfig(
            backend="pkcs11",
            module=self.pkcs11_module,
            token_label=self.token_label,
            pin=pin,
            softhsm2_conf=str(conf) if conf.exists() else "",
        )


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


def write_config(home: Path, values: dict[str, str]) -> None:
    lines = ["# sealgate settings; secrets live in secrets/, never here"]
    for key, value in values.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key} = "{escaped}"')
    (home / CONFIG_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_settings(
    home: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Settings:
    path = home / CONFIG_NAME
    try:
        with path.open("rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise HomeError(f"{home} is not a sealgate home (run 'sealgate init')") from None
    except tomllib.TOMLDecodeError as exc:
        raise HomeError(f"{path}: {exc}") from None

    def pick(flag: str | None, env: str, key: str, default: str | None) -> str | None:
        value = flag or os.environ.get(env) or config.get(key) or default
        return str(value) if value is not None else None

    db = pick(database_url, "SEALGATE_DATABASE_URL", "database_url", None)
    return Settings(
        home=home,
        region=str(config.get("region", "430900")),
        city=str(config.get("city", "")),
        backend=str(config.get("backend", "pkcs11")),
        pkcs11_module=pick(None, "SEALGATE_PKCS11_MODULE", "pkcs11_module", "") or "",
        token_label=str(config.get("token_label", "sealgate")),
        database_url=db or f"sqlite:///{home / 'registry.db'}",
        redis_url=pick(redis_url, "SEALGATE_REDIS_URL", "redis_url", None),
    )
