"""Registers the backend fixtures (tests/fixtures/) and tears them down on SIGTERM too."""

from __future__ import annotations

import signal
from types import FrameType

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.kafka"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # Python dies on SIGTERM (a CI timeout, `timeout make test`) without running fixture
    # teardown or atexit, which would leave the embedded PostgreSQL running. Turned into
    # Ctrl-C, pytest stops the run and tears everything down.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
