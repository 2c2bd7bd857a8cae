"""The CLI's gRPC client: one method per call it makes, errors decoded to domain errors.

Every failed call becomes an :class:`~alethia.errors.AlethiaError` through
:func:`alethia.rpc.status.from_rpc_error` (field violations and preconditions kept); an
unreachable service becomes ``Unavailable`` naming the service, its address and where
the address came from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import grpc

from alethia.cli.target import Target, resolve
from alethia.rpc.client import connect
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc

if TYPE_CHECKING:
    from alethia.events.v1 import events_pb2
    from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc

# The snapshot service's modules are imported by the methods that call it: the Spec
# commands (``spec list --json`` above all) never load them. alethia.errors likewise
# only where a call failed.
UNARY_TIMEOUT = 60.0
PAGE_SIZE = 200

T = TypeVar("T")


def requested_by() -> str:
    import getpass  # only commands that queue a job say who asked

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class Api:
    """Async access to the specs and snapshot services of one stack."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            address = self.target.addresses.get(service)
            if not address:
                from alethia.errors import Unavailable

                raise Unavailable(f"no address for the {service} service")
            self._channels[service] = connect(address, self.target.token or None)
        return self._channels[service]

    @property
    def specs(self) -> specs_pb2_grpc.SpecServiceStub:
        return specs_pb2_grpc.SpecServiceStub(self._channel("specs"))

    @property
    def snapshot(self) -> snapshot_pb2_grpc.SnapshotServiceStub:
        from alethia.snapshot.v1 import snapshot_pb2_grpc

        return snapshot_pb2_grpc.SnapshotServiceStub(self._channel("snapshot"))

    @contextlib.contextmanager
    def _errors(self, service: str) -> Iterator[None]:
        try:
            yield
        except grpc.RpcError as exc:
            # Imported on failure only: the status decoder pulls in google.rpc and grpc_status.
            from alethia.errors import Unavailable
            from alethia.rpc.status import from_rpc_error

            err = from_rpc_error(exc)
            if err.code == grpc.StatusCode.UNAVAILABLE:
                raise Unavailable(
                    f"cannot reach the {service} service at {self.target.where(service)}: {err.message}"
                ) from None
            raise err from None

    # ------------------------------------------------------------ identities
    async def create_identity(self, identity: specs_pb2.CloudIdentity) -> specs_pb2.CloudIdentity:
        with self._errors("specs"):
            return await self.specs.CreateCloudIdentity(
                specs_pb2.CreateCloudIdentityRequest(identity=identity), timeout=UNARY_TIMEOUT
            )

    async def list_identities(self) -> list[specs_pb2.CloudIdentity]:
        out: list[specs_pb2.CloudIdentity] = []
        token = ""
        with self._errors("specs"):
            while True:
                resp = await self.specs.ListCloudIdentities(
                    specs_pb2.ListCloudIdentitiesRequest(page_size=PAGE_SIZE, page_token=token),
                    timeout=UNARY_TIMEOUT,
                )
                out.extend(resp.identities)
                token = resp.next_page_token
                if not token:
                    return out

    # ------------------------------------------------------------ specs
    async def create_spec(self, spec: specs_pb2.Spec) -> specs_pb2.Spec:
        with self._errors("specs"):
            return await self.specs.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec), timeout=UNARY_TIMEOUT)

    async def get_spec(self, spec_id: str) -> specs_pb2.Spec:
        with self._errors("specs"):
            return await self.specs.GetSpec(specs_pb2.GetSpecRequest(id=spec_id), timeout=UNARY_TIMEOUT)

    async def update_spec(self, spec: specs_pb2.Spec, expected_revision: int) -> specs_pb2.Spec:
        with self._errors("specs"):
            return await self.specs.UpdateSpec(
                specs_pb2.UpdateSpecRequest(spec=spec, expected_revision=expected_revision),
                timeout=UNARY_TIMEOUT,
            )

    async def list_specs(self, zone_id: str = "") -> list[specs_pb2.Spec]:
        out: list[specs_pb2.Spec] = []
        token = ""
        with self._errors("specs"):
            while True:
                resp = await self.specs.ListSpecs(
                    specs_pb2.ListSpecsRequest(page_size=PAGE_SIZE, page_token=token, zone_id=zone_id),
                    timeout=UNARY_TIMEOUT,
                )
                out.extend(resp.specs)
                token = resp.next_page_token
                if not token:
                    return out

    async def delete_spec(
        self, spec_id: str, expected_revision: int = 0, abandon: bool = False
    ) -> specs_pb2.DeleteSpecResponse:
        with self._errors("specs"):
            return await self.specs.DeleteSpec(  # type: ignore[no-any-return]
                specs_pb2.DeleteSpecRequest(id=spec_id, expected_revision=expected_revision, abandon=abandon),
                timeout=UNARY_TIMEOUT,
            )

    # ------------------------------------------------------------ snapshot and jobs
    async def build_snapshot(self, spec_id: str) -> snapshot_pb2.BuildSnapshotResponse:
        from alethia.snapshot.v1 import snapshot_pb2

        with self._errors("snapshot"):
            return await self.snapshot.BuildSnapshot(
                snapshot_pb2.BuildSnapshotRequest(spec_id=spec_id), timeout=UNARY_TIMEOUT
            )

    async def queue_job(
        self, spec_id: str, job_type: int, plan_job_id: str = "", lock_id: str = ""
    ) -> snapshot_pb2.Job:
        import uuid

        from alethia.snapshot.v1 import snapshot_pb2

        # One key per CLI invocation: gRPC's own retries of this request return the same job.
        request = snapshot_pb2.QueueJobRequest(
            spec_id=spec_id,
            type=job_type,  # type: ignore[arg-type]
            plan_job_id=plan_job_id,
            lock_id=lock_id,
            idempotency_key=f"cli-{uuid.uuid4().hex}",
            requested_by=requested_by(),
        )
        with self._errors("snapshot"):
            return await self.snapshot.QueueJob(request, timeout=UNARY_TIMEOUT)

    async def get_job(self, job_id: str) -> snapshot_pb2.Job:
        from alethia.snapshot.v1 import snapshot_pb2

        with self._errors("snapshot"):
            return await self.snapshot.GetJob(snapshot_pb2.GetJobRequest(id=job_id), timeout=UNARY_TIMEOUT)

    async def list_jobs(self, spec_id: str = "") -> list[snapshot_pb2.Job]:
        from alethia.snapshot.v1 import snapshot_pb2

        out: list[snapshot_pb2.Job] = []
        token = ""
        with self._errors("snapshot"):
            while True:
                resp = await self.snapshot.ListJobs(
                    snapshot_pb2.ListJobsRequest(spec_id=spec_id, page_size=PAGE_SIZE, page_token=token),
                    timeout=UNARY_TIMEOUT,
                )
                out.extend(resp.jobs)
                token = resp.next_page_token
                if not token:
                    return out

    async def cancel_job(self, job_id: str) -> snapshot_pb2.Job:
        from alethia.snapshot.v1 import snapshot_pb2

        with self._errors("snapshot"):
            return await self.snapshot.CancelJob(
                snapshot_pb2.CancelJobRequest(id=job_id), timeout=UNARY_TIMEOUT
            )

    async def watch_job(self, job_id: str, include_logs: bool = True) -> AsyncIterator[events_pb2.JobEvent]:
        """The job's events from its start, then live; ends after the terminal event."""
        from alethia.snapshot.v1 import snapshot_pb2

        call = self.snapshot.WatchJob(snapshot_pb2.WatchJobRequest(id=job_id, include_logs=include_logs))
        try:
            with self._errors("snapshot"):
                async for event in call:
                    yield event
        finally:
            call.cancel()


def with_api(stack_dir: str | None, work: Callable[[Api], Awaitable[T]]) -> T:
    """Find the stack, open an :class:`Api`, run ``work`` on it, close the channels."""
    target = resolve(stack_dir)

    async def main() -> T:
        async with Api(target) as api:
            return await work(api)

    return asyncio.run(main())


__all__ = ["Api", "requested_by", "with_api"]
