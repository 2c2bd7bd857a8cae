"""Object storage is authenticated: the test run's SeaweedFS is configured as ``alethia up``'s.

Anonymous requests (read, write, list) and a wrong secret are refused; the runner's
identity reads and writes objects of the pipeline's buckets but cannot create or delete
buckets; the admin can.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from alethia.stack.infra import S3Credentials
from tests.fixtures.s3 import TEST_S3_ADMIN, TEST_S3_RUNNER, TEST_S3_TERRAFORM


def _anonymous(method: str, url: str, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_anonymous_requests_are_refused(s3_server: Any) -> None:
    key = f"auth/{uuid.uuid4().hex}"
    s3_server.client(TEST_S3_RUNNER).put_object(Bucket="alethia-state", Key=key, Body=b"state")
    base = s3_server.endpoint
    codes = {
        "read": _anonymous("GET", f"{base}/alethia-state/{key}"),
        "list": _anonymous("GET", f"{base}/alethia-state?list-type=2"),
        "write": _anonymous("PUT", f"{base}/alethia-artifacts/{key}", b"forged plan"),
        "delete": _anonymous("DELETE", f"{base}/alethia-state/{key}"),
    }
    assert codes == {"read": 403, "list": 403, "write": 403, "delete": 403}
    assert (
        s3_server.client(TEST_S3_RUNNER).get_object(Bucket="alethia-state", Key=key)["Body"].read()
        == b"state"
    )
    wrong = S3Credentials(TEST_S3_RUNNER.access_key, "not-the-secret")
    with pytest.raises(ClientError) as info:
        s3_server.client(wrong).get_object(Bucket="alethia-state", Key=key)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_runner_identity_is_scoped_to_objects_of_its_buckets(s3_server: Any) -> None:
    runner, admin = s3_server.client(TEST_S3_RUNNER), s3_server.client(TEST_S3_ADMIN)
    key = f"auth/{uuid.uuid4().hex}"
    runner.put_object(Bucket="alethia-artifacts", Key=key, Body=b"1", IfNoneMatch="*")
    assert runner.get_object(Bucket="alethia-artifacts", Key=key)["Body"].read() == b"1"
    runner.delete_object(Bucket="alethia-artifacts", Key=key)  # Terraform removes its lock file
    name = f"other-{uuid.uuid4().hex[:8]}"
    for op in (
        lambda: runner.create_bucket(Bucket=name),
        lambda: runner.delete_bucket(Bucket="alethia-state"),
    ):
        with pytest.raises(ClientError) as info:
            op()
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    admin.create_bucket(Bucket=name)
    with pytest.raises(ClientError):
        runner.put_object(Bucket=name, Key="x", Body=b"1")  # not one of the pipeline's buckets
    admin.delete_bucket(Bucket=name)


def test_terraform_identity_reaches_the_state_bucket_alone(s3_server: Any) -> None:
    terraform = s3_server.client(TEST_S3_TERRAFORM)
    key = f"auth/{uuid.uuid4().hex}"
    terraform.put_object(Bucket="alethia-state", Key=key, Body=b"state")
    terraform.delete_object(Bucket="alethia-state", Key=key)
    for op in (
        lambda: terraform.get_object(Bucket="alethia-artifacts", Key="jobs/x/plan.tfplan"),
        lambda: terraform.put_object(Bucket="alethia-artifacts", Key=key, Body=b"forged plan"),
        lambda: terraform.list_objects_v2(Bucket="alethia-artifacts"),
    ):
        with pytest.raises(ClientError) as info:
            op()
        assert info.value.response["Error"]["Code"] == "AccessDenied"
