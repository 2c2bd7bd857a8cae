"""SpecService over a real channel on SQLite and Postgres: round trips, revisions, lists, deletes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from alethia import spec_schema
from alethia.rpc.client import connect
from alethia.specfile import spec_from_dict, spec_to_dict
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from tests.fixtures.specs import PROVIDERS, full_spec_dict, minimal_spec_dict, start_specs
from tests.specs.conftest import Pipeline, SpecsEnv, rpc_error

NAMED_LISTS = ("databases", "caches", "queues", "topics", "nosql_tables", "storage_buckets", "secrets")


def expected_stored(data: dict[str, Any]) -> dict[str, Any]:
    """What the service must give back for ``data``: same values, lists ordered by name."""
    d = spec_to_dict(spec_from_dict(spec_schema.apply_defaults(data)), include_output_only=False)
    d["repositories"].sort(key=lambda r: (r["url"], r["branch"], r["path"]))
    for key in NAMED_LISTS:
        d[key].sort(key=lambda x: x["name"])
    for topic in d["topics"]:
        topic["subscriptions"].sort(key=lambda s: s["name"])
    return d


async def test_full_spec_round_trips_field_for_field(specs: SpecsEnv) -> None:
    for provider in PROVIDERS:
        ident = await specs.identity(provider)
        data = full_spec_dict(provider, cloud_identity_id=ident.id)
        created = await specs.create(data)
        got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
        assert got == created
        assert spec_to_dict(got, include_output_only=False) == expected_stored(data)
        assert uuid.UUID(got.id)
        assert got.revision == 1
        assert (got.provider, got.cloud_account_id) == (provider, ident.account_id)
        assert got.create_time == got.update_time and got.create_time.seconds > 0
        # The unsorted secrets of the example come back ordered by name.
        assert [s.name for s in got.secrets] == sorted(s["name"] for s in data["secrets"])
    listed = await specs.stub.ListSpecs(specs_pb2.ListSpecsRequest())
    assert {s.provider for s in listed.specs} == set(PROVIDERS)
    for s in listed.specs:
        assert s == await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=s.id))


async def test_minimal_spec_round_trips(specs: SpecsEnv) -> None:
    ident = await specs.identity("gcp")
    data = minimal_spec_dict("gcp", cloud_identity_id=ident.id)
    created = await specs.create(data)
    got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
    assert got == created
    assert not got.HasField("dns")
    assert spec_to_dict(got, include_output_only=False) == expected_stored(data)
    counts = await specs.counts()
    assert counts["spec_network"] == counts["spec_cluster"] == 1
    assert counts["spec_dns"] == counts["spec_databases"] == counts["spec_secrets"] == 0


async def test_update_replaces_components_and_bumps_revision(specs: SpecsEnv) -> None:
    created = await specs.create_full("aws")
    data = spec_to_dict(created, include_output_only=False)
    data["databases"] = data["databases"][:1]
    data["databases"][0]["storage_gb"] = 200
    data["queues"].append({"name": "audit", "config": {"fifo": True}})
    data["dns"] = None
    data["terraform_version"] = ">= 1.9"
    request = specs_pb2.UpdateSpecRequest(spec=spec_from_dict(data), expected_revision=1)
    request.spec.id = created.id
    updated = await specs.stub.UpdateSpec(request)
    assert updated.revision == 2 and updated.id == created.id
    assert updated.create_time == created.create_time
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()
    got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
    assert got == updated
    assert spec_to_dict(got, include_output_only=False) == expected_stored(data)
    counts = await specs.counts()
    assert counts["spec_databases"] == 1 and counts["spec_queues"] == 3 and counts["spec_dns"] == 0

    # A writer that read revision 1 lost: ABORTED, nothing changes.
    stale = await rpc_error(specs.stub.UpdateSpec(request))
    assert stale.code == grpc.StatusCode.ABORTED
    assert await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id)) == updated


async def test_update_refuses_workspace_change_and_unknown_spec(specs: SpecsEnv) -> None:
    created = await specs.create_full("aws")
    request = specs_pb2.UpdateSpecRequest(spec=created, expected_revision=1)
    request.spec.environment = "staging"
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["environment"]
    request.spec.environment = created.environment
    # Another identity of the same provider is fine; another provider is not (the state is that cloud's).
    gcp = await specs.identity("gcp")
    request.spec.cloud_identity_id = gcp.id
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert sorted(v.field for v in err.violations) == ["cloud_identity_id", "region"]
    request.spec.cloud_identity_id = created.cloud_identity_id
    request.expected_revision = 0
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert [v.field for v in err.violations] == ["expected_revision"]
    request.spec.id = str(uuid.uuid4())
    request.expected_revision = 1
    assert (await rpc_error(specs.stub.UpdateSpec(request))).code == grpc.StatusCode.NOT_FOUND
    # Same values again: a new revision with identical content.
    request.spec.id = created.id
    again = await specs.stub.UpdateSpec(request)
    assert again.revision == 2
    assert spec_to_dict(again, include_output_only=False) == spec_to_dict(created, include_output_only=False)


async def test_concurrent_updates_with_the_same_revision_exactly_one_wins(specs: SpecsEnv) -> None:
    created = await specs.create_full("aws")
    writers = 6

    async def update(i: int) -> Any:
        data = spec_to_dict(created, include_output_only=False)
        data["databases"][0]["storage_gb"] = 100 + i
        data["caches"] = [{"name": f"cache-{i}", "node_type": "cache.t4g.small", "cluster_size": 1}]
        request = specs_pb2.UpdateSpecRequest(spec=spec_from_dict(data), expected_revision=1)
        request.spec.id = created.id
        try:
            return await specs.stub.UpdateSpec(request)
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    results = await asyncio.gather(*(update(i) for i in range(writers)))
    winners = [r for r in results if isinstance(r, specs_pb2.Spec)]
    assert len(winners) == 1, results
    assert [r for r in results if not isinstance(r, specs_pb2.Spec)] == [grpc.StatusCode.ABORTED] * (
        writers - 1
    )
    got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
    assert got == winners[0] and got.revision == 2
    # Only the winner's components exist: the losers wrote nothing.
    counts = await specs.counts()
    assert counts["spec_caches"] == 1 and got.caches[0].name == winners[0].caches[0].name


async def test_get_spec_is_consistent_while_updates_commit(specs: SpecsEnv) -> None:
    """GetSpec never mixes two revisions while updates commit (one statement, one snapshot)."""
    created = await specs.create_full("aws")

    def marked(rev: int) -> specs_pb2.Spec:
        data = spec_to_dict(created, include_output_only=False)
        for key in ("caches", "queues", "storage_buckets", "secrets"):
            for item in data[key]:
                item["name"] = f"{item['name'][:40]}-r{rev}"
        data["terraform_version"] = f">= 1.{rev}"
        return spec_from_dict(data)

    stop = asyncio.Event()

    async def writer() -> None:
        rev = 1
        while not stop.is_set() and rev < 15:
            request = specs_pb2.UpdateSpecRequest(spec=marked(rev + 1), expected_revision=rev)
            request.spec.id = created.id
            await specs.stub.UpdateSpec(request)
            rev += 1

    async def reader() -> int:
        # Reads until the writer is done, then once more: a fast GetSpec could otherwise read
        # 12 times before the first update committed and see nothing to check.
        seen = 0
        while True:
            last = task.done()
            got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
            if got.revision > 1:
                suffix = f"-r{got.revision}"
                names = [
                    x.name
                    for key in ("caches", "queues", "storage_buckets", "secrets")
                    for x in getattr(got, key)
                ]
                assert all(n.endswith(suffix) for n in names), (got.revision, names)
                assert got.terraform_version == f">= 1.{got.revision}"
                seen += 1
            if last:
                return seen

    task = asyncio.create_task(writer())
    seen = sum(await asyncio.gather(reader(), reader()))
    stop.set()
    await task
    assert seen > 0


async def test_duplicate_workspace_is_refused(specs: SpecsEnv) -> None:
    first = await specs.create_full("aws")
    before = await specs.counts()
    data = full_spec_dict("aws", cloud_identity_id=first.cloud_identity_id)
    data["databases"] = []  # different content, same workspace
    err = await rpc_error(specs.create(data))
    assert err.code == grpc.StatusCode.ALREADY_EXISTS
    assert "zone-acme/payments-prod-us-east-1" in err.message
    assert await specs.counts() == before
    # Another environment is another workspace (with a GitOps path of its own).
    data["environment"] = "staging"
    data["repositories"][0]["path"] = "clusters/payments-staging"
    assert (await specs.create(data)).environment == "staging"


async def test_concurrent_creates_of_one_workspace_exactly_one_wins(specs: SpecsEnv) -> None:
    ident = await specs.identity("aws")
    data = full_spec_dict("aws", cloud_identity_id=ident.id)

    async def create() -> Any:
        try:
            return await specs.create(data)
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    results = await asyncio.gather(*(create() for _ in range(4)))
    assert sum(isinstance(r, specs_pb2.Spec) for r in results) == 1
    assert [r for r in results if not isinstance(r, specs_pb2.Spec)] == [grpc.StatusCode.ALREADY_EXISTS] * 3
    assert (await specs.counts())["specs"] == 1


async def test_list_pagination_is_stable_while_inserting(specs: SpecsEnv) -> None:
    ident = await specs.identity("aws")

    async def add(name: str, zone: str = "zone-a") -> str:
        data = minimal_spec_dict("aws", cloud_identity_id=ident.id, project_name=name, zone_id=zone)
        return (await specs.create(data)).id

    original = [await add(f"p{i:02d}") for i in range(11)]
    other_zone = await add("elsewhere", zone="zone-b")
    seen: list[str] = []
    token = ""
    inserted: list[str] = []
    pages = 0
    while True:
        page = await specs.stub.ListSpecs(
            specs_pb2.ListSpecsRequest(page_size=4, page_token=token, zone_id="zone-a")
        )
        assert len(page.specs) <= 4
        seen += [s.id for s in page.specs]
        assert all(s.zone_id == "zone-a" and s.cluster.instance_types for s in page.specs)
        pages += 1
        # Insert while walking: never a duplicate, never a skipped original.
        inserted.append(await add(f"new{pages:02d}"))
        token = page.next_page_token
        if not token:
            break
        assert pages < 20
    assert len(seen) == len(set(seen))
    assert seen[: len(original)] == original  # creation order
    assert set(seen) - set(original) <= set(inserted)
    assert other_zone not in seen
    everything = await specs.stub.ListSpecs(specs_pb2.ListSpecsRequest(page_size=500))
    assert len(everything.specs) == len(original) + len(inserted) + 1 and not everything.next_page_token

    # A token only works with the filter it came from; garbage is INVALID_ARGUMENT, not INTERNAL.
    first = await specs.stub.ListSpecs(specs_pb2.ListSpecsRequest(page_size=2, zone_id="zone-a"))
    for bad in (
        specs_pb2.ListSpecsRequest(page_token=first.next_page_token, zone_id="zone-b"),
        specs_pb2.ListSpecsRequest(page_token="not-a-token"),
        specs_pb2.ListSpecsRequest(page_token="eyJ0IjogMX0"),
        specs_pb2.ListSpecsRequest(page_size=-1),
        specs_pb2.ListSpecsRequest(zone_id="zone\x00a"),
    ):
        err = await rpc_error(specs.stub.ListSpecs(bad))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT, bad
    # page_size is capped at 500, defaulted to 50.
    assert len((await specs.stub.ListSpecs(specs_pb2.ListSpecsRequest(page_size=10_000))).specs) == len(
        everything.specs
    )


async def test_delete_cascades_to_every_component_table(pipeline: Pipeline) -> None:
    specs = pipeline.specs  # a delete asks the snapshot service whether infrastructure remains
    keep = await specs.create_full("aws", zone_id="zone-keep")
    gone = await specs.create_full("aws", zone_id="zone-gone")
    with_both = await specs.counts()
    assert (
        await rpc_error(specs.stub.DeleteSpec(specs_pb2.DeleteSpecRequest(id=gone.id, expected_revision=7)))
    ).code == (grpc.StatusCode.ABORTED)
    await specs.stub.DeleteSpec(specs_pb2.DeleteSpecRequest(id=gone.id, expected_revision=1))
    after = await specs.counts()
    for table, count in with_both.items():
        if table == "cloud_identities":
            assert after[table] == count
        else:  # every table held the same number of rows for both Specs
            assert after[table] * 2 == count, table
    err = await rpc_error(specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=gone.id)))
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert (await rpc_error(specs.stub.DeleteSpec(specs_pb2.DeleteSpecRequest(id=gone.id)))).code == (
        grpc.StatusCode.NOT_FOUND
    )
    assert (await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=keep.id))) == keep


async def test_unknown_ids_are_not_found(specs: SpecsEnv) -> None:
    for spec_id in (str(uuid.uuid4()), "nope", "", "x" * 1000, "\x00"):
        err = await rpc_error(specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=spec_id)))
        assert err.code == grpc.StatusCode.NOT_FOUND, spec_id
        err = await rpc_error(specs.stub.GetCloudIdentity(specs_pb2.GetCloudIdentityRequest(id=spec_id)))
        assert err.code == grpc.StatusCode.NOT_FOUND, spec_id


async def test_cloud_identities(specs: SpecsEnv) -> None:
    made = [await specs.identity(p) for p in PROVIDERS]
    for ident in made:
        assert await specs.stub.GetCloudIdentity(specs_pb2.GetCloudIdentityRequest(id=ident.id)) == ident
        assert ident.create_time.seconds > 0
    page1 = await specs.stub.ListCloudIdentities(specs_pb2.ListCloudIdentitiesRequest(page_size=2))
    page2 = await specs.stub.ListCloudIdentities(
        specs_pb2.ListCloudIdentitiesRequest(page_size=2, page_token=page1.next_page_token)
    )
    assert [i.id for i in [*page1.identities, *page2.identities]] == [i.id for i in made]
    assert not page2.next_page_token
    before = await specs.counts()
    dup = await rpc_error(specs.identity("aws"))
    assert dup.code == grpc.StatusCode.ALREADY_EXISTS
    bad = specs_pb2.CloudIdentity(
        name="Bad Name", provider="oracle", account_id="1", credentials_ref="AKIAIOSFODNN7EXAMPLE"
    )
    err = await rpc_error(specs.stub.CreateCloudIdentity(specs_pb2.CreateCloudIdentityRequest(identity=bad)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    # The account id is judged per provider: with an unknown provider only the provider is reported.
    assert sorted(v.field for v in err.violations) == [
        "identity.credentials_ref",
        "identity.name",
        "identity.provider",
    ]
    assert await specs.counts() == before


async def test_health_reflection_token_and_restart(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'specs.db'}"
    service = await start_specs(url, service_token="t0ken")
    async with connect(service.address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="alethia.specs.v1.SpecService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for msg in call for s in msg.list_services_response.service}
        assert "alethia.specs.v1.SpecService" in names
        err = await rpc_error(specs_pb2_grpc.SpecServiceStub(channel).ListSpecs(specs_pb2.ListSpecsRequest()))
        assert err.code == grpc.StatusCode.UNAUTHENTICATED
    async with connect(service.address, auth_token="t0ken") as channel:
        env = SpecsEnv(url, service, channel, specs_pb2_grpc.SpecServiceStub(channel))
        created = await env.create_full("azure")
    await service.stop(None)
    # Restart on the same database: migrations are idempotent and the data is still there.
    service = await start_specs(url)
    async with connect(service.address) as channel:
        got = await specs_pb2_grpc.SpecServiceStub(channel).GetSpec(specs_pb2.GetSpecRequest(id=created.id))
        assert got == created
    await service.stop(None)


def test_settings_come_from_the_environment(monkeypatch: Any) -> None:
    from services.specs.settings import SpecsSettings

    monkeypatch.setenv("ALETHIA_SPECS_DATABASE_URL", "postgresql://db/specs")
    monkeypatch.setenv("ALETHIA_SPECS_LISTEN", "0.0.0.0:6000")
    monkeypatch.setenv("ALETHIA_SERVICE_TOKEN", "tok")
    monkeypatch.setenv("DATABASE_URL", "not-ours")
    settings = SpecsSettings()
    assert (settings.database_url, settings.listen, settings.service_token) == (
        "postgresql://db/specs",
        "0.0.0.0:6000",
        "tok",
    )


async def test_backup_retention_days_default_zero_and_bounds(specs: SpecsEnv) -> None:
    """Absent: the declared default (7); 0 is a value, not "absent" (refused on AWS, whose
    template keeps backups on, naming the field); 36 is outside the declared 0..35."""
    ident = await specs.identity("aws")
    data = full_spec_dict("aws", cloud_identity_id=ident.id)
    data["databases"][0].pop("backup_retention_days", None)
    data["databases"][1]["backup_retention_days"] = 1
    created = await specs.create(data)
    got = await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))
    days = {d.name: d.backup_retention_days for d in got.databases}
    assert days == {data["databases"][0]["name"]: 7, data["databases"][1]["name"]: 1}
    assert all(d.HasField("backup_retention_days") for d in got.databases)

    # 0 survives the proto round trip and the defaults as a value (presence, not zero = absent).
    zero = spec_schema.apply_defaults(
        spec_to_dict(spec_from_dict({"databases": [{"name": "x", "backup_retention_days": 0}]}))
    )
    assert zero["databases"][0]["backup_retention_days"] == 0

    before = await specs.counts()
    for value, description in (
        (0, "must be at least 1 on aws (backups stay on)"),
        (36, "must be between 0 and 35"),
    ):
        bad = full_spec_dict("aws", cloud_identity_id=ident.id, environment="qa")
        bad["databases"][1]["backup_retention_days"] = value
        err = await rpc_error(specs.create(bad))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(v.field, v.description) for v in err.violations] == [
            ("databases[1].backup_retention_days", description)
        ]
    assert await specs.counts() == before  # nothing written


async def test_create_refuses_what_the_cloud_would_refuse_at_plan(specs: SpecsEnv) -> None:
    """The three mistakes of issue 12 fail at CreateSpec now, by field path, and write nothing."""
    ident = await specs.identity("gcp")
    data = full_spec_dict("gcp", cloud_identity_id=ident.id)
    data["cluster"]["provider_config"]["colour"] = "blue"  # no such GKE option
    data["terraform_version"] = "==1.9.*"  # Python syntax, not Terraform's
    data["databases"][0]["engine"] = "aurora-postgresql"  # AWS only
    before = await specs.counts()
    err = await rpc_error(specs.create(data))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field: v.description for v in err.violations}
    assert set(fields) == {"cluster.provider_config.colour", "terraform_version", "databases[0].engine"}
    assert fields["cluster.provider_config.colour"].startswith("unknown key for gcp (accepted: ")
    assert "aurora-postgresql" not in fields["databases[0].engine"].split("one of ")[-1]
    assert await specs.counts() == before


async def test_repository_on_a_host_not_allowed_is_refused_at_create_and_update(specs: SpecsEnv) -> None:
    """The platform's allow-list (``ALETHIA_GIT_ALLOWED_HOSTS``) holds at create and update; nothing written."""
    ident = await specs.identity("aws")
    data = full_spec_dict("aws", cloud_identity_id=ident.id)
    data["repositories"][0]["url"] = "https://git.attacker.example.net/platform/apps.git"
    before = await specs.counts()
    err = await rpc_error(specs.create(data))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["repositories[0].url"]
    assert "not an allowed repository host" in err.violations[0].description
    assert await specs.counts() == before
    data["repositories"][0]["url"] = "https://git.example.com/platform/apps.git"
    created = await specs.create(data)
    request = specs_pb2.UpdateSpecRequest(spec=created, expected_revision=1)
    request.spec.repositories[0].url = "https://git.example.com/platform/../../other/apps.git"
    request.spec.repositories[0].branch = "HEAD"
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert sorted(v.field for v in err.violations) == ["repositories[0].branch", "repositories[0].url"]
    request.spec.repositories[0].url = "https://git.attacker.example.net/platform/apps.git"
    request.spec.repositories[0].branch = "main"
    err = await rpc_error(specs.stub.UpdateSpec(request))
    assert [v.field for v in err.violations] == ["repositories[0].url"]
    assert (await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=created.id))).revision == 1
