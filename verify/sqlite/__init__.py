"""The embedded backend: the registry and directory on one SQLite file.

:mod:`.schema` holds the migrations, :mod:`.registry` the registry (group commit, reader
threads), :mod:`.directory` the seals and clients.
"""

from sealgate.verify.sqlite.directory import SqliteDirectory
from sealgate.verify.sqlite.registry import GroupCommitWriter, SqliteRegistry
from sealgate.verify.sqlite.schema import MIGRATIONS, migrate

__all__ = ["MIGRATIONS", "GroupCommitWriter", "SqliteDirectory", "SqliteRegistry", "migrate"]
