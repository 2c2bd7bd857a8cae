"""The SpecService servicer: protobuf <-> dict translation only; behaviour is in the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from alethia.errors import InvalidArgument, NotFound
from alethia.rpc.auth import current_caller
from alethia.specfile import cloud_identity_from_dict, cloud_identity_to_dict, spec_from_dict, spec_to_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from services.specs.catalog import SpecCatalog
from services.specs.validation import show

SERVICE_NAME = specs_pb2.DESCRIPTOR.services_by_name["SpecService"].full_name
_TIMES = ("create_time", "update_time")


def _with_times(msg: Any, data: dict[str, Any]) -> Any:
    for key in _TIMES:
        value = data.get(key)
        if isinstance(value, datetime):
            getattr(msg, key).FromDatetime(value)
    return msg


def spec_message(data: dict[str, Any]) -> specs_pb2.Spec:
    """A stored Spec dict (read back, or built from the rows just written) as the protobuf message.

    Such a dict is whole: every component item carries every field, its Structs and nested
    messages included, so the message constructor takes it as it is (nested dicts, lists,
    Structs) and builds what the strict conversion of a Spec file builds, at a quarter of
    its CPU (GetSpec, CreateSpec). A value the constructor refuses goes to that conversion,
    which decides as it always did.
    """
    fields = {k: v for k, v in data.items() if k not in _TIMES and v is not None}
    try:
        msg = specs_pb2.Spec(**fields)
    except (TypeError, ValueError):
        msg = spec_from_dict(fields)
    return _with_times(msg, data)  # type: ignore[no-any-return]


def identity_message(data: dict[str, Any]) -> specs_pb2.CloudIdentity:
    """A stored identity dict as the protobuf message."""
    return _with_times(  # type: ignore[no-any-return]
        cloud_identity_from_dict({k: v for k, v in data.items() if k not in _TIMES}), data
    )


def _spec_input(request: Any) -> dict[str, Any]:
    if not request.HasField("spec"):
        raise InvalidArgument.one("spec", "a Spec is required")
    data = spec_to_dict(request.spec, include_output_only=False)
    data["id"] = request.spec.id
    return data


class SpecServicer(specs_pb2_grpc.SpecServiceServicer):
    """Translates each RPC to a :class:`SpecCatalog` call and back.

    Zones: a caller sees and changes only the Specs of its zones (``current_caller``); a
    Spec of another zone is NOT_FOUND (its existence is not told), creating one there is
    PERMISSION_DENIED. Cloud identities hold references only: every caller may read them,
    creating one needs a caller of every zone.
    """

    def __init__(self, catalog: SpecCatalog) -> None:
        self.catalog = catalog

    async def CreateCloudIdentity(
        self, request: specs_pb2.CreateCloudIdentityRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.CloudIdentity:
        current_caller().require_admin("creating a cloud identity")
        data = cloud_identity_to_dict(request.identity)
        for key in ("id", *_TIMES):
            data.pop(key, None)
        return identity_message(await self.catalog.create_identity(data))

    async def GetCloudIdentity(
        self, request: specs_pb2.GetCloudIdentityRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.CloudIdentity:
        return identity_message(await self.catalog.get_identity(request.id))

    async def ListCloudIdentities(
        self, request: specs_pb2.ListCloudIdentitiesRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.ListCloudIdentitiesResponse:
        items, token = await self.catalog.list_identities(request.page_size, request.page_token)
        return specs_pb2.ListCloudIdentitiesResponse(
            identities=[identity_message(i) for i in items], next_page_token=token
        )

    async def CreateSpec(
        self, request: specs_pb2.CreateSpecRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.Spec:
        data = _spec_input(request)
        data.pop("id")  # output only: the service picks the id
        if data.get("zone_id"):  # an empty zone is the validator's to report
            current_caller().require_zone(str(data["zone_id"]), "spec.zone_id")
        return spec_message(await self.catalog.create_spec(data, request.spec))

    async def GetSpec(
        self, request: specs_pb2.GetSpecRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.Spec:
        spec = await self.catalog.get_spec(request.id)
        current_caller().visible(str(spec.get("zone_id", "")), f"spec {request.id}")
        return spec_message(spec)

    async def UpdateSpec(
        self, request: specs_pb2.UpdateSpecRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.Spec:
        data = _spec_input(request)
        await self._visible(str(data.get("id") or ""))
        return spec_message(await self.catalog.update_spec(data, request.expected_revision))

    async def ListSpecs(
        self, request: specs_pb2.ListSpecsRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.ListSpecsResponse:
        zones = current_caller().zone_filter()
        items, token = await self.catalog.list_specs(
            request.page_size, request.page_token, request.zone_id, zones
        )
        return specs_pb2.ListSpecsResponse(specs=[spec_message(s) for s in items], next_page_token=token)

    async def DeleteSpec(
        self, request: specs_pb2.DeleteSpecRequest, context: grpc.aio.ServicerContext
    ) -> specs_pb2.DeleteSpecResponse:
        await self._visible(request.id)
        outcome = await self.catalog.delete_spec(request.id, request.expected_revision, request.abandon)
        return specs_pb2.DeleteSpecResponse(
            abandoned=outcome.abandoned,
            workspace=outcome.workspace,
            state_bucket=outcome.state_bucket,
            state_key=outcome.state_key,
            last_deploy_job_id=outcome.last_deploy_job_id,
        )

    async def _visible(self, spec_id: str) -> None:
        """NOT_FOUND for a Spec outside the caller's zones (before anything is written)."""
        caller = current_caller()
        if caller.all_zones or not spec_id:
            return
        zone = await self.catalog.spec_zone(spec_id)
        if zone is None or not caller.sees(zone):
            raise NotFound(f"spec {show(spec_id)} not found")
