"""bench/tansu_fetch.py refuses arguments it cannot measure with, before starting a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tansu_fetch.py"


@pytest.mark.parametrize(
    "argv",
    [
        ["--window", "0"],
        ["--rate", "-1"],
        ["--seconds", "0"],
        ["--seconds", "10", "--window", "20"],
        ["--rate", "many"],
    ],
)
def test_bad_arguments_are_refused_with_the_reason(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "tansu_fetch.py: error:" in result.stderr
    assert "==" not in result.stdout  # no run started
