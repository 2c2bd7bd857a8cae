"""Executor test helpers: S3 backend settings for the session's SeaweedFS, Terraform binaries."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from services.executor.terraform import LIBTERRAFORM, TerraformBinary, resolve_binary
from services.executor.workspace import S3Backend
from tests.fixtures.s3 import TEST_S3_RUNNER

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
