"""The runner loop: take dispatched work, claim, heartbeat, run, complete.

Invariants:
- Work is only ever taken through ``RunnerService.ClaimJob`` (atomic in the database);
  NATS dispatch messages (durable consumer ``runners`` shared by every runner) are only
  wake-ups, acked on receipt. A ClaimJob poll every few seconds is the safety net, so a
  lost or early-acked dispatch never strands a job.
- At most ``concurrency`` jobs run at once; a dispatch is fetched only when a slot is free
  so an idle runner elsewhere can take it.
- A running job heartbeats every lease/3. A heartbeat answering ``cancel_requested``
  interrupts Terraform (SIGINT, grace, kill); a lost lease stops the job without
  completing it (someone else owns it now).
- Drain (SIGTERM or the Drain RPC): no new claims; running jobs finish within the grace
  period, then are cancelled cleanly and completed CANCELLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from alethia.events.v1 import events_pb2
from alethia.messaging import DISPATCH_STREAM, DISPATCH_SUBJECT, RUNNERS_CONSUMER
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from services.executor.jobs import ExecutorContext, JobExecution
from services.executor.terraform import CancelToken

log = logging.getLogger(__name__)

_LEASE_LOST = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED,
               grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip


@dataclass
class RunningJob:
    job: snapshot_pb2.Job
    lease: snapshot_pb2.Lease
    execution: JobExecution
    cancel: CancelToken
    task: asyncio.Task[None] | None = None
    lease_lost: bool = False
    # monotonic time the lease runs out unless renewed (claim or last successful heartbeat)
    lease_deadline: float = 0.0
    # CompleteAndClaimJob answered "nothing claimable": no refill ClaimJob right after it.
    nothing_next: bool = False


class Runner:
    """Claims and runs jobs until drained."""

    def __init__(
        self,
        ctx: ExecutorContext,
        runner_stub: snapshot_pb2_grpc.RunnerServiceStub,
        runner_id: str,
        concurrency: int = 2,
        lease_seconds: int = 30,
        poll_seconds: float = 5.0,
        js: Any = None,
        rpc_timeout: float = 15.0,
    ) -> None:
        self.ctx = ctx
        self.stub = runner_stub
        self.runner_id = runner_id
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.js = js
        self.rpc_timeout = rpc_timeout
        self.running: dict[str, RunningJob] = {}
        self.jobs_completed = 0
        self.draining = False
        self._slot_freed = asyncio.Event()
        self._fill_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._refill: asyncio.Task[None] | None = None
        self._idle = True  # the loop waits for work (safe to cancel), not inside a claim
        self._complete_and_claim = True  # until the snapshot service answers UNIMPLEMENTED
        # Test hook: called with each job id once CompleteJob has been answered.
        self.on_complete: Callable[[str, snapshot_pb2.Job | None], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name=f"runner-{self.runner_id}")

    async def drain(self, grace_seconds: float) -> None:
        """Stop claiming; let jobs finish for ``grace_seconds``, then cancel what is left.

        The claim loop is never cancelled in the middle of a ClaimJob (a claim the runner
        never started would strand the job until its lease expired): it is cancelled only
        while it waits for work, and a claim in flight finishes and its job is drained too.
        """
        self.draining = True
        self._slot_freed.set()
        if self._loop_task is not None and not self._loop_task.done():
            if self._idle:
                self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        async with self._fill_lock:  # no claim in flight from a completion's refill either
            pass
        tasks = [rj.task for rj in self.running.values() if rj.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            if pending:
                for rj in list(self.running.values()):
                    rj.cancel.cancel("the runner is shutting down")
                await asyncio.wait(pending)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    @property
    def free_slots(self) -> int:
        return self.concurrency - len(self.running)

    # ------------------------------------------------------------------ taking work

    async def _subscribe(self) -> Any:
        if self.js is None:
            return None
        if self._sub is None:
            self._sub = await self.js.pull_subscribe(
                DISPATCH_SUBJECT, durable=RUNNERS_CONSUMER, stream=DISPATCH_STREAM
            )
        return self._sub

    async def _loop(self) -> None:
        while not self.draining:
            try:
                self._idle = True
                if self.free_slots <= 0:
                    self._slot_freed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._slot_freed.wait(), self.poll_seconds)
                    continue
                woken_by = await self._wait_for_dispatch()
                self._idle = False
                await self.fill(woken_by)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runner loop error; retrying")
                await asyncio.sleep(min(self.poll_seconds, 1.0))
        self._idle = True

    async def _wait_for_dispatch(self) -> int | None:
        """Wait for a dispatch message or the poll interval: how many messages came (acked),
        or None after the poll interval (or without NATS), when anything may be claimable."""
        try:
            sub = await self._subscribe()
        except Exception as exc:  # NATS down: polling alone keeps us going
            log.debug("dispatch subscription unavailable: %s", exc)
            sub = None
        if sub is None:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), self.poll_seconds)
            return None
        try:
            msgs = await sub.fetch(batch=max(self.free_slots, 1), timeout=self.poll_seconds)
        except TimeoutError:
            return None
        except Exception as exc:
            log.debug("dispatch fetch failed: %s", exc)
            await asyncio.sleep(min(self.poll_seconds, 1.0))
            return None
        for m in msgs:
            with contextlib.suppress(Exception):
                await m.ack()
        return len(msgs) or None

    async def fill(self, limit: int | None = None) -> int:
        """Claim until nothing is claimable, every slot is busy or ``limit`` jobs are claimed
        (woken by n dispatch messages, n jobs were queued: no ClaimJob that can only come back
        empty after them; the poll, the refill after a job and the next wake-up see the rest).
        Returns how many were claimed."""
        claimed = 0
        async with self._fill_lock:
            while not self.draining and self.free_slots > 0 and (limit is None or claimed < limit):
                try:
                    resp = await self.stub.ClaimJob(
                        snapshot_pb2.ClaimJobRequest(
                            runner_id=self.runner_id, lease_seconds=self.lease_seconds
                        ),
                        timeout=self.rpc_timeout,
                    )
                except grpc.aio.AioRpcError as exc:
                    log.warning("ClaimJob failed: %s", from_rpc_error(exc))
                    break
                if not resp.claimed:
                    break
                self._start_job(resp.job, resp.lease, list(resp.plan_artifacts))
                claimed += 1
        return claimed

    def _start_job(
        self,
        job: snapshot_pb2.Job,
        lease: snapshot_pb2.Lease,
        plan_artifacts: list[events_pb2.Artifact] | None = None,
    ) -> None:
        cancel = CancelToken()

        async def git_token() -> str:
            try:
                resp = await self.stub.GetGitToken(
                    snapshot_pb2.GetGitTokenRequest(job_id=job.id, lease_token=lease.token),
                    timeout=self.rpc_timeout,
                )
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc) from None
            return str(resp.token)

        execution = JobExecution(
            self.ctx,
            job,
            lease.attempt or job.attempt,
            cancel,
            get_git_token=git_token,
            plan_artifacts=plan_artifacts or [],
        )
        rj = RunningJob(job, lease, execution, cancel, lease_deadline=time.monotonic() + self.lease_seconds)
        self.running[job.id] = rj
        rj.task = asyncio.create_task(self._run_job(rj), name=f"job-{job.id}")
        log.info("runner %s claimed %s job %s (attempt %s)", self.runner_id,
                 events_pb2.JobType.Name(job.type), job.id, lease.attempt)  # fmt: skip

    # ------------------------------------------------------------------ one job

    async def _run_job(self, rj: RunningJob) -> None:
        hb = asyncio.create_task(self._heartbeat(rj), name=f"heartbeat-{rj.job.id}")
        completed: snapshot_pb2.Job | None = None
        try:
            result = await rj.execution.run()
            if rj.lease_lost:
                log.warning("job %s: lease lost; not completing (another runner owns it)", rj.job.id)
            else:
                completed = await self._complete(rj, result)
        except Exception:
            log.exception("job %s: runner failure", rj.job.id)
        finally:
            hb.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hb
            self.running.pop(rj.job.id, None)
            self.jobs_completed += 1
            self._slot_freed.set()
            if self.on_complete is not None:
                self.on_complete(rj.job.id, completed)
        if not self.draining and not rj.nothing_next:
            # A finished job may unblock the next one in its workspace: claim right away.
            self._refill = asyncio.create_task(self._fill_quietly())

    async def _fill_quietly(self) -> None:
        try:
            await self.fill()
        except Exception:
            log.exception("claim after completion failed")

    async def _complete(self, rj: RunningJob, result: snapshot_pb2.JobResult) -> snapshot_pb2.Job | None:
        # Retried for as long as the lease may still be ours: giving up earlier would let the
        # lease lapse and an applied DEPLOY be rescued as ERRORED while we hold its result.
        # A retry of a completion that did commit is answered alike.
        delay = 0.5
        give_up = time.monotonic() + max(3.0 * self.lease_seconds, 120.0)  # never loop forever
        first = True
        while True:
            try:
                if first and self._complete_and_claim and not self.draining:
                    first = False
                    return await self._complete_and_claim_next(rj, result)
                # A retry never claims: a claim whose answer was lost would strand its job.
                return await self.stub.CompleteJob(
                    snapshot_pb2.CompleteJobRequest(lease=rj.lease, result=result), timeout=self.rpc_timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED and self._complete_and_claim:
                    self._complete_and_claim = False  # an older snapshot service: two calls
                    continue
                err = from_rpc_error(exc)
                transient = exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                now = time.monotonic()
                if not transient or now + delay >= min(rj.lease_deadline, give_up):
                    log.error("CompleteJob for %s failed: %s", rj.job.id, err)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _complete_and_claim_next(
        self, rj: RunningJob, result: snapshot_pb2.JobResult
    ) -> snapshot_pb2.Job:
        """CompleteJob and the next ClaimJob in one call (this job's slot is the free one).

        Under the fill lock, as any claim: a drain waits for it, then drains the job it took.
        """
        async with self._fill_lock:
            resp = await self.stub.CompleteAndClaimJob(
                snapshot_pb2.CompleteAndClaimJobRequest(
                    lease=rj.lease,
                    result=result,
                    next=snapshot_pb2.ClaimJobRequest(
                        runner_id=self.runner_id, lease_seconds=self.lease_seconds
                    ),
                ),
                timeout=self.rpc_timeout,
            )
            if resp.next.claimed:
                # This job is over (committed): it leaves ``running`` before the next one enters,
                # so the runner never shows two jobs in one slot, nor two of one workspace.
                self.running.pop(rj.job.id, None)
                self._start_job(resp.next.job, resp.next.lease, list(resp.next.plan_artifacts))
            else:
                rj.nothing_next = True
        return resp.job

    async def _heartbeat(self, rj: RunningJob) -> None:
        interval = max(self.lease_seconds / 3.0, 0.5)
        reported_lock = ""
        retry = 0.0  # > 0 after a failed heartbeat: back off instead of calling again at once
        while True:
            if retry:
                await asyncio.sleep(retry)
            elif reported_lock:
                await asyncio.sleep(interval)
            else:
                # The state lock the apply took goes out at once, not a third of a lease later:
                # if this runner dies now, the rescue must be able to name it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rj.execution.lock_seen.wait(), interval)
            lock_id = rj.execution.state_lock_id
            try:
                resp = await self.stub.Heartbeat(
                    snapshot_pb2.HeartbeatRequest(lease=rj.lease, state_lock_id=lock_id),
                    timeout=max(interval, 2.0),
                )
                reported_lock = lock_id
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _LEASE_LOST:
                    rj.lease_lost = True
                    rj.cancel.cancel(f"lease lost: {from_rpc_error(exc)}")
                    return
                # Without this pause a set ``lock_seen`` made the loop call again at once: while the
                # snapshot service was down, fail-fast UNAVAILABLE answers spun the event loop (some
                # 10,000 calls in one outage) and starved the job's own Terraform and CompleteJob.
                retry = min(max(retry * 2, 0.25), interval)
                log.warning(
                    "heartbeat for %s failed: %s (next try in %.2fs)", rj.job.id, exc.code().name, retry
                )
                continue
            retry = 0.0
            rj.lease_deadline = time.monotonic() + self.lease_seconds
            if resp.cancel_requested:
                rj.cancel.cancel("cancel requested")

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {
            "runner_id": self.runner_id,
            "concurrency": self.concurrency,
            "draining": self.draining,
            "jobs_completed": self.jobs_completed,
            "running": [
                {
                    "job_id": rj.job.id,
                    "type": events_pb2.JobType.Name(rj.job.type),
                    "stage": rj.execution.stage,
                    "start_time": rj.execution.started,
                }
                for rj in self.running.values()
            ],
        }
