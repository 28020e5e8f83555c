"""Subprocess plumbing shared by the embedded backends: bounded runs, log tails, stopping.

Owns how a backend command is run, waited for and reported when it fails; what the
commands are belongs to `postgres` and `tansu`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BackendError(RuntimeError):
    """A backend did not start, stop or answer; the message says what it printed."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """An unprivileged account to run a command as (only root can switch to it)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    output: str


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    what: str,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Completed:
    """Runs a command to completion within `timeout` seconds; stdout and stderr merged.

    Output goes to a temporary file rather than a pipe: a command that leaves a
    daemon behind (pg_ctl start) would otherwise keep the pipe open and make us
    wait for the daemon instead of the command.
    """
    argv = [str(arg) for arg in args]
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd="/",
                env=dict(env) if env is not None else None,
                check=False,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except subprocess.TimeoutExpired:
            out.seek(0)
            raise BackendError(
                f"{what}: no result after {timeout:.0f}s: {' '.join(argv)}\n{out.read()}"
            ) from None
        except OSError as exc:  # missing binary, no permission to run it or to switch user
            raise BackendError(f"{what}: cannot run {argv[0]}: {exc}") from exc
        out.seek(0)
        output = out.read()
    if check and proc.returncode != 0:
        raise BackendError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{output}")
    return Completed(proc.returncode, output)


def tail(path: Path, lines: int = 30, start: int = 0) -> str:
    """The last `lines` lines of a log file after byte offset `start` (at most 64 KiB)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(start, size - 65536))
            data = log.read()
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if not text:
        return f"({path} is empty)"
    return "\n".join(text.splitlines()[-lines:])


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Calls `check` until it returns True or `timeout` seconds have passed.

    Returns whether it succeeded; the caller words the error. Waits on an Event
    rather than sleeping, and never past the deadline.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if check():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pause.wait(min(interval, remaining))


def terminate(
    proc: subprocess.Popen[bytes], timeout: float, first: signal.Signals = signal.SIGTERM
) -> None:
    """Sends `first` (SIGTERM), then SIGKILL if the process is still there after `timeout` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(first)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


_PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` that makes a child get SIGTERM when we die, even by SIGKILL.

    Linux only (None elsewhere). The kernel ties this to the *thread* that started
    the child: start such children from a thread that lives as long as they should.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    parent = os.getpid()

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_signal
