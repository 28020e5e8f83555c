"""The error types that decide what happens next, wherever they are raised.

InvalidRequest/NotFound/AlreadyExists/FailedPrecondition are the caller's to fix;
TransientError means retry with backoff; PermanentError means record FAILED with
its cause and move on. Anything else is a bug.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error this service raises on purpose."""


class InvalidRequest(NotifierError):
    """The request is malformed; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(NotifierError):
    """What the request names does not exist."""


class AlreadyExists(NotifierError):
    """The request conflicts with something stored earlier (e.g. an idempotency key)."""


class FailedPrecondition(NotifierError):
    """The request is well-formed but the system's state forbids it now."""


class TransientError(NotifierError):
    """A dependency is unavailable; the same call may succeed later."""


class PermanentError(NotifierError):
    """Retrying cannot help; `code` keeps the provider's error code when there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
