"""Runs the services as child processes and restarts one that dies, as Kubernetes would.

Children inherit stdout/stderr, so their JSON log lines reach the terminal as
they are, unless their spec names a log file. Stopping sends SIGTERM in reverse
start order and SIGKILL after the grace period. Tests may hold one child (no
restart), signal it, wait for its exit and release it again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from notifier.common.lifecycle import StopFlag
from notifier.devstack.processes import parent_death_signal

log = logging.getLogger(__name__)

# Waits between restarts of a process that keeps dying: fast at first, then
# slower, like Kubernetes' CrashLoopBackOff (capped lower, this is a laptop).
_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# A process that stayed up this long is healthy again: its backoff resets.
_STABLE_AFTER_SECONDS = 30.0

# What every service process gets unless the caller's environment says otherwise; the
# services' images set the same (services/*/Dockerfile). glibc gives threads that allocate
# at once arenas of their own, up to 8 per CPU, and memory freed in one arena is not reused
# by another: with dozens of threads (gRPC and sender workers, librdkafka's) RSS creeps.
# Two arenas halved the sender's growth in a 6-minute soak at 60 msg/s (+2.6 % against
# +4.9 %) at the same CPU per message (docs/benchmarks.md, "glibc's malloc arenas").
SERVICE_ENV_DEFAULTS: Mapping[str, str] = {"MALLOC_ARENA_MAX": "2"}


def service_environment(own: Mapping[str, str]) -> dict[str, str]:
    """A service process's environment: SERVICE_ENV_DEFAULTS, then ours, then its own."""
    return {**SERVICE_ENV_DEFAULTS, **os.environ, **own}


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    # stdout and stderr appended to this file (kept across restarts); None inherits ours.
    log_path: Path | None = None


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None
    held: bool = False


class Supervisor:
    def __init__(self, stop: StopFlag, grace_seconds: float = 25.0) -> None:
        self._stop = stop
        self._grace = grace_seconds
        self._children: dict[str, _Child] = {}
        # `run` watches from its own thread while tests hold, signal and release.
        self._lock = threading.Lock()

    def start(self, spec: ProcessSpec) -> None:
        child = _Child(spec)
        with self._lock:
            self._children[spec.name] = child
            self._launch(child)

    def pid(self, name: str) -> int | None:
        process = self._children[name].process
        return process.pid if process and process.poll() is None else None

    def restarts(self, name: str) -> int:
        return self._children[name].restarts

    def hold(self, name: str) -> None:
        """Stops restarting `name` when it exits, until `release`; it keeps running."""
        with self._lock:
            child = self._children[name]
            child.held = True
            child.restart_at = None

    def release(self, name: str) -> None:
        """Restarts `name` at once if it exited while held; watches it as before."""
        with self._lock:
            child = self._children[name]
            child.held = False
            if not _alive(child):
                child.restarts += 1
                self._launch(child)

    def send_signal(self, name: str, sig: signal.Signals) -> int:
        """Sends `sig` to the running child `name`; returns its pid."""
        with self._lock:
            process = self._children[name].process
            if process is None or process.poll() is not None:
                raise ProcessLookupError(f"{name} is not running")
            process.send_signal(sig)
            return process.pid

    def wait_exit(self, name: str, timeout: float) -> int:
        """Waits for the child `name` to exit and returns its exit code (hold it first,
        or it may be restarted); raises subprocess.TimeoutExpired after `timeout`."""
        process = self._children[name].process
        if process is None:
            raise ProcessLookupError(f"{name} was never started")
        return process.wait(timeout=timeout)

    def run(self, poll_interval: float = 0.25) -> None:
        """Watches the children until the stop flag is set, restarting any that exit."""
        while not self._stop.wait(poll_interval):
            now = time.monotonic()
            with self._lock:
                for child in self._children.values():
                    self._watch(child, now)

    def _watch(self, child: _Child, now: float) -> None:
        if child.held:
            return
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
        env = service_environment(child.spec.env)
        log_path = child.spec.log_path
        # Children get SIGTERM if the supervisor dies, even by SIGKILL: no orphans
        # holding ports after a crash.
        if log_path is None:
            child.process = subprocess.Popen(
                list(child.spec.argv), env=env, preexec_fn=parent_death_signal()
            )
        else:
            # The child keeps its own copy of the descriptor; ours closes right away.
            with log_path.open("ab") as log_file:
                child.process = subprocess.Popen(
                    list(child.spec.argv),
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=parent_death_signal(),
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
