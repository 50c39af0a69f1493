"""The exceptions of mlmeta: one hierarchy under `mlmeta.Error`."""

from __future__ import annotations

from typing import Dict, Optional, Type

import grpc


class Error(Exception):
    """Any failure reported by mlmeta (the server's or the client's).

    `code` is the gRPC status name (``"NOT_FOUND"``, …) or ``None`` for
    errors the client found itself; `message` is the server's message,
    which names the field and the rule for bad input.
    """

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message if code is None else f"{code}: {message}")
        self.message = message
        self.code = code


class NotFound(Error):
    """NOT_FOUND: the named model, datablob, template or artifact does not exist."""


class AlreadyExists(Error):
    """ALREADY_EXISTS: a different record is stored under the name."""


class InvalidArgument(Error):
    """INVALID_ARGUMENT: the request broke a rule (the message names the field)."""


class FailedPrecondition(Error):
    """FAILED_PRECONDITION: e.g. a missing datablob, an ended run, a deleted record."""


class PermissionDenied(Error):
    """PERMISSION_DENIED: the token's scope or projects do not allow the call."""


class Unauthenticated(Error):
    """UNAUTHENTICATED: no token, or one the server does not know."""


class Unavailable(Error):
    """UNAVAILABLE: the server cannot be reached (retry later)."""


class DeadlineExceeded(Error):
    """DEADLINE_EXCEEDED: the call took longer than its timeout."""


class ResourceExhausted(Error):
    """RESOURCE_EXHAUSTED: a size limit, or the server is busy (retry with backoff)."""


class EpochsNotStored(Error):
    """Epochs logged on a run that the server did not store.

    Raised by `Run.flush` and on leaving a `with client.run(...)` block.
    `not_stored` counts them; `pending` of those were still waiting to be
    sent (the server was unreachable until the timeout), the others were
    refused (`reasons` holds the server's messages).
    """

    def __init__(self, message: str, not_stored: int, pending: int, reasons: "list[str]") -> None:
        super().__init__(message)
        self.not_stored = not_stored
        self.pending = pending
        self.reasons = reasons


_BY_CODE: Dict[grpc.StatusCode, Type[Error]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}

#: Codes after which the same call may succeed when repeated (every mlmeta
#: write is idempotent, so repeating is safe).
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


#: The names of `TRANSIENT` (as in `Error.code`).
TRANSIENT_NAMES = frozenset(c.name for c in TRANSIENT)


def status_code(err: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(err, "code", None)
    if callable(code):
        value = code()
        if isinstance(value, grpc.StatusCode):
            return value
    return grpc.StatusCode.UNKNOWN


def from_rpc_error(err: grpc.RpcError) -> Error:
    """The mlmeta exception for a failed gRPC call."""
    code = status_code(err)
    details = getattr(err, "details", None)
    message = str(details() if callable(details) else err) or code.name
    return _BY_CODE.get(code, Error)(message, code.name)


_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


def from_code(code: int, message: str) -> Error:
    """The mlmeta exception for a numeric gRPC status code (a `BatchError`)."""
    status = _BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(status, Error)(message or status.name, status.name)
