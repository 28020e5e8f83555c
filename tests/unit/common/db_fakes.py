"""A stand-in for a psycopg2 connection whose statements fail with a given error."""

from __future__ import annotations

from typing import Any

LOST = "server closed the connection unexpectedly"


class FakeCursor:
    def __init__(self, error: Exception | None) -> None:
        self._error = error

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: Any = None) -> None:
        if self._error is not None:
            raise self._error


class FakeConnection:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.closed = 0
        self.autocommit = False
        self.rolled_back = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.error)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        self.closed = 1
