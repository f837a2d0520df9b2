"""The city-scale backend: the registry and directory on one PostgreSQL database.

:mod:`.schema` holds the migrations and connection settings, :mod:`.registry` the
registry (asyncpg, group commit), :mod:`.directory` the seals and clients (psycopg).
"""

from sealgate.verify.postgres.directory import PostgresDirectory
from sealgate.verify.postgres.registry import PostgresRegistry
from sealgate.verify.postgres.schema import (
    MIGRATIONS,
    SchemaOutdated,
    is_postgres_url,
    migrate,
    redacted,
    schema_version,
)

__all__ = [
    "MIGRATIONS",
    "PostgresDirectory",
    "PostgresRegistry",
    "SchemaOutdated",
    "is_postgres_url",
    "migrate",
    "redacted",
    "schema_version",
]
