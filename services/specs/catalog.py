"""The spec service's operations: validate, then read or write in one transaction.

Each method is one RPC's behaviour on plain dicts (the server translates protobuf); each
owns its transaction. Nothing is written before every check passed: validation is pure
and runs first, and the only checks that need the database (the cloud identity exists,
the workspace of an updated Spec stays the same) are reads made before the write.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alethia import naming, spec_schema
from alethia.database import begin_write, is_sqlite, session_factory
from alethia.errors import Aborted, AlethiaError, FieldViolation, InvalidArgument, NotFound
from alethia.specs.v1 import specs_pb2
from services.specs import store
from services.specs.infrastructure import DeleteOutcome, InfrastructureReader, delete_decision
from services.specs.models import CloudIdentityRow
from services.specs.rules import write_violations
from services.specs.validation import show, validate_identity, validate_spec

DEFAULT_PAGE_SIZE = 50
IDENTITY_CACHE_MAX = 10_000  # identities are few (one per cloud account and team); a bound anyway
MAX_PAGE_SIZE = 500
WORKSPACE_FIELDS = ("zone_id", "project_name", "environment", "region")
log = logging.getLogger(__name__)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _is_id(value: str) -> bool:
    # Ids are ours (uuid4): anything else cannot exist, and is never sent to the database.
    return bool(_UUID.match(value))


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument.one("page_size", "must be >= 0")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_token(create_time: datetime, row_id: str, scope: str) -> str:
    raw = json.dumps({"t": create_time.isoformat(), "i": row_id, "s": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, scope: str) -> tuple[datetime, str] | None:
    """The keyset cursor in a page token; the token must come from the same query (scope)."""
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = (datetime.fromisoformat(raw["t"]), str(raw["i"]))
        same_scope = raw.get("s") == scope
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.one("page_token", "not a page token returned by this list") from None
    if not same_scope or not _is_id(after[1]) or after[0].tzinfo is None:
        raise InvalidArgument.one(
            "page_token", "not a page token returned by this list (or the filter changed)"
        )
    return after


class SpecCatalog:
    """Specs and cloud identities on one database engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        infrastructure: InfrastructureReader,
        allowed_git_hosts: Collection[str] | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.infrastructure = infrastructure
        # The platform's repository hosts (the service always passes its setting; None skips it).
        self.allowed_git_hosts = allowed_git_hosts
        # Identities found, by id. A cloud identity is never changed (no RPC updates one) nor
        # deleted (specs reference it, ON DELETE RESTRICT), so a row once read stays true on
        # every replica: CreateSpec/UpdateSpec skip a checkout, BEGIN, SELECT and ROLLBACK.
        # An id not found is never kept (it may be created the next moment).
        self._identities: dict[str, CloudIdentityRow] = {}

    # --- cloud identities ---------------------------------------------------------------

    async def create_identity(self, identity: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a cloud identity."""
        violations = validate_identity(identity)
        if violations:
            raise InvalidArgument(violations)
        async with begin_write(self.sessions) as session:
            row = await store.insert_identity(session, str(uuid.uuid4()), identity, _now())
        return store.identity_to_dict(row)

    async def get_identity(self, identity_id: str) -> dict[str, Any]:
        """One identity, or NOT_FOUND."""
        row = None
        if _is_id(identity_id):
            async with self.sessions() as session:
                row = await store.get_identity(session, identity_id)
        if row is None:
            raise NotFound(f"cloud identity {show(identity_id)} not found")
        return store.identity_to_dict(row)

    async def list_identities(self, page_size: int, page_token: str) -> tuple[list[dict[str, Any]], str]:
        """A page of identities in creation order, and the token of the next page ("" at the end)."""
        limit = _page_size(page_size)
        after = _decode_token(page_token, "identities")
        async with self.sessions() as session:
            rows = await store.list_identities(session, after, limit + 1)
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            token = _encode_token(rows[-1].create_time, rows[-1].id, "identities")
        return [store.identity_to_dict(r) for r in rows], token

    # --- specs ----------------------------------------------------------------------------

    async def _identity(self, spec: dict[str, Any]) -> tuple[CloudIdentityRow | None, list[FieldViolation]]:
        """The Spec's cloud identity (None when unknown) and the violation if it does not exist."""
        identity_id = spec.get("cloud_identity_id") or ""
        if not identity_id:
            return None, []  # validate_spec reports the missing field
        row = self._identities.get(identity_id)
        if row is None and _is_id(identity_id):
            async with self.sessions() as session:
                row = await store.get_identity(session, identity_id)
            if row is not None and len(self._identities) < IDENTITY_CACHE_MAX:
                self._identities[identity_id] = row
        if row is None:
            return None, [
                FieldViolation("cloud_identity_id", f"no cloud identity with id {show(identity_id)}")
            ]
        return row, []

    async def create_spec(
        self, spec: dict[str, Any], message: specs_pb2.Spec | None = None
    ) -> dict[str, Any]:
        """Validate and store a new Spec (revision 1) in one transaction across its tables.

        ``message``: the Spec as received, when ``spec`` is its ``spec_to_dict``: the rules
        freeze it instead of converting the dict back (``rules.would_be_snapshot``).
        """
        spec = spec_schema.apply_defaults(spec)
        identity, violations = await self._identity(spec)
        violations = (
            write_violations(spec, identity.provider, identity.account_id, self.allowed_git_hosts, message)
            if identity
            else validate_spec(spec, None, self.allowed_git_hosts)
        ) + violations
        if violations or identity is None:
            raise InvalidArgument(violations)
        spec_id = str(uuid.uuid4())
        # The identity row stays valid: identities are never deleted (the FK would refuse it).
        values, components = await store.insert_spec(
            self.engine, spec_id, spec, _now(), naming.cloud_account(identity.provider, identity.account_id)
        )
        return store.written_spec(values, identity.provider, identity.account_id, components)

    async def get_spec(self, spec_id: str) -> dict[str, Any]:
        """The whole Spec: its row, identity and every component table in one statement.

        One statement sees one snapshot of the database (Postgres and SQLite alike), so the
        components always belong to the revision returned, whatever commits meanwhile. It
        replaced concurrent per-table reads with a revision seqlock: fifteen round trips and
        eleven pooled connections per call for what one query answers (bench: snapshot_latency,
        ``python -m bench.roundtrips``).
        """
        if not _is_id(spec_id):
            raise NotFound(f"spec {show(spec_id)} not found")
        found = await store.read_spec(self.engine, spec_id)
        if found is None:
            raise NotFound(f"spec {show(spec_id)} not found")
        return store.read_spec_dict(found)

    async def _consistent_read(self, session: AsyncSession) -> None:
        """Start a read transaction that sees one snapshot for all its statements."""
        if is_sqlite(self.engine):
            await session.connection()  # a WAL read transaction is already a snapshot
        else:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    async def update_spec(self, spec: dict[str, Any], expected_revision: int) -> dict[str, Any]:
        """Replace a Spec's fields and components if it is still at ``expected_revision``."""
        spec = spec_schema.apply_defaults(spec)
        spec_id = spec.get("id") or ""
        if not spec_id:
            raise InvalidArgument.one("id", "the id of the Spec to update is required")
        if not _is_id(spec_id):
            raise NotFound(f"spec {show(spec_id)} not found")
        async with self.sessions() as session:
            head = await store.get_head(session, spec_id)
        if head is None:
            raise NotFound(f"spec {show(spec_id)} not found")
        identity, violations = await self._identity(spec)
        provider = identity.provider if identity else None
        # A move to another cloud is refused below; that cloud's rules would only add noise.
        same_cloud = identity is not None and identity.provider == head.provider
        violations = (
            write_violations(spec, identity.provider, identity.account_id, self.allowed_git_hosts)
            if identity is not None and same_cloud
            else validate_spec(spec, provider, self.allowed_git_hosts)
        ) + violations
        if expected_revision < 1:
            violations.append(
                FieldViolation("expected_revision", "required: the revision of the Spec you read (>= 1)")
            )
        if provider is not None and provider != head.provider:
            violations.append(
                FieldViolation(
                    "cloud_identity_id",
                    f"cannot move a Spec from {head.provider} to {provider}: its state belongs to {head.provider}",
                )
            )
        for field in WORKSPACE_FIELDS:
            if spec.get(field) and spec.get(field) != getattr(head.row, field):
                violations.append(
                    FieldViolation(
                        field,
                        f"cannot change the workspace of a Spec (is {getattr(head.row, field)!r}); create a new Spec",
                    )
                )
        if violations or identity is None:
            raise InvalidArgument(violations)
        now = _now()
        async with begin_write(self.sessions) as session:
            components = await store.replace_spec(
                session,
                spec_id,
                spec,
                expected_revision,
                now,
                naming.cloud_account(identity.provider, identity.account_id),
            )
        row = head.row
        row.revision = expected_revision + 1
        row.cloud_identity_id = spec["cloud_identity_id"]
        row.terraform_version = spec.get("terraform_version", "")
        row.update_time = now
        return store.assemble(
            store.SpecHead(row, identity.provider, identity.account_id),
            store.parts_from_rows(spec_id, components),
        )

    async def _cancel_late_jobs(self, spec_id: str) -> None:
        """Cancel jobs queued between the question to the snapshot service and the delete.

        Such a job froze the Spec just before it went and would otherwise run (and create
        resources) for a Spec nobody can see any more. Asked once more after the delete;
        from then on QueueJob cannot read the Spec, so nothing new can appear.
        """
        try:
            state = await self.infrastructure.state(spec_id)
            for job_id in state.active_job_ids:
                await self.infrastructure.cancel(job_id)
                log.error(
                    "job %s was queued for spec %s while it was being deleted: cancelled", job_id, spec_id
                )
        except AlethiaError as exc:
            log.error("spec %s deleted, but its jobs could not be checked again: %s", spec_id, exc)

    async def list_specs(
        self, page_size: int, page_token: str, zone_id: str, zones: Sequence[str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """A page of whole Specs in creation order (optionally of one zone), read as one snapshot.

        ``zones``: only Specs of these zones (the caller's); None for every zone.
        """
        if len(zone_id) > 63 or any(ord(c) < 32 or ord(c) == 127 for c in zone_id):
            raise InvalidArgument.one("zone_id", "not a zone id")
        limit = _page_size(page_size)
        scope = f"specs:{zone_id}"
        after = _decode_token(page_token, scope)
        async with self.sessions() as session:
            await self._consistent_read(session)
            heads = await store.list_heads(session, zone_id, after, limit + 1, zones)
            token = ""
            if len(heads) > limit:
                heads = heads[:limit]
                token = _encode_token(heads[-1].row.create_time, heads[-1].row.id, scope)
            parts = await store.read_components(session, [h.row.id for h in heads]) if heads else {}
        return [store.assemble(h, parts.get(h.row.id, {})) for h in heads], token

    async def spec_zone(self, spec_id: str) -> str | None:
        """The zone of a Spec (None when there is none with that id): for access checks."""
        if not _is_id(spec_id):
            return None
        async with self.sessions() as session:
            head = await store.get_head(session, spec_id)
        return head.row.zone_id if head is not None else None

    async def delete_spec(self, spec_id: str, expected_revision: int, abandon: bool = False) -> DeleteOutcome:
        """Delete a Spec and its components; ``expected_revision`` 0 means any revision.

        Refused (FAILED_PRECONDITION) while the snapshot service's job history says the
        Spec may still have infrastructure, unless ``abandon``: then the resources and the
        Terraform state stay where they are, and the answer and a log line say where.
        """
        if expected_revision < 0:
            raise InvalidArgument.one("expected_revision", "must be >= 0 (0 = any revision)")
        if not _is_id(spec_id):
            raise NotFound(f"spec {show(spec_id)} not found")
        async with self.sessions() as session:
            head = await store.get_head(session, spec_id)
        if head is None:
            raise NotFound(f"spec {show(spec_id)} not found")
        if expected_revision and head.row.revision != expected_revision:
            raise Aborted(
                f"spec {spec_id} is at revision {head.row.revision}, not {expected_revision}: re-read it and retry"
            )
        state = await self.infrastructure.state(spec_id)
        outcome = delete_decision(spec_id, head.row.workspace, state, abandon)
        async with begin_write(self.sessions) as session:
            await store.delete_spec(session, spec_id, expected_revision)
        await self._cancel_late_jobs(spec_id)
        if outcome.abandoned:
            log.warning(
                "spec %s deleted with its infrastructure abandoned: workspace %s, state s3://%s/%s "
                "(last DEPLOY %s); the resources are no longer managed by Alethia",
                spec_id,
                outcome.workspace,
                outcome.state_bucket,
                outcome.state_key,
                outcome.last_deploy_job_id or "none",
            )
        return outcome
