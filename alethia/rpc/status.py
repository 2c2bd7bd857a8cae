"""The single translation between :mod:`alethia.errors` and ``google.rpc.Status``.

Servers call :func:`to_status`; clients call :func:`from_rpc_error` to get the same
domain error back (with its field violations) from an ``AioRpcError``.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from alethia.errors import (
    AlethiaError,
    FieldViolation,
    PreconditionViolation,
)

# The status travels in trailers, and clients refuse metadata over 8 KiB by default
# (RESOURCE_EXHAUSTED instead of the error): keep message and details well under that.
MAX_MESSAGE_CHARS = 1024
MAX_VIOLATIONS_BYTES = 4096


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encoded_size(ch: str) -> int:
    # grpc-message is percent-encoded: printable ASCII but '%' travels as is, any other
    # character as %XX per UTF-8 byte (an "é" costs 6 bytes, not 1).
    return 1 if " " <= ch <= "~" and ch != "%" else 3 * len(ch.encode("utf-8", "surrogatepass"))


def _clip_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut so that its percent-encoded form stays within ``limit`` bytes."""
    size = 0
    for i, ch in enumerate(text):
        size += _encoded_size(ch)
        if size > limit - 3:
            return text[:i] + "..."
    return text


def _bounded_violations(
    violations: list[FieldViolation],
) -> list[error_details_pb2.BadRequest.FieldViolation]:
    out: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for i, v in enumerate(violations):
        fv = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field, 256), description=_clip(v.description, 512)
        )
        size += fv.ByteSize() + 4
        if size > MAX_VIOLATIONS_BYTES:
            out.append(
                error_details_pb2.BadRequest.FieldViolation(
                    field="", description=f"... and {len(violations) - i} more violations"
                )
            )
            break
        out.append(fv)
    return out


def to_status_proto(err: AlethiaError) -> status_pb2.Status:
    """A domain error as ``google.rpc.Status`` with BadRequest/PreconditionFailure details."""
    details: list[any_pb2.Any] = []
    if err.violations:
        br = error_details_pb2.BadRequest(field_violations=_bounded_violations(err.violations))
        packed = any_pb2.Any()
        packed.Pack(br)
        details.append(packed)
    if err.preconditions:
        pf = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=p.type, subject=p.subject, description=p.description
                )
                for p in err.preconditions
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(pf)
        details.append(packed)
    # Trailers are metadata: the message is bounded by its encoded size, not its length.
    return status_pb2.Status(code=err.code.value[0], message=_clip_message(err.message), details=details)


def to_status(err: AlethiaError) -> grpc.Status:
    """Encode a domain error as a ``grpc.Status`` with BadRequest/PreconditionFailure details."""
    return rpc_status.to_status(to_status_proto(err))


def internal_status() -> grpc.Status:
    """The status for an unexpected exception: no internals leak to the caller."""
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def from_rpc_error(exc: grpc.RpcError) -> AlethiaError:
    """Decode a failed call into the domain error it carries (violations included)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    violations: list[FieldViolation] = []
    preconditions: list[PreconditionViolation] = []
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except Exception:  # malformed trailers: fall back to code + message
        status = None
    if status is not None:
        message = status.message
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                detail.Unpack(br)
                violations += [FieldViolation(v.field, v.description) for v in br.field_violations]
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                pf = error_details_pb2.PreconditionFailure()
                detail.Unpack(pf)
                preconditions += [
                    PreconditionViolation(v.type, v.subject, v.description) for v in pf.violations
                ]
    if code == grpc.StatusCode.UNAVAILABLE and not message:
        message = "service unavailable"
    return AlethiaError(message or code.name, _CODES.get(code.value[0], code), violations, preconditions)
