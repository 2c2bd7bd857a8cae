"""Job artifacts in object storage and the manifest that vouches for them.

Artifacts of a job live under ``jobs/<job_id>/`` in the artifact bucket. ``manifest.json``
lists each artifact's sha256 and size with the job's config hash and Terraform version,
and is written LAST: a job whose manifest is missing has no usable artifacts, so a
half-written set is never applied. :func:`verify_manifest` and :func:`verify_recorded`
are pure and are what stand between a DEPLOY and ``terraform apply``.

Everything that goes through :class:`ArtifactStore` is encrypted client-side
(:mod:`alethia.crypto`, AES-256-GCM, the job id and artifact name as associated data):
the bucket holds no plan, state or log in clear, and an object moved to another job or
name, or altered, fails to open. Digests and sizes (in the manifest and the job's
database row) are of the plaintext.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from alethia.crypto import ALGORITHM, KeyRing, SealedDataError
from alethia.errors import FailedPrecondition, NotFound, PreconditionViolation, Unavailable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PLAN_FILE = "plan.tfplan"
PLAN_JSON = "plan.json"
LOG_FILE = "terraform.log"
KUBECONFIG = "kubeconfig.yaml"
MANIFEST_VERSION = 1


def artifact_key(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/{name}"


def split_artifact_key(key: str) -> tuple[str, str]:
    """``jobs/<job_id>/<name>`` -> ``(job_id, name)``; ValueError for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "jobs" or not parts[1] or not parts[2]:
        raise ValueError(f"{key!r} is not an artifact key (jobs/<job id>/<name>)")
    return parts[1], parts[2]


def verify_recorded(files: dict[str, bytes], recorded: dict[str, tuple[str, int]]) -> None:
    """Check decrypted files against the digests the job's database row recorded at plan time.

    ``recorded`` is ``{name: (sha256, size)}`` as CompleteJob stored them. A file without a
    recorded digest, or with another digest or size, raises ``FailedPrecondition`` saying
    the plan artifact was altered: the manifest stored beside the files is not trusted
    alone, since whoever can replace a file could replace the manifest too.
    """
    problems: list[PreconditionViolation] = []
    for name, data in sorted(files.items()):
        entry = recorded.get(name)
        actual = sha256_hex(data)
        if entry is None:
            problems.append(
                PreconditionViolation(
                    "ARTIFACT_NOT_RECORDED", name, "no digest recorded in the plan job's record"
                )
            )
        elif (actual, len(data)) != entry:
            problems.append(
                PreconditionViolation(
                    "CHECKSUM_MISMATCH",
                    name,
                    f"sha256 {actual} / {len(data)} bytes does not match the digest recorded in the plan "
                    f"job's record at plan time ({entry[0]} / {entry[1]} bytes)",
                )
            )
    if problems:
        detail = "; ".join(f"{p.subject}: {p.description}" for p in problems)
        raise FailedPrecondition(f"the plan artifact was altered: {detail}", problems)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SESSION_LOCK = threading.Lock()


@functools.cache
def _botocore_session() -> boto3.session.Session:
    return boto3.session.Session()


def s3_client(**kwargs: Any) -> Any:
    """An S3 client from the process's one boto3 session (credentials come in ``kwargs``).

    Clients of one session share its loaded service models: the runner's second client
    (state bucket beside artifacts) cost 12.4 MB of resident memory from a session of its
    own and 0.3 MB from the shared one. Sessions are not thread-safe, hence the lock.
    """
    with _SESSION_LOCK:
        return _botocore_session().client("s3", **kwargs)


@dataclass(frozen=True)
class StoredArtifact:
    name: str
    key: str
    sha256: str
    size: int


def build_manifest(
    job_id: str,
    config_hash: str,
    terraform_version: str,
    artifacts: list[StoredArtifact],
    extra: dict[str, Any] | None = None,
) -> bytes:
    """The manifest document (canonical JSON, stable for the same input)."""
    doc: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "job_id": job_id,
        "config_hash": config_hash,
        "terraform_version": terraform_version,
        "artifacts": {a.name: {"key": a.key, "sha256": a.sha256, "size": a.size} for a in artifacts},
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, sort_keys=True, indent=2).encode()


def verify_manifest(
    manifest_bytes: bytes,
    files: dict[str, bytes],
    expected_config_hash: str,
    required: tuple[str, ...] = (PLAN_FILE,),
    terraform_version: str = "",
) -> dict[str, Any]:
    """Check a downloaded artifact set; returns the manifest or raises ``FailedPrecondition``.

    Every ``required`` artifact must be listed and present, every present file must match
    its listed sha256 and size, and the manifest's config hash must equal the job's. With
    ``terraform_version``, the plan must have been made by that version (Terraform refuses
    to apply a plan file from another version; saying so first is clearer).
    """
    try:
        manifest = json.loads(manifest_bytes)
        listed = manifest["artifacts"]
        if not isinstance(listed, dict):
            raise TypeError("artifacts is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise FailedPrecondition(f"plan manifest is unreadable: {exc}") from exc
    problems: list[PreconditionViolation] = []
    if manifest.get("config_hash") != expected_config_hash:
        problems.append(
            PreconditionViolation(
                "HASH_MISMATCH",
                "config_hash",
                f"plan was made for config hash {manifest.get('config_hash')!r} but this job's is "
                f"{expected_config_hash!r}; the Spec changed since the plan: re-plan",
            )
        )
    made_with = manifest.get("terraform_version")
    if terraform_version and made_with and made_with != terraform_version:
        problems.append(
            PreconditionViolation(
                "TERRAFORM_VERSION",
                "terraform_version",
                f"plan was made with Terraform {made_with} but this runner has {terraform_version}: "
                "re-plan (or run the same Terraform everywhere)",
            )
        )
    for name in required:
        if name not in listed:
            problems.append(PreconditionViolation("ARTIFACT_MISSING", name, "not listed in the manifest"))
        elif name not in files:
            problems.append(PreconditionViolation("ARTIFACT_MISSING", name, "listed but not downloaded"))
    for name, data in sorted(files.items()):
        entry = listed.get(name)
        if entry is None:
            continue
        actual = sha256_hex(data)
        if actual != entry.get("sha256") or len(data) != entry.get("size"):
            problems.append(
                PreconditionViolation(
                    "CHECKSUM_MISMATCH",
                    name,
                    f"sha256 {actual} / {len(data)} bytes does not match the manifest "
                    f"({entry.get('sha256')} / {entry.get('size')} bytes): the artifact was altered",
                )
            )
    if problems:
        kinds = sorted({p.type for p in problems})
        detail = "; ".join(f"{p.subject}: {p.description}" for p in problems)
        raise FailedPrecondition(f"plan artifacts rejected ({', '.join(kinds)}): {detail}", problems)
    return dict(manifest)


class ArtifactStore:
    """boto3 access to the artifact bucket, with bounded retries and clear failures.

    Every object written with :meth:`put` is sealed with ``keyring`` and every object read
    with :meth:`get` is opened with it: encryption is this layer's, not its callers'.
    """

    def __init__(
        self,
        bucket: str,
        endpoint: str = "",
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        attempts: int = 4,
        backoff_seconds: float = 0.3,
        *,
        keyring: KeyRing,
    ) -> None:
        self.bucket = bucket
        self.keyring = keyring
        self.secret_key = secret_key  # known so that job logs are redacted of it
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        kwargs: dict[str, Any] = {
            "region_name": region,
            "config": Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                s3={"addressing_style": "path"} if endpoint else {},
            ),
        }
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        if access_key:
            kwargs["aws_access_key_id"] = access_key
            kwargs["aws_secret_access_key"] = secret_key
        self._client = s3_client(**kwargs)

    def _retry(self, what: str, fn: Any) -> Any:
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise NotFound(f"{what}: object not found in bucket {self.bucket}") from exc
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if 400 <= status < 500 and status not in (408, 429):
                    raise Unavailable(f"{what}: object storage refused the request: {code}") from exc
                last = exc
            except (BotoCoreError, OSError) as exc:
                last = exc
            if attempt < self.attempts:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise Unavailable(f"{what}: object storage failed after {self.attempts} attempts: {last}") from last

    def encryption(self) -> dict[str, str]:
        """What the manifest records about the encryption of new artifacts."""
        return {"algorithm": ALGORITHM, "key_id": self.keyring.current}

    async def put(
        self, job_id: str, name: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> StoredArtifact:
        """Encrypt and upload one artifact; returns its key and the plaintext's checksum and size."""
        key = artifact_key(job_id, name)
        split_artifact_key(key)  # a job id or name with '/' would name another object
        digest = sha256_hex(data)
        sealed = self.keyring.seal(job_id, name, data)

        def put() -> None:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=sealed,
                ContentType="application/octet-stream",
                Metadata={"alethia-encryption": ALGORITHM, "alethia-key-id": self.keyring.current,
                          "alethia-content-type": content_type},
            )  # fmt: skip

        await asyncio.to_thread(self._retry, f"upload {key}", put)
        return StoredArtifact(name, key, digest, len(data))

    async def get(self, key: str) -> bytes:
        """Download one artifact by key and decrypt it (``NotFound`` when absent).

        ``FailedPrecondition`` when it does not open: altered, stored in clear, or moved
        here from another job or name (the key's job id and name are the associated data).
        """
        job_id, name = split_artifact_key(key)

        def get() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            return bytes(body.read())

        blob = bytes(await asyncio.to_thread(self._retry, f"download {key}", get))
        try:
            return self.keyring.open(job_id, name, blob)
        except SealedDataError as exc:
            raise FailedPrecondition(
                f"artifact {key} does not decrypt ({exc}): it was altered or moved from another job",
                [PreconditionViolation("ARTIFACT_ALTERED", key, str(exc))],
            ) from None

    async def list_keys(self, prefix: str, bucket: str | None = None) -> list[str]:
        """Keys under ``prefix`` (used to check that no state lock object was left behind)."""

        def list_() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket or self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
            return keys

        return list(await asyncio.to_thread(self._retry, f"list {prefix}", list_))

    async def delete(self, key: str, bucket: str | None = None) -> None:
        def delete() -> None:
            self._client.delete_object(Bucket=bucket or self.bucket, Key=key)

        await asyncio.to_thread(self._retry, f"delete {key}", delete)
