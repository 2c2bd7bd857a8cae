"""Errors on the REST side: the HTTP status of each gRPC code, and the JSON error body.

The gateway answers a failed call with ``google.rpc.Status`` as JSON (``code``, ``message``,
``details`` with ``field_violations`` or precondition ``violations``), whether Envoy's
transcoder produced it or the event stream did. The HTTP status is Envoy's mapping of the
gRPC code, except FAILED_PRECONDITION: 412 (a stale plan, with the changed fields in the
body) instead of Envoy's 400, so a client can tell "fix your input" from "re-plan".
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 - registers the detail types for JSON

from alethia.errors import AlethiaError
from alethia.rpc.status import to_status_proto

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status a REST client gets for a gRPC code."""
    return HTTP_STATUS.get(code, 500)


def error_body(err: AlethiaError) -> dict[str, Any]:
    """The JSON error body: ``google.rpc.Status`` in the proto3 JSON mapping."""
    return json_format.MessageToDict(  # type: ignore[no-any-return]
        to_status_proto(err), preserving_proto_field_name=True
    )
