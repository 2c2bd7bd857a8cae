"""Issue 16 on a real ``alethia up``: each class of attack from the same host, and what stops it.

One stack (the real supervisor, NATS, SeaweedFS, services and Terraform) in a temporary
data directory, driven through the CLI; the attacker uses only what another local user
or a process with network access to the ports would have.

- the data directory: every file 0600 and every directory 0700;
- object storage: anonymous reads, listings and writes refused; the operator's
  credentials (``s3_credentials_file`` in ``stack.json``) work;
- NATS: an anonymous client is refused;
- artifacts as stored hold no sensitive value, not even inside zip members, while the
  decrypted plan file does (its ``tfstate`` member carries the prior state);
- another job's valid plan file copied over a plan is refused before Terraform runs.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import stat
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import nats
import pytest

from alethia.stack.datadir import DataDir
from tests.e2e.conftest import ROOT, UpStack

pytestmark = pytest.mark.timeout(300)
EXAMPLE = ROOT / "examples" / "aws.yaml"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    stack = UpStack(tmp_path_factory.mktemp("security-up") / "data")
    stack.start()
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stack.stop()


def _s3(info: dict[str, Any]) -> Any:
    creds = json.loads(Path(info["s3_credentials_file"]).read_text())
    return boto3.client(
        "s3",
        endpoint_url=info["s3_endpoint"],
        aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"],
        region_name="us-east-1",
    )


def _status(method: str, url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _expanded(blob: bytes) -> list[bytes]:
    """The blob and, when it is a zip, every member (a plan file is a zip)."""
    out = [blob]
    if zipfile.is_zipfile(io.BytesIO(blob)):
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            out += [z.read(n) for n in z.namelist()]
    return out


def test_data_directory_is_owner_only(up: UpStack) -> None:
    # Objects in both buckets first: SeaweedFS writes a new volume's files 0644 whatever the
    # umask, so the stack has them made (and tightened) at start, before anything is stored.
    info = json.loads((up.data_dir / "stack.json").read_text())
    s3 = _s3(info)
    for bucket in ("alethia-state", "alethia-artifacts"):
        s3.put_object(Bucket=bucket, Key="security-test/probe", Body=b"x")
        s3.delete_object(Bucket=bucket, Key="security-test/probe")  # the volume stays
    loose = []
    for path in [up.data_dir, *up.data_dir.rglob("*")]:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            loose.append(f"{path.relative_to(up.data_dir)} {oct(st.st_mode & 0o777)}")
    assert loose == []
    for name in ("s3_credentials_file", "nats_credentials_file", "token_file"):
        assert Path(info[name]).stat().st_mode & 0o777 == 0o600, name
    assert "@" not in info["nats_url"], "stack.json carries no NATS password"


def test_anonymous_storage_and_messaging_are_refused(up: UpStack) -> None:
    info = json.loads((up.data_dir / "stack.json").read_text())
    base = info["s3_endpoint"]
    assert _status("GET", f"{base}/alethia-state?list-type=2") == 403
    assert _status("GET", f"{base}/alethia-artifacts?list-type=2") == 403
    assert _status("PUT", f"{base}/alethia-artifacts/jobs/x/plan.tfplan", b"forged") == 403
    _s3(info).list_objects_v2(Bucket="alethia-state")  # the operator's key works

    async def anonymous() -> None:
        await nats.connect(
            info["nats_url"], allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2
        )

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(anonymous())


def test_stored_artifacts_hold_no_secret_and_a_swapped_plan_is_refused(up: UpStack) -> None:
    info = json.loads((up.data_dir / "stack.json").read_text())
    s3 = _s3(info)
    identity = up.ok(
        "identity", "create", "--provider", "aws", "--account-id", "123456789012", "--name", "sec"
    )
    spec = up.ok("spec", "create", "-f", str(EXAMPLE), "--identity", identity["id"])
    first = up.ok("plan", spec["id"], "--wait")
    deploy = up.ok("deploy", spec["id"], "--plan-job", first["id"], "--wait")
    assert deploy["status"] == "SUCCEEDED", deploy["error"]
    # Sensitive values as Terraform keeps them (the state object is the protected store).
    state_keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alethia-state")["Contents"]]
    state = json.loads(s3.get_object(Bucket="alethia-state", Key=state_keys[0])["Body"].read())
    sensitive = [
        (o["value"] if isinstance(o["value"], str) else json.dumps(o["value"])).encode()
        for o in state["outputs"].values()
        if o.get("sensitive")
    ]
    assert sensitive
    plan = up.ok("plan", spec["id"], "--wait")  # its plan file carries the prior state
    other = up.ok("plan", spec["id"], "--wait")
    assert plan["status"] == other["status"] == "SUCCEEDED"

    stored = {
        o["Key"]: s3.get_object(Bucket="alethia-artifacts", Key=o["Key"])["Body"].read()
        for o in s3.list_objects_v2(Bucket="alethia-artifacts")["Contents"]
    }
    leaks = [k for k, blob in stored.items() for part in _expanded(blob) for v in sensitive if v in part]
    assert leaks == []
    assert not any(zipfile.is_zipfile(io.BytesIO(b)) for b in stored.values()), "no artifact stored in clear"
    # Positive control: decrypted, the plan file's members do hold the prior state's values.
    ring = DataDir(up.data_dir).artifact_keyring()
    plan_key = f"jobs/{plan['id']}/plan.tfplan"
    members = _expanded(ring.open(plan["id"], "plan.tfplan", stored[plan_key]))
    assert len(members) > 1 and any(v in m for m in members for v in sensitive)

    # Another job's valid plan copied over this one: refused before Terraform, nothing applied.
    # (About the stored artifacts: the runner's kept plan directories, which a DEPLOY checks
    # against the same recorded digests instead of downloading, are dropped.)
    shutil.rmtree(Path(up.data_dir) / "work" / "kept-plans", ignore_errors=True)
    s3.put_object(Bucket="alethia-artifacts", Key=plan_key, Body=stored[f"jobs/{other['id']}/plan.tfplan"])
    result = up.cli("deploy", spec["id"], "--plan-job", plan["id"], "--wait", "--json")
    assert result.code == 3, result.err
    refused = json.loads(result.out)
    assert refused["status"] == "FAILED" and "the plan artifact was altered" in refused["error"]
    watched = up.cli("jobs", "watch", refused["id"], "--json")
    stages = {
        json.loads(line).get("log", {}).get("stage") for line in watched.out.splitlines() if '"log"' in line
    }
    assert not stages & {"init", "plan", "apply"}, "Terraform never ran"
    after = s3.get_object(Bucket="alethia-state", Key=state_keys[0])["Body"].read()
    assert json.loads(after)["serial"] == state["serial"], "the state was not touched"
