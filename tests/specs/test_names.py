"""One Spec, one set of names: workspace key, cloud resource prefix and GitOps paths are owned.

Each refusal is ALREADY_EXISTS naming the field and the owning Spec, and writes nothing;
concurrent writers cannot slip past (unique constraints, and an advisory lock for nested
GitOps paths on Postgres). The migration that introduces the rules reports existing
collisions instead of picking a winner.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from alethia import naming
from alethia.database import create_engine, normalize_url
from alethia.specs.v1 import specs_pb2
from services.specs.app import MIGRATIONS, VERSION_TABLE, migrate
from tests.fixtures.specs import minimal_spec_dict
from tests.specs.conftest import SpecsEnv, rpc_error


def _spec(
    identity_id: str, project: str, env: str = "dev", zone: str = "zone-a", **kw: Any
) -> dict[str, Any]:
    return minimal_spec_dict(
        "aws", cloud_identity_id=identity_id, project_name=project, environment=env, zone_id=zone, **kw
    )


def _repo(url: str, path: str, branch: str = "main") -> dict[str, Any]:
    return {"url": url, "branch": branch, "path": path}


async def _refused(specs: SpecsEnv, data: dict[str, Any], field: str, owner: str) -> str:
    before = await specs.counts()
    err = await rpc_error(specs.create(data))
    assert err.code == grpc.StatusCode.ALREADY_EXISTS, err.message
    hits = [v for v in err.violations if v.field == field]
    assert hits, err.violations
    assert owner in hits[0].description
    assert await specs.counts() == before
    return str(hits[0].description)


def test_names_derive_from_one_place() -> None:
    assert naming.workspace_key("z", "a-b", "c", "us-east-1") == naming.workspace_key(
        "z", "a", "b-c", "us-east-1"
    )
    assert naming.state_key("z/a-b-c-us-east-1") == "z/a-b-c-us-east-1/terraform.tfstate"
    same = {
        naming.normalize_repository_url(u)
        for u in (
            "https://git.example.com/Platform/Apps.git",
            "git@git.example.com:platform/apps",
            "ssh://git@git.example.com:2222/platform/apps.git/",
            "https://git.example.com/platform//apps",
        )
    }
    assert same == {"git.example.com/platform/apps"}
    assert naming.normalize_repository_path("./clusters//a/") == "clusters/a"
    assert naming.gitops_owner_key("https://h/o/r.git", "refs/heads/main", "x/") == naming.gitops_owner_key(
        "git@h:o/r", "main", "./x"
    )
    assert naming.paths_overlap("", "clusters/a")
    assert naming.paths_overlap("clusters", "clusters/a")
    assert not naming.paths_overlap("clusters/a", "clusters/ab")


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://git.example.com/platform/apps.git", False),
        ("git@git.example.com:platform/apps.git", False),
        ("ssh://git@git.example.com/platform/apps.git", False),  # the ssh user is an account name
        ("ssh://git:hunter2@git.example.com/platform/apps.git", True),
        ("https://ghp_token@git.example.com/platform/apps.git", True),
        ("https://user:pw@git.example.com/platform/apps.git", True),
        ("HTTPS://x-access-token@git.example.com/o/r.git", True),
    ],
)
def test_one_credentials_rule_for_create_spec_and_the_mapper(url: str, carries: bool) -> None:
    """CreateSpec and the mapper once disagreed: ``ssh://git@host/...`` passed one and failed the other."""
    import json

    from alethia.errors import InvalidArgument
    from alethia.mapping.spec_config import parse_snapshot
    from services.specs.validation import validate_spec
    from tests.mapper.snapshots import snapshot

    assert naming.repository_url_credentials(url) is carries
    spec = minimal_spec_dict()
    spec["repositories"] = [{"url": url, "branch": "main", "path": "clusters/a"}]
    at_write = {v.field for v in validate_spec(spec, "aws")}
    snap = snapshot("aws")
    snap["repositories"][0]["url"] = url
    try:
        parse_snapshot(json.dumps(snap))
        at_map: set[str] = set()
    except InvalidArgument as exc:
        at_map = {v.field for v in exc.violations}
    assert ("repositories[0].url" in at_write) is carries
    assert ("repositories[0].url" in at_map) is carries


async def test_joined_workspace_collision_is_refused(specs: SpecsEnv) -> None:
    team_a = await specs.identity("aws", name="team-a")
    team_b = await specs.identity("aws", name="team-b", account_id="210987654321")
    first = await specs.create(_spec(team_a.id, "a-b", "c"))
    # Other parts, same joined key (and so the same state object and lock), another account.
    description = await _refused(specs, _spec(team_b.id, "a", "b-c"), "project_name", first.id)
    assert "zone-a/a-b-c-us-east-1" in description
    # A different joined key is another workspace.
    assert (await specs.create(_spec(team_b.id, "a", "b-d"))).project_name == "a"


async def test_cloud_resource_prefix_is_owned_per_account(specs: SpecsEnv) -> None:
    team_a = await specs.identity("aws", name="team-a")
    # Another identity of the SAME account: names in the cloud would still collide.
    team_a2 = await specs.identity("aws", name="team-a-ci", credentials_ref="env:AWS_PROFILE_CI")
    other = await specs.identity("aws", name="team-b", account_id="210987654321")
    first = await specs.create(_spec(team_a.id, "shop", zone="zone-a"))
    description = await _refused(specs, _spec(team_a2.id, "shop", zone="zone-b"), "project_name", first.id)
    assert "shop-dev" in description and "aws:123456789012" in description
    # Another region of the same account is refused too: IAM roles and bucket names carry no region.
    await _refused(
        specs, _spec(team_a.id, "shop", zone="zone-a", region="eu-west-1"), "project_name", first.id
    )
    # Another account holds its own names.
    assert (await specs.create(_spec(other.id, "shop", zone="zone-b"))).zone_id == "zone-b"


async def test_update_cannot_move_into_another_accounts_names(specs: SpecsEnv) -> None:
    team_a = await specs.identity("aws", name="team-a")
    team_b = await specs.identity("aws", name="team-b", account_id="210987654321")
    owner = await specs.create(_spec(team_a.id, "shop", zone="zone-a"))
    mover = await specs.create(_spec(team_b.id, "shop", zone="zone-b"))
    request = specs_pb2.UpdateSpecRequest(spec=mover, expected_revision=1)
    request.spec.cloud_identity_id = team_a.id  # same provider, but team-a's account has shop-dev
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await specs.stub.UpdateSpec(request)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert owner.id in (info.value.details() or "")
    assert (await specs.stub.GetSpec(specs_pb2.GetSpecRequest(id=mover.id))).revision == 1


async def test_gitops_path_clash_is_refused_naming_the_owner(specs: SpecsEnv) -> None:
    ident = await specs.identity("aws")
    url = "https://git.example.com/platform/apps.git"
    owner = await specs.create(_spec(ident.id, "shop", repositories=[_repo(url, "clusters/shop")]))
    # The same path, spelled differently: ssh form, other case, trailing slash, ./ prefix.
    for other_url, path in [
        ("git@git.example.com:Platform/apps", "clusters/shop/"),
        ("https://GIT.example.com/platform/apps", "./clusters/shop"),
    ]:
        await _refused(
            specs,
            _spec(ident.id, "cart", repositories=[_repo(other_url, path)]),
            "repositories[0].path",
            owner.id,
        )
    # Nested either way: the parent or a child of an owned path.
    for path in ("clusters", "clusters/shop/extra", ""):
        data = _spec(
            ident.id, "cart", repositories=[_repo("https://git.example.com/o/r.git", "a"), _repo(url, path)]
        )
        await _refused(specs, data, "repositories[1].path", owner.id)
    # Another branch or a sibling path is free.
    sibling = await specs.create(_spec(ident.id, "cart", repositories=[_repo(url, "clusters/cart")]))
    assert (
        await specs.create(_spec(ident.id, "blog", repositories=[_repo(url, "clusters/shop", "prod")]))
    ).id
    # An update may not take the owned path either; the owner may keep its own.
    request = specs_pb2.UpdateSpecRequest(spec=sibling, expected_revision=1)
    request.spec.repositories[0].path = "clusters/shop"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await specs.stub.UpdateSpec(request)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS and owner.id in (info.value.details() or "")
    again = specs_pb2.UpdateSpecRequest(spec=owner, expected_revision=1)
    again.spec.cluster.node_max_size = 5
    assert (await specs.stub.UpdateSpec(again)).revision == 2


async def test_paths_with_like_wildcards_and_case_are_compared_exactly(specs: SpecsEnv) -> None:
    """The path prefilter in SQL (a byte range) neither hides an owner nor invents one."""
    ident = await specs.identity("aws")
    url = f"https://git.example.com/platform/w{uuid.uuid4().hex[:6]}.git"
    owner = await specs.create(_spec(ident.id, "wild", repositories=[_repo(url, "apps/a_b%/x")]))
    await _refused(
        specs,
        _spec(ident.id, "wild2", repositories=[_repo(url, "apps/a_b%")]),
        "repositories[0].path",
        owner.id,
    )
    # "_" and "%" are not wildcards here, and paths keep their case (SQLite's LIKE ignores it).
    for i, path in enumerate(("apps/aXbY", "apps/a_b%x", "apps/A_B%")):
        assert (await specs.create(_spec(ident.id, f"free{i}", repositories=[_repo(url, path)]))).id


async def test_paths_at_the_edges_of_the_byte_range_are_compared_exactly(specs: SpecsEnv) -> None:
    """Below ``p`` is the range ``p/`` up to ``p0``: its edges and multi-byte paths."""
    ident = await specs.identity("aws")
    url = f"https://git.example.com/platform/e{uuid.uuid4().hex[:6]}.git"
    owner = await specs.create(_spec(ident.id, "edge", repositories=[_repo(url, "apps/ü")]))
    for i, path in enumerate(("apps/ü/x", "apps/ü/ü", "apps")):
        await _refused(
            specs,
            _spec(ident.id, f"in{i}", repositories=[_repo(url, path)]),
            "repositories[0].path",
            owner.id,
        )
    # "-" sorts before "/", "0" is the range's (excluded) end, "ü0" and "üx" only share a prefix.
    for i, path in enumerate(("apps/ü-x", "apps/ü0", "apps/üx", "apps/u/x")):
        assert (await specs.create(_spec(ident.id, f"out{i}", repositories=[_repo(url, path)]))).id


async def test_the_overlap_check_reads_the_paths_index_not_the_branch(database_url: str) -> None:
    """The holders statement's path range is an index range on (branch_key, norm_path).

    A prefilter the index cannot answer reads every entry of the branch on each write: all
    of a company's Specs when they share one apps repository. Here 3,000 entries share a
    branch (the spec rows they belong to are left out: the foreign key is dropped in this
    throwaway database), and the plan must search the index by the path's range, also when
    Postgres plans the statement without its parameters' values (a cached prepared statement).
    """
    from services.specs.store import NameClaims, holders_statement

    await migrate(database_url)
    branch = "k" * 64
    claims = NameClaims(
        spec_id=str(uuid.uuid4()), workspace="w", account="a", prefix="p", repos=[],
        entries=[(0, branch, "apps/s1")],
    )  # fmt: skip
    pg = not database_url.startswith("sqlite")
    sql, args = holders_statement(claims, pg)
    entries = [(f"s{i}", 0, "u", "main", f"apps/s{i}", branch, f"o{i}", f"apps/s{i}") for i in range(3000)]
    entries += [
        (f"t{i}", 0, "u", "main", f"apps/s1/t{i}", branch, f"p{i}", f"apps/s1/t{i}") for i in range(3)
    ]
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            if pg:
                await driver.execute(
                    "ALTER TABLE spec_repositories DROP CONSTRAINT fk_spec_repositories_spec_id_specs"
                )
                await driver.executemany(
                    "INSERT INTO spec_repositories VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", entries
                )
                await driver.execute("ANALYZE spec_repositories")
                # As the statement runs once it is cached: planned without its parameters' values.
                await driver.execute("SET plan_cache_mode = force_generic_plan")
                found = await driver.fetch(sql, *args)
                await driver.execute(f"PREPARE holders AS {sql}")
                literals = ", ".join("'" + str(a).replace("'", "''") + "'" for a in args)
                plan = "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN EXECUTE holders({literals})"))
                conds = [line for line in plan.splitlines() if "Index Cond:" in line]
                assert any("norm_path ~>=~ $" in c and "norm_path ~<~ $" in c for c in conds), plan
            else:
                await driver.execute("PRAGMA foreign_keys = OFF")
                await driver.executemany(
                    "INSERT INTO spec_repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?)", entries
                )
                await driver.commit()
                found = await (await driver.execute(sql, args)).fetchall()
                cur = await driver.execute("EXPLAIN QUERY PLAN " + sql, args)
                plan = "\n".join(str(r[-1]) for r in await cur.fetchall())
                assert "(branch_key=? AND norm_path>? AND norm_path<?)" in plan, plan
    finally:
        await engine.dispose()
    # The holder of the path itself and the three below it; none of the 2,999 others.
    assert sorted(r[-1] for r in found) == ["apps/s1", "apps/s1/t0", "apps/s1/t1", "apps/s1/t2"]


async def test_concurrent_claims_of_one_path_exactly_one_wins(specs: SpecsEnv) -> None:
    ident = await specs.identity("aws")
    url = "https://git.example.com/platform/apps.git"

    async def create(i: int) -> Any:
        # Nested and equal paths at once: only one Spec may end up owning the subtree.
        path = "clusters/race" if i % 2 else f"clusters/race/{i}"
        try:
            return await specs.create(_spec(ident.id, f"race{i}", repositories=[_repo(url, path)]))
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    results = await asyncio.gather(*(create(i) for i in range(6)))
    winners = [r for r in results if isinstance(r, specs_pb2.Spec)]
    paths = [w.repositories[0].path for w in winners]
    assert not any(naming.paths_overlap(a, b) for i, a in enumerate(paths) for b in paths[i + 1 :]), paths
    assert len(winners) >= 1
    assert [r for r in results if not isinstance(r, specs_pb2.Spec)] == [grpc.StatusCode.ALREADY_EXISTS] * (
        len(results) - len(winners)
    )


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url))
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


async def test_migration_reports_existing_collisions_and_changes_nothing(database_url: str) -> None:
    await asyncio.to_thread(command.upgrade, _alembic(database_url), "0001")
    now = datetime.now(UTC)
    ident = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(3)]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO cloud_identities (id, name, provider, account_id, credentials_ref, create_time)"
                    " VALUES (:id, 'team', 'aws', '123456789012', 'env:AWS_PROFILE', :t)"
                ),
                {"id": ident, "t": now},
            )
            # ids[0] and ids[1] share the joined workspace key; ids[2] shares ids[0]'s GitOps path.
            for sid, project, env in [(ids[0], "a-b", "c"), (ids[1], "a", "b-c"), (ids[2], "other", "dev")]:
                await conn.execute(
                    text(
                        "INSERT INTO specs (id, zone_id, project_name, environment, region, cloud_identity_id,"
                        " terraform_version, revision, create_time, update_time)"
                        " VALUES (:id, 'z', :p, :e, 'us-east-1', :ident, '', 1, :t, :t)"
                    ),
                    {"id": sid, "p": project, "e": env, "ident": ident, "t": now},
                )
            for sid, path in [(ids[0], "clusters/x"), (ids[2], "clusters/x/")]:
                await conn.execute(
                    text(
                        "INSERT INTO spec_repositories (spec_id, position, url, branch, path)"
                        " VALUES (:id, 0, 'https://git.example.com/o/apps.git', 'main', :path)"
                    ),
                    {"id": sid, "path": path},
                )
        with pytest.raises(Exception) as info:
            await migrate(database_url)
        report = str(info.value)
        assert "z/a-b-c-us-east-1" in report and ids[0] in report and ids[1] in report
        assert "GitOps path" in report and ids[2] in report
        async with engine.connect() as conn:
            version = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()
            assert version == "0001"
            assert (await conn.execute(text("SELECT count(*) FROM specs"))).scalar() == 3
        # Resolving the collisions (here: deleting two Specs) lets the upgrade through.
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM spec_repositories WHERE spec_id = :id"), {"id": ids[2]})
            await conn.execute(text("DELETE FROM specs WHERE id IN (:a, :b)"), {"a": ids[1], "b": ids[2]})
        await migrate(database_url)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT workspace, resource_prefix FROM specs"))).one()
            assert tuple(row) == ("z/a-b-c-us-east-1", "a-b-c")
    finally:
        await engine.dispose()
