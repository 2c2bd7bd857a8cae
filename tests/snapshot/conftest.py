"""Fixtures of the snapshot tests: a migrated job store, and job rows made without a Spec.

Store-level tests (claims, FIFO, leases, outbox) insert jobs with a synthetic snapshot
through the store itself: what they test is the queue, not stage 1. Tests of freezing and
plan validation go through the real spec service (see test_service.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alethia.database import begin_write, create_engine, run_migrations, session_factory
from alethia.specs.v1 import specs_pb2
from services.snapshot import store
from services.snapshot.app import MIGRATIONS
from services.snapshot.events import dispatch_outbox_row, event_outbox_row, job_event
from services.snapshot.git_tokens import GitTokenSource
from services.snapshot.job_queue import JobQueue
from services.snapshot.jobs import JobType
from services.snapshot.snapshot import config_hash, workspace_key

Sessions = async_sessionmaker[AsyncSession]


class NoSpecs:
    """A SpecReader for store-level tests, which never read a Spec."""

    async def get_spec(self, spec_id: str) -> specs_pb2.Spec:
        raise AssertionError("store-level tests do not read Specs")

    async def close(self) -> None:
        return None


async def migrated_sessions(url: str) -> tuple[Sessions, Any]:
    await asyncio.to_thread(run_migrations, url, MIGRATIONS, store.VERSION_TABLE)
    engine = create_engine(url)
    return session_factory(engine), engine


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    """A migrated, empty job store (SQLite and Postgres)."""
    made, engine = await migrated_sessions(database_url)
    yield made
    await engine.dispose()


def make_queue(sessions: Sessions, **kwargs: Any) -> JobQueue:
    tokens = kwargs.pop("tokens", GitTokenSource("", "tok-default-for-tests", "git.example.com"))
    return JobQueue(sessions, NoSpecs(), tokens, **kwargs)


def fake_snapshot(
    workspace: int | str, repo: str = "https://git.example.com/acme/apps.git"
) -> dict[str, Any]:
    return {
        "spec_id": f"spec-{workspace}",
        "zone_id": "zone-t",
        "project_name": f"p{workspace}",
        "environment": "dev",
        "region": "us-east-1",
        "repositories": [{"url": repo, "branch": "main", "path": "apps"}],
        "git_access_token": "",
    }


async def add_job(
    sessions: Sessions,
    workspace: int | str = 0,
    job_type: JobType = JobType.PLAN,
    max_attempts: int = 3,
    repo: str = "https://git.example.com/acme/apps.git",
    plan_job_id: str | None = None,
) -> dict[str, Any]:
    """Queue a job the way QueueJob does (row + queued event + dispatch), with a synthetic snapshot.

    ``plan_job_id``: a DEPLOY of that plan (same ``workspace``, so the same snapshot and hash)."""
    snap = fake_snapshot(workspace, repo)
    now = datetime.now(UTC)
    async with begin_write(sessions) as session:
        row = await store.insert_job(
            session,
            store.new_job_row(
                job_id=str(uuid.uuid4()),
                spec_id=snap["spec_id"],
                job_type=job_type,
                snapshot=snap,
                config_hash=config_hash(snap),
                spec_revision=1,
                workspace=workspace_key("zone-t", f"p{workspace}", "dev", "us-east-1"),
                plan_job_id=plan_job_id,
                idempotency_key=None,
                requested_by="test",
                max_attempts=max_attempts,
                now=now,
            ),
        )
        await store.add_outbox(
            session,
            [
                event_outbox_row(job_event(row, "queued"), now),
                dispatch_outbox_row(row["id"], row["workspace"], now),
            ],
        )
    return row


async def outbox_types(sessions: Sessions, job_id: str) -> list[str]:
    """Event types written for a job, in outbox order (dispatch rows left out)."""
    from sqlalchemy import select

    async with sessions() as session:
        res = await session.execute(
            select(store.job_outbox.c.subject)
            .where(store.job_outbox.c.job_id == job_id)
            .order_by(store.job_outbox.c.seq)
        )
        return [s.rsplit(".", 1)[1] for (s,) in res.all() if s.startswith("alethia.jobs.")]
