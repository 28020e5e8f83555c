"""Renders the chart once per CI values file for the whole session (helm is the slow part)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.charts.chart_support import Rendered, render


@pytest.fixture(scope="session")
def rendered() -> Callable[[Path], Rendered]:
    cache: dict[Path, Rendered] = {}

    def get(values_file: Path) -> Rendered:
        if values_file not in cache:
            cache[values_file] = render(values_file)
        return cache[values_file]

    return get
