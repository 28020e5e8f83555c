"""The one table from our error types to gRPC status codes."""

from __future__ import annotations

import grpc
import pytest

from notifier.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    NotifierError,
    PermanentError,
    TransientError,
)
from notifier.gateway.interceptors import status_code_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidRequest("phone_number", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (TransientError("x"), grpc.StatusCode.UNAVAILABLE),
        (PermanentError("x"), grpc.StatusCode.INTERNAL),
        (NotifierError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_code(error: NotifierError, code: grpc.StatusCode) -> None:
    assert status_code_for(error) == code
