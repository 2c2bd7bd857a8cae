"""The OpenAPI 3 document of the gateway's REST routes, generated from the protos.

Input: a ``FileDescriptorSet`` with source info (``make gen`` builds it with protoc), so
the ``google.api.http`` rules give the routes and the proto comments give the
descriptions. Output: a plain dict, deterministic for the same protos (``make gen``
writes it to ``alethia/gateway/openapi.json``; ``make gen-check`` fails when it is stale).

Bodies follow the proto3 JSON mapping as the gateway emits it: snake_case field names
(camelCase is accepted on input too), 64-bit integers as strings, enums by name,
``Timestamp`` as RFC 3339. Errors are ``google.rpc.Status`` with its details expanded.
"""

from __future__ import annotations

import re
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto

# Only our own services are documented; google.* files are there for their types.
SERVICE_PREFIX = "alethia."
STATUS = "google.rpc.Status"
TITLE = "Alethia provisioning API"
VERSION = "v1"

_SCALARS: dict[int, dict[str, Any]] = {
    FDP.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FDP.TYPE_FLOAT: {"type": "number", "format": "float"},
    FDP.TYPE_INT64: {"type": "string", "format": "int64"},
    FDP.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FDP.TYPE_SINT64: {"type": "string", "format": "int64"},
    FDP.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FDP.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FDP.TYPE_INT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FDP.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    FDP.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FDP.TYPE_BOOL: {"type": "boolean"},
    FDP.TYPE_STRING: {"type": "string"},
    FDP.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# Well-known types have their own JSON forms.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
        "description": "A message of the type named by @type, its fields inline.",
    },
}

_HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_VAR = re.compile(r"\{([a-zA-Z0-9_.]+)(=[^}]*)?\}")


class _Index:
    """Messages, enums and comments of a descriptor set, by full name."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[tuple[str, ...], str] = {}
        self.files = list(fds.file)
        for f in fds.file:
            comments = {
                tuple(loc.path): _comment(loc.leading_comments, loc.trailing_comments)
                for loc in f.source_code_info.location
            }
            for i, msg in enumerate(f.message_type):
                self._message(f"{f.package}.{msg.name}", msg, (4, i), comments, f.name)
            for i, enum in enumerate(f.enum_type):
                self.enums[f"{f.package}.{enum.name}"] = enum
                self._comment(f"{f.package}.{enum.name}", comments.get((5, i)))
            for si, svc in enumerate(f.service):
                self._comment(f"{f.package}.{svc.name}", comments.get((6, si)))
                for mi, method in enumerate(svc.method):
                    text = comments.get((6, si, 2, mi))
                    if text:
                        self.comments[(f"{f.package}.{svc.name}", method.name)] = text

    def _comment(self, name: str, text: str | None) -> None:
        if text:
            self.comments[(name,)] = text

    def _message(
        self,
        name: str,
        msg: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
        file: str,
    ) -> None:
        self.messages[name] = msg
        self._comment(name, comments.get(path))
        for fi, fld in enumerate(msg.field):
            text = comments.get((*path, 2, fi))
            if text:
                self.comments[(name, fld.name)] = text
        for ni, nested in enumerate(msg.nested_type):
            self._message(f"{name}.{nested.name}", nested, (*path, 3, ni), comments, file)
        for ei, enum in enumerate(msg.enum_type):
            self.enums[f"{name}.{enum.name}"] = enum
            self._comment(f"{name}.{enum.name}", comments.get((*path, 4, ei)))

    def describe(self, *key: str) -> str:
        return self.comments.get(tuple(key), "")


def _comment(leading: str, trailing: str) -> str:
    text = " ".join(part.strip() for part in (leading, trailing) if part.strip())
    return " ".join(text.split())


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


class _Builder:
    def __init__(self, index: _Index) -> None:
        self.index = index
        self.schemas: dict[str, Any] = {}

    def field_schema(self, fld: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        type_name = fld.type_name.lstrip(".")
        if fld.type == FDP.TYPE_MESSAGE:
            entry = self.index.messages.get(type_name)
            if entry is not None and entry.options.map_entry:
                value = next(f for f in entry.field if f.name == "value")
                return {"type": "object", "additionalProperties": self.field_schema(value)}
            item = self.message(type_name)
        elif fld.type == FDP.TYPE_ENUM:
            item = self.enum(type_name)
        else:
            item = dict(_SCALARS[fld.type])
        if fld.label == FDP.LABEL_REPEATED:
            return {"type": "array", "items": item}
        return item

    def enum(self, name: str) -> dict[str, Any]:
        if name not in self.schemas:
            enum = self.index.enums[name]
            schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in enum.value]}
            text = self.index.describe(name)
            if text:
                schema["description"] = text
            self.schemas[name] = schema
        return _ref(name)

    def message(self, name: str) -> dict[str, Any]:
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursive messages refer to themselves
            msg = self.index.messages[name]
            props: dict[str, Any] = {}
            for fld in msg.field:
                schema = self.field_schema(fld)
                text = self.index.describe(name, fld.name)
                if text:
                    # $ref siblings are ignored by OpenAPI 3.0: wrap to keep the description.
                    schema = {"allOf": [schema], "description": text} if "$ref" in schema else schema
                    schema.setdefault("description", text)
                props[fld.name] = schema
            out: dict[str, Any] = {"type": "object", "properties": props}
            text = self.index.describe(name)
            if text:
                out["description"] = text
            self.schemas[name] = out
        return _ref(name)


def _http_rule(method: descriptor_pb2.MethodDescriptorProto) -> http_pb2.HttpRule | None:
    if not method.options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
    return rule


def _doc_var(var: str) -> str:
    # `/api/specs/{spec.id}` and `/api/specs/{id}` are one path to OpenAPI tools: name the
    # variable by its last segment so the document has one path item per URL shape.
    return var.rsplit(".", 1)[-1]


def _query_params(
    builder: _Builder, request: str, skip_top: set[str], prefix: str = ""
) -> list[dict[str, Any]]:
    """Scalar, enum and repeated-scalar fields of the request that travel as query parameters."""
    params: list[dict[str, Any]] = []
    msg = builder.index.messages[request]
    for fld in msg.field:
        name = prefix + fld.name
        if name in skip_top:
            continue
        if fld.type == FDP.TYPE_MESSAGE:
            continue  # nested messages are not sent as query parameters by our routes
        param: dict[str, Any] = {"name": name, "in": "query", "schema": builder.field_schema(fld)}
        text = builder.index.describe(request, fld.name)
        if text:
            param["description"] = text
        params.append(param)
    return params


def _operation(
    builder: _Builder,
    service: str,
    method: descriptor_pb2.MethodDescriptorProto,
    verb: str,
    template: str,
    body: str,
) -> dict[str, Any]:
    index = builder.index
    request = method.input_type.lstrip(".")
    response = method.output_type.lstrip(".")
    op_id = f"{service.rsplit('.', 1)[-1]}_{method.name}"
    op: dict[str, Any] = {
        "operationId": op_id,
        "tags": [service],
        "summary": method.name,
        "description": index.describe(service, method.name) or f"gRPC `{service}/{method.name}`.",
    }
    params: list[dict[str, Any]] = []
    path_vars = [m.group(1) for m in _VAR.finditer(template)]
    for var in path_vars:
        param = {"name": _doc_var(var), "in": "path", "required": True, "schema": {"type": "string"}}
        if "." in var:
            param["description"] = f"Sets `{var}` of the request."
        params.append(param)
    top_in_path = {v.split(".")[0] for v in path_vars}
    if body == "*":
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": builder.message(request)}},
        }
    else:
        skip = set(top_in_path)
        if body:
            skip.add(body)
            msg = index.messages[request]
            fld = next(f for f in msg.field if f.name == body)
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": builder.field_schema(fld)}},
            }
        params += _query_params(builder, request, skip)
    if params:
        op["parameters"] = params
    op["responses"] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": builder.message(response)}}},
        "default": {"$ref": "#/components/responses/Error"},
    }
    if service.endswith(".RunnerService"):
        op["security"] = [{"runnerToken": []}]
    return op


def _events_path(builder: _Builder) -> dict[str, Any]:
    event = builder.message("alethia.events.v1.JobEvent")
    return {
        "get": {
            "operationId": "Events_StreamJobEvents",
            "tags": ["alethia.snapshot.v1.SnapshotService"],
            "summary": "StreamJobEvents",
            "description": (
                "The job's events as server-sent events: one `data:` line (a JobEvent as JSON) per "
                "event, with `id:` set to its event_id; the stream ends after the job's terminal "
                "event. Send `Last-Event-ID` to resume after that event. The token may come as "
                "`Authorization: Bearer` or, for browsers' EventSource, as `?access_token=`."
            ),
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "include_logs",
                    "in": "query",
                    "schema": {"type": "boolean", "default": True},
                    "description": "Also stream Terraform's log lines (type `log`).",
                },
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                {"name": "access_token", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "text/event-stream; each `data:` line is one JobEvent.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}, "x-event": event}},
                },
                "default": {"$ref": "#/components/responses/Error"},
            },
        }
    }


def openapi_document(descriptor_set: bytes) -> dict[str, Any]:
    """The OpenAPI 3.0 document for every ``google.api.http`` rule of our services."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    index = _Index(fds)
    builder = _Builder(index)
    paths: dict[str, dict[str, Any]] = {}
    for f in index.files:
        if not f.package.startswith(SERVICE_PREFIX):
            continue
        for svc in f.service:
            service = f"{f.package}.{svc.name}"
            for method in svc.method:
                rule = _http_rule(method)
                if rule is None:
                    continue
                for r in [rule, *rule.additional_bindings]:
                    verb = r.WhichOneof("pattern")
                    if verb not in _HTTP_METHODS:
                        continue
                    template = getattr(r, verb)
                    doc_path = _VAR.sub(lambda m: "{" + _doc_var(m.group(1)) + "}", template)
                    paths.setdefault(doc_path, {})[verb] = _operation(
                        builder, service, method, verb, template, r.body
                    )
    paths["/api/jobs/{id}/events"] = _events_path(builder)
    paths["/api/openapi.json"] = {
        "get": {
            "operationId": "Gateway_OpenApi",
            "tags": ["gateway"],
            "summary": "This document.",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {}}}},
        }
    }
    builder.message(STATUS)
    for detail in ("google.rpc.BadRequest", "google.rpc.PreconditionFailure"):
        builder.message(detail)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "REST/JSON routes of the Alethia gateway (Envoy's gRPC-JSON transcoder in front of "
                "the gRPC services). Generated from the protos by `make gen`; see docs/api.md."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "runnerToken": {"type": "http", "scheme": "bearer"},
            },
            "responses": {
                "Error": {
                    "description": (
                        "google.rpc.Status: `code` is the gRPC code, `details` holds "
                        "google.rpc.BadRequest (field_violations) or google.rpc.PreconditionFailure."
                    ),
                    "content": {"application/json": {"schema": _ref(STATUS)}},
                }
            },
            "schemas": dict(sorted(builder.schemas.items())),
        },
    }
