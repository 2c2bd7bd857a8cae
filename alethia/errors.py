"""The one error model of the pipeline.

Domain code raises a subclass of :class:`AlethiaError`; each carries its gRPC status code
and structured details. ``alethia.rpc.status`` is the single place that turns them into
``google.rpc.Status`` on the wire (and back on the client). Anything that is not an
``AlethiaError`` becomes ``INTERNAL`` without leaking its message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field, named by its path (``databases[1].engine``)."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


@dataclass(frozen=True)
class PreconditionViolation:
    """One failed precondition (``google.rpc.PreconditionFailure.Violation``)."""

    type: str
    subject: str
    description: str


@dataclass
class AlethiaError(Exception):
    """Base of every domain error; ``code`` is the gRPC status it maps to."""

    message: str
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    violations: list[FieldViolation] = field(default_factory=list)
    preconditions: list[PreconditionViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """One human line per problem, for the CLI (field first, as users scan for it)."""
        if self.violations:
            return [str(v) for v in self.violations]
        if self.preconditions:
            return [self.message, *(f"{p.subject}: {p.description}" for p in self.preconditions)]
        return [self.message]


class InvalidArgument(AlethiaError):
    """Bad input. Always lists every violation at once; nothing was written."""

    def __init__(self, violations: Iterable[FieldViolation], message: str | None = None) -> None:
        vs = list(violations)
        msg = message or "invalid argument: " + "; ".join(str(v) for v in vs)
        super().__init__(msg, grpc.StatusCode.INVALID_ARGUMENT, vs)

    @classmethod
    def one(cls, field_path: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field_path, description)])


class NotFound(AlethiaError):
    def __init__(self, message: str) -> None:
        super().__init__(message, grpc.StatusCode.NOT_FOUND)


class AlreadyExists(AlethiaError):
    """The name is taken; ``violations`` name the fields that collide (and the owner)."""

    def __init__(self, message: str, violations: Iterable[FieldViolation] = ()) -> None:
        super().__init__(message, grpc.StatusCode.ALREADY_EXISTS, list(violations))


class Aborted(AlethiaError):
    """A concurrent writer won (optimistic concurrency); re-read and retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, grpc.StatusCode.ABORTED)


class FailedPrecondition(AlethiaError):
    def __init__(self, message: str, preconditions: Iterable[PreconditionViolation] = ()) -> None:
        super().__init__(message, grpc.StatusCode.FAILED_PRECONDITION, [], list(preconditions))


class PermissionDenied(AlethiaError):
    def __init__(self, message: str) -> None:
        super().__init__(message, grpc.StatusCode.PERMISSION_DENIED)


class Unauthenticated(AlethiaError):
    def __init__(self, message: str = "missing or invalid service credentials") -> None:
        super().__init__(message, grpc.StatusCode.UNAUTHENTICATED)


class Unavailable(AlethiaError):
    """A dependency (database, NATS, S3, another service) cannot be reached right now."""

    def __init__(self, message: str) -> None:
        super().__init__(message, grpc.StatusCode.UNAVAILABLE)


class Internal(AlethiaError):
    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message, grpc.StatusCode.INTERNAL)


class Cancelled(AlethiaError):
    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message, grpc.StatusCode.CANCELLED)
