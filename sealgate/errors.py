"""The root of every error sealgate raises on purpose.

Every package's own root derives from :class:`Error`, so a caller (the command line, the
HTTP layer, an embedding program) catches the product's failures in one ``except``::

    Error
    ├── ConfigError                    a setting, secret or argument that cannot be used
    │   └── tsa.home.TsaHomeError      the development TSA's home
    ├── hsm.errors.HsmError            the token, its keys, the signing process
    │   └── hsm.frames.ProtocolError   a malformed frame from a child process
    ├── crypto.errors.CryptoError      sealing and checking CMS proofs
    ├── verify.code.CodeError          verification codes
    ├── verify.holders.InvalidHolderId
    ├── verify.lifecycle.LifecycleError status changes a proof's state does not allow
    ├── verify.registry.RegistryError  the proof registry
    ├── verify.directory.DirectoryError seals, offices and clients
    ├── verify.audit.AuditError        the audit trail's integrity
    ├── verify.at_rest.DocumentCorrupted
    ├── cache.codec.CacheDataError, cache.redis_url.RedisUrlError
    ├── gateway.home.HomeError, gateway.server.ServeError, gateway.cli.CliError
    ├── gateway.audit.AuditUnavailable the trail cannot be written now
    ├── gateway.timestamping.TsaUnavailable the TSA did not stamp: nothing sealed
    ├── tsa.authority.RequestRejected  a timestamp request the TSA refuses (in the protocol)
    ├── gateway.throttle.Throttled
    ├── gateway.requests.InvalidRequest
    └── gateway.problems.Problem       an answer already shaped for HTTP

Errors of libraries are translated into these where they enter (python-pkcs11's in
``hsm.pkcs11``, sqlite3's and asyncpg's in the registry backends, redis-py's in
``cache.redis_tier``).
"""

from __future__ import annotations

__all__ = ["ConfigError", "Error"]


class Error(Exception):
    """A failure sealgate names: its message is meant for the operator or the client."""


class ConfigError(Error, ValueError):
    """A setting, secret or argument the operator gave cannot be used as it is."""
