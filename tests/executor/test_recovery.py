"""Keeping and pushing back a state Terraform could not write, against real Terraform and SeaweedFS.

The kept state here is a real Terraform state (made by a local apply); the S3 side is the
session's SeaweedFS with the lock object the failed apply would have left. The reliability
suite (``tests/reliability/test_state_recovery.py``) makes Terraform fail for real.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from alethia.errors import FailedPrecondition
from services.executor.recovery import Pusher, Recovery, RecoveryKeeper, RecoveryLoop
from services.executor.statelock import StateBucket, parse_lock
from services.executor.terraform import ApplyOptions, InitOptions, Terraform, resolve_binary, terraform_env
from services.executor.workspace import ERRORED_STATE, S3Backend, backend_env

CONFIG = """
resource "terraform_data" "made" {
  count = 3
  input = count.index
}
"""


def _s3(backend: S3Backend) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=backend.endpoint,
        aws_access_key_id=backend.access_key,
        aws_secret_access_key=backend.secret_key,
        region_name=backend.region,
    )


def _lock_doc(lock_id: str, key: str) -> bytes:
    return json.dumps(
        {
            "ID": lock_id,
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": "root@runner",
            "Version": "1.11.4",
            "Created": "2026-12-01T04:19:31.828490956Z",
            "Path": f"alethia-state/{key}",
        }
    ).encode()


async def _real_state(tmp: Path, name: str) -> Path:
    """A working directory whose errored.tfstate is a real state of 3 applied resources."""
    wd = tmp / name
    wd.mkdir()
    (wd / "main.tf").write_text(CONFIG)
    tf = Terraform(wd, resolve_binary(""), env=terraform_env(os.environ, {}))
    await tf.init(InitOptions(backend=False, json=False))
    await tf.apply(ApplyOptions())
    (wd / "terraform.tfstate").rename(wd / ERRORED_STATE)
    return wd


async def test_kept_state_is_pushed_after_its_own_lock_is_released(
    s3_backend: S3Backend, tmp_path: Path
) -> None:
    key = f"zone-{uuid.uuid4().hex[:8]}/rec-dev-us-east-1/terraform.tfstate"
    s3 = _s3(s3_backend)
    wd = await _real_state(tmp_path, "job-wd")
    kept = json.loads((wd / ERRORED_STATE).read_bytes())

    keeper = RecoveryKeeper(tmp_path / "data" / "recovered-state", artifacts=None, host="runner-1")
    rec = await keeper.keep(
        job_id="job-1",
        spec_id="spec-1",
        workspace=key.rsplit("/", 1)[0],
        state_key=key,
        workdir=wd,
        resources_applied=3,
        lock_id="lock-of-the-failed-apply",
    )
    # Durable and private: 0700 directories, 0600 files, and a record a restart can read.
    assert stat.S_IMODE((keeper.root).stat().st_mode) == 0o700
    assert stat.S_IMODE((keeper.root / "job-1").stat().st_mode) == 0o700
    for name in (ERRORED_STATE, "recovery.json"):
        assert stat.S_IMODE((keeper.root / "job-1" / name).stat().st_mode) == 0o600
    assert rec.location() == f"file://runner-1{keeper.root / 'job-1' / ERRORED_STATE}"
    assert [r.job_id for r in RecoveryKeeper(keeper.root, None).pending()] == ["job-1"]

    recorded: list[str] = []
    resolved: list[tuple[str, str]] = []

    async def record(r: Recovery) -> None:
        recorded.append(r.job_id)

    async def resolve(r: Recovery, what: str) -> None:
        resolved.append((r.job_id, what))

    bucket = StateBucket(s3_backend)
    pusher = Pusher(
        binary=resolve_binary(""),
        backend=s3_backend,
        state_bucket=bucket,
        work_root=tmp_path / "work",
        env=terraform_env(os.environ, backend_env(s3_backend)),
    )
    loop = RecoveryLoop(keeper, pusher, record, resolve, interval=0.1)

    # Someone else's lock: never released by the recovery, nothing pushed.
    s3.put_object(Bucket=s3_backend.bucket, Key=f"{key}.tflock", Body=_lock_doc("someone-else", key))
    with pytest.raises(FailedPrecondition) as other:
        await pusher.push(rec)
    assert "someone-else" in other.value.message and "alethia unlock spec-1 --lock-id someone-else" in (
        other.value.message
    )
    assert await loop.run_once() == 0
    assert recorded == ["job-1"] and resolved == []
    assert s3.list_objects_v2(Bucket=s3_backend.bucket, Prefix=key).get("KeyCount") == 1  # the lock only

    # The failed apply's own lock: released, then the state pushed with lineage and serial kept.
    s3.put_object(
        Bucket=s3_backend.bucket, Key=f"{key}.tflock", Body=_lock_doc("lock-of-the-failed-apply", key)
    )
    assert await loop.run_once() == 1
    assert resolved and resolved[0][0] == "job-1"
    assert "released the failed apply's lock lock-of-the-failed-apply" in resolved[0][1]
    assert await bucket.read_lock(key) is None
    # No state existed before (a first deploy): Terraform gives it a lineage; the resources are all there.
    remote = json.loads(s3.get_object(Bucket=s3_backend.bucket, Key=key)["Body"].read())
    assert [i["attributes"]["input"] for r in remote["resources"] for i in r["instances"]] == [
        i["attributes"]["input"] for r in kept["resources"] for i in r["instances"]
    ]
    assert sum(len(r["instances"]) for r in remote["resources"]) == 3
    assert keeper.pending() == [] and not wd.exists()


async def test_a_successor_is_pushed_and_another_lineage_never_forced(
    s3_backend: S3Backend, tmp_path: Path
) -> None:
    key = f"zone-{uuid.uuid4().hex[:8]}/lin-dev-us-east-1/terraform.tfstate"
    s3 = _s3(s3_backend)
    first = await _real_state(tmp_path, "first")
    s3.put_object(Bucket=s3_backend.bucket, Key=key, Body=(first / ERRORED_STATE).read_bytes())
    before = s3.get_object(Bucket=s3_backend.bucket, Key=key)["Body"].read()

    other = await _real_state(tmp_path, "other")  # a fresh lineage: not a successor of the remote
    keeper = RecoveryKeeper(tmp_path / "kept", artifacts=None)
    await keeper.keep(
        job_id="job-2",
        spec_id="spec-2",
        workspace=key.rsplit("/", 1)[0],
        state_key=key,
        workdir=other,
        resources_applied=3,
        lock_id="",
    )

    async def nothing(*_: Any) -> None:
        return None

    pusher = Pusher(
        binary=resolve_binary(""),
        backend=s3_backend,
        state_bucket=StateBucket(s3_backend),
        work_root=tmp_path / "work",
        env=terraform_env(os.environ, backend_env(s3_backend)),
    )
    loop = RecoveryLoop(keeper, pusher, nothing, nothing)
    assert await loop.run_once() == 0
    (pending,) = keeper.pending()
    assert "lineage" in pending.last_error.lower(), pending.last_error
    assert s3.get_object(Bucket=s3_backend.bucket, Key=key)["Body"].read() == before
    assert parse_lock(b"not json") is None

    # A successor of the remote state (same lineage, higher serial: what a failed apply keeps).
    keeper.done(pending)
    remote = json.loads(before)
    successor = await _real_state(tmp_path, "successor")
    doc = json.loads((successor / ERRORED_STATE).read_bytes())
    doc["lineage"], doc["serial"] = remote["lineage"], remote["serial"] + 5
    (successor / ERRORED_STATE).write_text(json.dumps(doc))
    await keeper.keep(
        job_id="job-3",
        spec_id="spec-2",
        workspace=key.rsplit("/", 1)[0],
        state_key=key,
        workdir=successor,
        resources_applied=3,
        lock_id="",
    )
    assert await loop.run_once() == 1
    after = json.loads(s3.get_object(Bucket=s3_backend.bucket, Key=key)["Body"].read())
    assert after["lineage"] == remote["lineage"] and after["serial"] >= doc["serial"]


async def test_a_restarted_runner_adopts_a_leftover_errored_state(tmp_path: Path) -> None:
    """The runner died before it could keep the state: its working directory still says whose it is."""
    work = tmp_path / "work"
    work.mkdir()
    wd = await _real_state(work, "job-0123456789ab-x1")
    (wd / ".alethia-job.json").write_text(
        json.dumps(
            {
                "job_id": "job-dead",
                "spec_id": "spec-9",
                "workspace": "zone/p-dev-r",
                "state_key": "zone/p-dev-r/terraform.tfstate",
                "lock_id": "lock-9",
            }
        )
    )
    done = await _real_state(work, "job-finished-x2")  # a marker without a kept state: not adopted
    (done / ERRORED_STATE).unlink()
    (done / ".alethia-job.json").write_text("{}")
    keeper = RecoveryKeeper(tmp_path / "kept", artifacts=None)
    (rec,) = await keeper.adopt_leftovers(work)
    assert (rec.job_id, rec.lock_id, rec.resources_applied, rec.workdir) == ("job-dead", "lock-9", 3, str(wd))
    assert [r.job_id for r in keeper.pending()] == ["job-dead"]
    assert await keeper.adopt_leftovers(work) == []  # once
