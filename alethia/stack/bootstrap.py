"""One-shot set-up for a deployment (docker-compose's ``migrate`` and ``buckets`` services).

- ``python -m alethia.stack.bootstrap migrate``: Alembic upgrade of each service's own
  tables (specs, snapshot) in the database its settings name, with its own version table.
  The services also migrate at start; running it once first keeps several replicas from
  racing on the first start.
- ``python -m alethia.stack.bootstrap buckets``: create the Terraform state and artifact
  buckets on the S3 store if they are missing (idempotent).
- ``python -m alethia.stack.bootstrap secrets DIR``: generate a deployment's credentials
  into ``DIR`` (0700, files 0600): ``nats-auth.conf`` (NATS users and subject
  permissions), ``s3-identities.json`` (SeaweedFS admin, bucket-scoped runner, and
  Terraform's identity scoped to the state bucket),
  ``artifact-keyring.json`` and ``compose.env`` with the matching passwords and keys for
  ``docker compose --env-file``. Existing files are kept (rotation is deliberate).

Settings are the services' own variables: ``ALETHIA_SPECS_DATABASE_URL``,
``ALETHIA_SNAPSHOT_DATABASE_URL``, ``ALETHIA_S3_ENDPOINT``, ``ALETHIA_S3_ACCESS_KEY``,
``ALETHIA_S3_SECRET_KEY``, ``ALETHIA_S3_REGION``, ``ALETHIA_S3_STATE_BUCKET``,
``ALETHIA_S3_ARTIFACT_BUCKET``.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alethia.database import run_migrations

# service -> the variable naming its database
MIGRATED = {"specs": "ALETHIA_SPECS_DATABASE_URL", "snapshot": "ALETHIA_SNAPSHOT_DATABASE_URL"}
# service -> the module that owns its Alembic history (``MIGRATIONS``) and version table
# (``VERSION_TABLE``): each service says where its migrations are; this module does not.
MIGRATION_OWNERS = {"specs": "services.specs.app", "snapshot": "services.snapshot.app"}
# Every variable this module reads (docker-compose's test checks the file sets no other).
ENV_VARS = frozenset(
    {
        *MIGRATED.values(),
        "ALETHIA_S3_ENDPOINT",
        "ALETHIA_S3_ACCESS_KEY",
        "ALETHIA_S3_SECRET_KEY",
        "ALETHIA_S3_REGION",
        "ALETHIA_S3_STATE_BUCKET",
        "ALETHIA_S3_ARTIFACT_BUCKET",
    }
)


def migrate(env: Mapping[str, str]) -> list[str]:
    """Upgrade every service whose database URL is set; returns the services migrated."""
    done = []
    for service, var in MIGRATED.items():
        url = env.get(var)
        if not url:
            continue
        owner = importlib.import_module(MIGRATION_OWNERS[service])
        run_migrations(url, owner.MIGRATIONS, owner.VERSION_TABLE)
        done.append(service)
    return done


def create_buckets(env: Mapping[str, str], attempts: int = 30) -> list[str]:
    """Create the state and artifact buckets when missing; retries while the store starts."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=env.get("ALETHIA_S3_ENDPOINT") or None,
        aws_access_key_id=env.get("ALETHIA_S3_ACCESS_KEY") or None,
        aws_secret_access_key=env.get("ALETHIA_S3_SECRET_KEY") or None,
        region_name=env.get("ALETHIA_S3_REGION", "us-east-1"),
    )
    buckets = [
        env.get("ALETHIA_S3_STATE_BUCKET", "alethia-state"),
        env.get("ALETHIA_S3_ARTIFACT_BUCKET", "alethia-artifacts"),
    ]
    for attempt in range(attempts):
        try:
            for name in buckets:
                _ensure_bucket(s3, name)
            return buckets
        except (BotoCoreError, ClientError) as exc:
            # Retry while the store is still starting (connection refused, 5xx); give up on the rest.
            status = (
                exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if isinstance(exc, ClientError)
                else 0
            )
            if attempt == attempts - 1 or (isinstance(exc, ClientError) and status < 500):
                raise
            time.sleep(1.0)
    return buckets


def _ensure_bucket(s3: Any, name: str) -> None:
    """Create ``name`` unless it exists (listing is not enough: stores filter it by owner)."""
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


def generate_secrets(directory: Path) -> list[str]:
    """Write a deployment's credentials into ``directory`` (see the module docstring).

    Returns the files written; an existing ``compose.env`` means the directory is already
    set up and nothing is overwritten.
    """
    from alethia.crypto import KeyRing
    from alethia.messaging import server_authorization
    from alethia.stack.infra import S3Credentials, generate_nats_passwords, seaweed_identities, write_private

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    env_file = directory / "compose.env"
    if env_file.exists():
        return []
    passwords = generate_nats_passwords()
    admin, runner = S3Credentials.generate("alethia-admin"), S3Credentials.generate("alethia-runner")
    terraform = S3Credentials.generate("alethia-terraform")
    buckets = ("alethia-state", "alethia-artifacts")
    identities = seaweed_identities(admin, runner, buckets, terraform)
    files = {
        "nats-auth.conf": server_authorization(passwords),
        "s3-identities.json": json.dumps(identities, indent=2) + "\n",
        "artifact-keyring.json": KeyRing.generate().to_json(),
    }
    for name, text in files.items():
        write_private(directory / name, text)
    env = {
        "ALETHIA_SECRETS_DIR": str(directory.resolve()),
        "ALETHIA_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "ALETHIA_RUNNER_TOKEN": secrets.token_urlsafe(32),
        "ALETHIA_NATS_SNAPSHOT_PASSWORD": passwords["snapshot"],
        "ALETHIA_NATS_RUNNER_PASSWORD": passwords["runner"],
        "ALETHIA_S3_ADMIN_ACCESS_KEY": admin.access_key,
        "ALETHIA_S3_ADMIN_SECRET_KEY": admin.secret_key,
        "ALETHIA_S3_ACCESS_KEY": runner.access_key,
        "ALETHIA_S3_SECRET_KEY": runner.secret_key,
        "ALETHIA_S3_STATE_ACCESS_KEY": terraform.access_key,
        "ALETHIA_S3_STATE_SECRET_KEY": terraform.secret_key,
    }
    write_private(env_file, "".join(f"{k}={v}\n" for k, v in env.items()))
    return [*files, env_file.name]


def main(argv: list[str]) -> int:
    if argv == ["migrate"]:
        print("migrated:", ", ".join(migrate(os.environ)) or "nothing (no database URL set)")
        return 0
    if argv == ["buckets"]:
        print("buckets:", ", ".join(create_buckets(os.environ)))
        return 0
    if len(argv) == 2 and argv[0] == "secrets":
        written = generate_secrets(Path(argv[1]))
        print("secrets:", ", ".join(written) or f"kept (already in {argv[1]})")
        return 0
    sys.stderr.write("usage: python -m alethia.stack.bootstrap migrate|buckets|secrets DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
