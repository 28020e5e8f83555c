"""Applies the SQL files in migrations/ that a database does not have yet.

Files are named NNNN_name.sql and applied in order, each in its own transaction,
under a PostgreSQL advisory lock so that two replicas starting at once are safe.
Applied files are recorded with a checksum; editing one afterwards is an error.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from notifier.common.db import redact_dsn

log = logging.getLogger(__name__)

# Any constant works as long as nothing else in the database uses it; this one
# is "notifier" in ASCII, truncated to fit a bigint.
_LOCK_KEY = 0x6E6F746966696572
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """The migrations on disk and in the database disagree, or one failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """Reads NNNN_name.sql files in version order; rejects stray or duplicate names."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, path.name, path.read_text())
    return [found[v] for v in sorted(found)]


def apply_migrations(dsn: str, directory: Path) -> list[str]:
    """Applies the missing migrations and returns the names of those applied."""
    migrations = load_migrations(directory)
    conn = psycopg2.connect(dsn, application_name="notifier-migrate")
    try:
        with conn.cursor() as cur:
            # Session-level lock: held across the per-file transactions below.
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            conn.commit()
            try:
                return _apply_locked(conn, migrations)
            finally:
                conn.rollback()
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
                conn.commit()
    finally:
        conn.close()


def _apply_locked(conn: psycopg2.extensions.connection, migrations: list[Migration]) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        cur.execute("SELECT version, name, checksum FROM schema_migrations")
        applied = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    conn.commit()

    on_disk = {m.version for m in migrations}
    unknown = sorted(set(applied) - on_disk)
    if unknown:
        raise MigrationError(
            f"the database has migrations this code does not know: {', '.join(unknown)}; "
            "is an older release running against a newer schema?"
        )
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise MigrationError(
                    f"{migration.name} was changed after it was applied (as {name}); "
                    "migrations are append-only: add a new file instead"
                )
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            conn.commit()
        except psycopg2.Error as exc:
            conn.rollback()
            raise MigrationError(f"{migration.name} failed: {exc.pgerror or exc}") from exc
        log.info("migration applied", extra={"migration": migration.name})
        done.append(migration.name)
    return done


def main() -> None:
    """`notifier-migrate`: applies missing migrations to DATABASE_URL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--dir", type=Path, default=Path(os.environ.get("MIGRATIONS_DIR", "migrations"))
    )
    args = parser.parse_args()
    if not args.database_url:
        sys.exit("notifier-migrate: set DATABASE_URL or pass --database-url")
    try:
        done = apply_migrations(args.database_url, args.dir)
    except (MigrationError, psycopg2.OperationalError) as exc:
        sys.exit(f"notifier-migrate: {redact_dsn(args.database_url)}: {exc}")
    print(f"applied {len(done)} migration(s): {', '.join(done) or 'none missing'}")
