"""The Terraform state lock as the S3 backend keeps it (``use_lockfile``), read by the runner.

With ``use_lockfile`` the lock is the object ``<state key>.tflock`` in the state bucket,
JSON with ``ID``, ``Operation``, ``Info``, ``Who``, ``Version``, ``Created`` and ``Path``.
The runner reads it to say *which* lock (and which job) blocks a workspace, to report the
lock its own Terraform took (so a rescue can name it), and to release only the exact lock
a dead apply of the same job left behind. :func:`parse_lock` and the messages are pure.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from alethia.errors import Unavailable
from services.executor.artifacts import s3_client
from services.executor.workspace import S3Backend

LOCK_SUFFIX = ".tflock"
# Terraform's operation names in the lock info.
PLAN_OPERATION = "OperationTypePlan"
APPLY_OPERATION = "OperationTypeApply"


@dataclass(frozen=True)
class LockInfo:
    """One state lock: who took it, for what, when."""

    id: str
    operation: str = ""
    who: str = ""
    created: str = ""
    info: str = ""
    version: str = ""

    def describe(self) -> str:
        op = self.operation.removeprefix("OperationType").lower() or "unknown operation"
        return f"lock {self.id} ({op} by {self.who or 'unknown'} since {self.created or 'unknown'})"


def lock_key(state_key: str) -> str:
    """The lock object of a state object."""
    return state_key + LOCK_SUFFIX


def parse_lock(data: bytes) -> LockInfo | None:
    """The lock in a ``.tflock`` object, or None when it holds no lock ID."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("ID"), str) or not doc["ID"]:
        return None
    return LockInfo(
        id=doc["ID"],
        operation=str(doc.get("Operation") or ""),
        who=str(doc.get("Who") or ""),
        created=str(doc.get("Created") or ""),
        info=str(doc.get("Info") or ""),
        version=str(doc.get("Version") or ""),
    )


def unlock_command(spec_id: str, lock_id: str) -> str:
    """The exact command a person runs to release a stale lock through a runner."""
    return f"alethia unlock {spec_id} --lock-id {lock_id}"


def locked_message(state_key: str, lock: LockInfo, spec_id: str, holder: str) -> str:
    """Why a job cannot start: the state is locked, by which job, and how to release it."""
    by = f"by job {holder}" if holder else "by no job this service knows of (Terraform run by hand?)"
    return (
        f"the state {state_key} is locked {by}: {lock.describe()}. If that job is over (ERRORED, "
        "its runner gone), release the lock with "
        f"`{unlock_command(spec_id, lock.id)}`; otherwise wait for it to finish"
    )


class StateBucket:
    """Read access to the lock objects of the state bucket (never the state itself)."""

    def __init__(self, backend: S3Backend, attempts: int = 2) -> None:
        self.bucket = backend.bucket
        kwargs: dict[str, Any] = {
            "region_name": backend.region,
            "config": Config(
                retries={"max_attempts": attempts, "mode": "standard"},
                connect_timeout=3,
                read_timeout=10,
                s3={"addressing_style": "path"} if backend.endpoint else {},
            ),
        }
        if backend.endpoint:
            kwargs["endpoint_url"] = backend.endpoint
        if backend.access_key:
            kwargs["aws_access_key_id"] = backend.access_key
            kwargs["aws_secret_access_key"] = backend.secret_key
        self._client = s3_client(**kwargs)

    def _read(self, key: str) -> bytes | None:
        try:
            return bytes(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise Unavailable(f"reading s3://{self.bucket}/{key} failed: {code}") from exc
        except (BotoCoreError, OSError) as exc:
            raise Unavailable(f"reading s3://{self.bucket}/{key} failed: {exc}") from exc

    async def read_lock(self, state_key: str) -> LockInfo | None:
        """The lock held on ``state_key`` now, or None (``Unavailable`` when S3 does not answer)."""
        data = await asyncio.to_thread(self._read, lock_key(state_key))
        if data is None:
            return None
        lock = parse_lock(data)
        # A lock object we cannot read is still a lock: report it rather than ignore it.
        return (
            lock
            if lock is not None
            else LockInfo(id="(unreadable)", info=data[:200].decode(errors="replace"))
        )
