"""The MapperService servicer: protobuf <-> domain translation only.

Errors are raised as :mod:`alethia.errors` types; the shared interceptor turns them into
``INVALID_ARGUMENT`` with BadRequest field violations.
"""

from __future__ import annotations

import grpc

from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.mapping import providers
from alethia.mapping.render import render_tfvars

SERVICE_NAME = mapper_pb2.DESCRIPTOR.services_by_name["MapperService"].full_name


class MapperServicer(mapper_pb2_grpc.MapperServiceServicer):
    """Stateless: each call is a pure function of its request."""

    async def RenderTfvars(
        self, request: mapper_pb2.RenderTfvarsRequest, context: grpc.aio.ServicerContext
    ) -> mapper_pb2.RenderTfvarsResponse:
        rendered = render_tfvars(request.snapshot_json)
        return mapper_pb2.RenderTfvarsResponse(
            provider=rendered.provider, template=rendered.template, tfvars_json=rendered.tfvars_json
        )

    async def DescribeMapping(
        self, request: mapper_pb2.DescribeMappingRequest, context: grpc.aio.ServicerContext
    ) -> mapper_pb2.DescribeMappingResponse:
        mapping = providers.get(request.provider)
        return mapper_pb2.DescribeMappingResponse(
            provider=mapping.name,
            rows=[
                mapper_pb2.MappingRow(
                    spec_field=r.spec_field, variable=r.variable, type=r.type, description=r.description
                )
                for r in mapping.rows()
            ],
        )


def register(server: grpc.aio.Server) -> None:
    """Add the servicer to ``server``."""
    mapper_pb2_grpc.add_MapperServiceServicer_to_server(MapperServicer(), server)
