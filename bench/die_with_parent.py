"""Runs a command that gets SIGTERM when the benchmark runner dies, even by SIGKILL.

    python bench/die_with_parent.py PARENT_PID COMMAND [ARGS...]

Sets PR_SET_PDEATHSIG (Linux), then execs COMMAND in place (same pid). The runner starts
it without a `preexec_fn` on purpose: forking a process that has used grpc runs grpc's
fork handlers, which can hang for good while grpc shuts down (grpc/grpc#37259); the
vfork that subprocess uses without a `preexec_fn` runs none.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    parent, argv = int(sys.argv[1]), sys.argv[2:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the runner died before prctl took effect
            raise SystemExit(1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
