"""The environment the dev stack's supervisor gives each service process: its defaults
(SERVICE_ENV_DEFAULTS, as the images set them) unless the caller's environment or the
process's own spec says otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from notifier.common.lifecycle import StopFlag
from notifier.devstack.processes import poll_until
from notifier.devstack.supervisor import SERVICE_ENV_DEFAULTS, ProcessSpec, Supervisor

# Writes the variable as the child sees it, then waits to be stopped.
_CHILD = (
    "import os, sys, time; "
    "open(sys.argv[1], 'w').write(os.environ.get('MALLOC_ARENA_MAX', '<unset>')); "
    "time.sleep(60)"
)


def _seen_by_child(tmp_path: Path, spec_env: dict[str, str]) -> str:
    out = tmp_path / "env.txt"
    supervisor = Supervisor(StopFlag(), grace_seconds=2)
    argv = [sys.executable, "-c", _CHILD, str(out)]
    supervisor.start(ProcessSpec("child", argv, spec_env))
    try:
        assert poll_until(lambda: out.exists() and out.read_text() != "", timeout=10)
        return out.read_text()
    finally:
        supervisor.stop_all()


def test_a_service_gets_two_malloc_arenas_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert SERVICE_ENV_DEFAULTS["MALLOC_ARENA_MAX"] == "2"
    assert _seen_by_child(tmp_path, {}) == "2"


def test_the_callers_environment_wins_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert _seen_by_child(tmp_path, {}) == "8"


def test_the_process_spec_wins_over_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert _seen_by_child(tmp_path, {"MALLOC_ARENA_MAX": "1"}) == "1"
