"""ExecutorService: what operators see of a runner (translation only)."""

from __future__ import annotations

import grpc

from alethia.executor.v1 import executor_pb2, executor_pb2_grpc
from services.executor.runner import Runner


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    def __init__(
        self, runner: Runner, terraform_version: str, terraform_path: str, drain_grace: float
    ) -> None:
        self.runner = runner
        self.terraform_version = terraform_version
        self.terraform_path = terraform_path
        self.drain_grace = drain_grace
        self._drain_task: object | None = None

    def _status(self) -> executor_pb2.RunnerStatus:
        st = self.runner.status()
        msg = executor_pb2.RunnerStatus(
            runner_id=st["runner_id"],
            concurrency=st["concurrency"],
            draining=st["draining"],
            jobs_completed=st["jobs_completed"],
            terraform_version=self.terraform_version,
            terraform_path=self.terraform_path,
        )
        for r in st["running"]:
            rj = msg.running.add(job_id=r["job_id"], type=r["type"], stage=r["stage"])
            rj.start_time.FromNanoseconds(int(r["start_time"] * 1e9))
        return msg

    async def GetStatus(
        self, request: executor_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerStatus:
        return self._status()

    async def Drain(
        self, request: executor_pb2.DrainRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerStatus:
        import asyncio

        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self.runner.drain(self.drain_grace))
            await asyncio.sleep(0)
        return self._status()
