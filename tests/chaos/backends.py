"""PostgreSQL and a Tansu broker of the chaos run's own: it restarts both, so it cannot
share the test run's (restarting those would break every other test's connections).

Each lives in a new temporary directory and is stopped and removed at the end, even on
failure; the database is created and migrated here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from notifier.common.migrate import apply_migrations
from notifier.devstack.postgres import TEST_SETTINGS, EmbeddedPostgres
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database


@dataclass(frozen=True, slots=True)
class Backends:
    postgres: EmbeddedPostgres
    broker: TansuBroker
    database_url: str


@contextmanager
def private_backends(work_dir: Path) -> Iterator[Backends]:
    """A started PostgreSQL (with a migrated database) and broker; both stopped after."""
    # Made directly in the temp directory: under root the server runs as another user,
    # who must be able to enter every parent.
    data_dir = Path(tempfile.mkdtemp(prefix="notifier-chaos-pg-"))
    try:
        with (
            EmbeddedPostgres(data_dir, settings=TEST_SETTINGS) as postgres,
            TansuBroker(log_path=work_dir / "tansu.log", die_with_parent=True) as broker,
            created_database(postgres.dsn) as database_url,
        ):
            apply_migrations(database_url, MIGRATIONS_DIR)
            yield Backends(postgres, broker, database_url)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
