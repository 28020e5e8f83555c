"""Runs the services as child processes and restarts one that dies, as Kubernetes would.

Children inherit stdout/stderr, so their JSON log lines reach the terminal as
they are. Stopping sends SIGTERM in reverse start order and SIGKILL after the
grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from notifier.common.lifecycle import StopFlag
from notifier.devstack.processes import parent_death_signal

log = logging.getLogger(__name__)

# Waits between restarts of a process that keeps dying: fast at first, then
# slower, like Kubernetes' CrashLoopBackOff (capped lower, this is a laptop).
_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# A process that stayed up this long is healthy again: its backoff resets.
_STABLE_AFTER_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(self, stop: StopFlag, grace_seconds: float = 25.0) -> None:
        self._stop = stop
        self._grace = grace_seconds
        self._children: dict[str, _Child] = {}

    def start(self, spec: ProcessSpec) -> None:
        child = _Child(spec)
        self._children[spec.name] = child
        self._launch(child)

    def pid(self, name: str) -> int | None:
        process = self._children[name].process
        return process.pid if process and process.poll() is None else None

    def restarts(self, name: str) -> int:
        return self._children[name].restarts

    def run(self, poll_interval: float = 0.25) -> None:
        """Watches the children until the stop flag is set, restarting any that exit."""
        while not self._stop.wait(poll_interval):
            now = time.monotonic()
            for child in self._children.values():
                self._watch(child, now)

    def _watch(self, child: _Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                self._launch(child)
            return
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            if now - child.started_at > _STABLE_AFTER_SECONDS:
                child.failures_in_a_row = 0
            return
        delay = _BACKOFF_SECONDS[min(child.failures_in_a_row, len(_BACKOFF_SECONDS) - 1)]
        child.failures_in_a_row += 1
        child.restart_at = now + delay
        log.warning(
            "process exited; restarting",
            extra={
                "child": child.spec.name,
                "exit_code": code,
                "signal": signal.Signals(-code).name if code < 0 else None,
                "restart_in_seconds": delay,
                "restarts": child.restarts,
            },
        )

    def _launch(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env}
        # Children get SIGTERM if the supervisor dies, even by SIGKILL: no orphans
        # holding ports after a crash.
        child.process = subprocess.Popen(
            list(child.spec.argv), env=env, preexec_fn=parent_death_signal()
        )
        child.started_at = time.monotonic()
        log.info("process started", extra={"child": child.spec.name, "pid": child.process.pid})

    def stop_all(self) -> None:
        """SIGTERM in reverse start order, then SIGKILL whatever outlives the grace period."""
        running = [c for c in reversed(list(self._children.values())) if _alive(c)]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process ignored SIGTERM; killing", extra={"child": child.spec.name})
                child.process.kill()
                child.process.wait()
            log.info(
                "process stopped",
                extra={"child": child.spec.name, "exit_code": child.process.returncode},
            )


def _alive(child: _Child) -> bool:
    return child.process is not None and child.process.poll() is None
