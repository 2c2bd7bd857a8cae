"""Artifacts are encrypted client-side and bound to their job and name (real SeaweedFS).

The key ring seals and opens; an object altered, moved to another job or name, stored in
clear, or sealed with an unknown key does not open; rotation keeps old objects readable;
errors never carry key material. Through :class:`ArtifactStore` on the test run's S3, the
stored bytes of a real Terraform plan file hold no plaintext (nor a readable zip).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from alethia.crypto import MAGIC, KeyRing, KeyRingError, SealedDataError
from alethia.errors import FailedPrecondition
from services.executor.artifacts import ArtifactStore, verify_recorded
from tests.fixtures.s3 import TEST_S3_RUNNER


def test_seal_binds_job_and_name_and_detects_any_change() -> None:
    ring = KeyRing.generate()
    sealed = ring.seal("job-1", "plan.tfplan", b"secret plan bytes")
    assert sealed.startswith(MAGIC) and b"secret" not in sealed
    assert ring.open("job-1", "plan.tfplan", sealed) == b"secret plan bytes"
    assert ring.seal("job-1", "plan.tfplan", b"x") != ring.seal("job-1", "plan.tfplan", b"x"), "random nonce"
    for job, name, blob in (
        ("job-2", "plan.tfplan", sealed),  # moved to another job
        ("job-1", "plan.json", sealed),  # renamed
        ("job-1", "plan.tfplan", sealed[:-1] + bytes([sealed[-1] ^ 1])),  # one bit flipped
        ("job-1", "plan.tfplan", sealed[:40]),  # truncated
        ("job-1", "plan.tfplan", b"PK\x03\x04 a plan file in clear"),  # stored unencrypted
        ("job-1", "plan.tfplan", KeyRing.generate().seal("job-1", "plan.tfplan", b"x")),  # unknown key
    ):
        with pytest.raises(SealedDataError):
            ring.open(job, name, blob)


def test_rotation_keeps_old_objects_readable_and_errors_hold_no_key(tmp_path: Path) -> None:
    old = KeyRing.generate()
    sealed_old = old.seal("j", "a", b"old")
    new_key = KeyRing.generate()
    rotated = KeyRing(new_key.current, {**old.keys, **new_key.keys})
    path = tmp_path / "ring.json"
    path.write_text(rotated.to_json())
    loaded = KeyRing.from_reference(f"file:{path}", {})
    assert loaded.open("j", "a", sealed_old) == b"old"
    assert loaded.key_id_of(loaded.seal("j", "a", b"new")) == new_key.current
    assert KeyRing.from_reference("env:RING", {"RING": rotated.to_json()}).current == new_key.current
    secret_b64 = base64.b64encode(old.keys[old.current]).decode()
    for bad in (
        '{"current": "x", "keys": {}}',
        "not json " + secret_b64,
        '{"current": "k", "keys": {"k": "AAAA"}}',
    ):
        path.write_text(bad)
        with pytest.raises(KeyRingError) as info:
            KeyRing.from_reference(str(path), {})
        assert secret_b64 not in str(info.value) and "AAAA" not in str(info.value)
    with pytest.raises(KeyRingError, match="empty"):
        KeyRing.from_reference("env:NOPE", {})


def test_recorded_digests_refuse_a_file_the_manifest_would_accept() -> None:
    verify_recorded(
        {"plan.tfplan": b"abc"},
        {"plan.tfplan": ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3)},
    )
    with pytest.raises(FailedPrecondition, match="the plan artifact was altered") as info:
        verify_recorded(
            {"plan.tfplan": b"abd"},
            {"plan.tfplan": ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3)},
        )
    assert info.value.preconditions[0].type == "CHECKSUM_MISMATCH"
    with pytest.raises(FailedPrecondition, match="no digest recorded"):
        verify_recorded({"plan.tfplan": b"abc"}, {})


def _zip_with_state(secret: str) -> bytes:
    """A zip like Terraform's plan file: its ``tfstate`` member holds a sensitive value."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("tfplan", b"plan")
        z.writestr("tfstate", json.dumps({"outputs": {"db_password": {"value": secret, "sensitive": True}}}))
    return buf.getvalue()


async def test_store_round_trip_on_real_s3_holds_no_plaintext(s3_server: Any) -> None:
    ring = KeyRing.generate()
    store = ArtifactStore(
        "alethia-artifacts",
        endpoint=s3_server.endpoint,
        access_key=TEST_S3_RUNNER.access_key,
        secret_key=TEST_S3_RUNNER.secret_key,
        keyring=ring,
    )
    secret = "db-password-crypto-test-5e6f7a"
    plan = _zip_with_state(secret)
    stored = await store.put("crypto-job", "plan.tfplan", plan)
    raw = s3_server.client(TEST_S3_RUNNER).get_object(Bucket="alethia-artifacts", Key=stored.key)
    body = raw["Body"].read()
    assert secret.encode() not in body and not zipfile.is_zipfile(io.BytesIO(body))
    assert raw["Metadata"]["alethia-key-id"] == ring.current and stored.size == len(plan)
    assert await store.get(stored.key) == plan
    # The same object copied under another job's prefix does not open there.
    s3_server.client(TEST_S3_RUNNER).put_object(
        Bucket="alethia-artifacts", Key="jobs/other-job/plan.tfplan", Body=body
    )
    with pytest.raises(FailedPrecondition, match="moved from another job"):
        await store.get("jobs/other-job/plan.tfplan")
