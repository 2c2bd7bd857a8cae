"""The CLI's contract with people and scripts, without a stack.

JSON shape of jobs, one ``error:`` line per problem naming the field, exit codes, and how
the CLI finds (or fails to find) a stack. Calls go to real gRPC servers on port 0 whose
servicers answer canned responses and the domain errors the real services raise, through
the real error interceptor, so the CLI decodes exactly what it would get on the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alethia.cli.render import (
    EXIT_ERROR,
    EXIT_JOB_FAILED,
    EXIT_UNAVAILABLE,
    error_lines,
    job_exit_code,
    job_to_dict,
)
from alethia.cli.target import resolve
from alethia.errors import (
    AlethiaError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Unavailable,
)
from alethia.events.v1 import events_pb2
from alethia.rpc.server import create_server
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.specs.v1 import specs_pb2, specs_pb2_grpc
from alethia.stack.datadir import DataDir, StackInfo, StackLock
from alethia.stack.infra import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_JOB_KEYS = {
    "id", "spec_id", "type", "status", "config_hash", "queue_position", "changes", "cost", "outputs", "error",
}  # fmt: skip
TOKEN = "cli-test-token"


def _job(status: int = events_pb2.SUCCEEDED, **kw: Any) -> snapshot_pb2.Job:
    job = snapshot_pb2.Job(
        id="job-1",
        spec_id="spec-1",
        type=events_pb2.PLAN,
        status=status,  # type: ignore[arg-type]
        config_hash="ab" * 32,
        workspace="zone-acme/payments-prod-us-east-1",
        changes=events_pb2.ChangeSummary(
            add=3,
            change=1,
            destroy=0,
            resources=[events_pb2.ResourceChange(address="terraform_data.vpc", actions=["create"])],
        ),
        cost=events_pb2.CostEstimate(status="skipped", reason="infracost is not installed"),
        outputs=[
            events_pb2.Output(name="cluster_endpoint", value_json='"https://eks.example"'),
            events_pb2.Output(name="database_endpoints", value_json='{"ledger": "ledger.db:5432"}'),
            events_pb2.Output(name="admin_password", sensitive=True, value_json='"(sensitive)"'),
        ],
        **kw,
    )
    return job


# ---------------------------------------------------------------- pure rendering


def test_job_json_has_the_documented_shape() -> None:
    d = job_to_dict(_job())
    assert set(d) >= REQUIRED_JOB_KEYS
    assert d["type"] == "PLAN" and d["status"] == "SUCCEEDED"
    assert d["changes"]["add"] == 3 and d["changes"]["change"] == 1 and d["changes"]["destroy"] == 0
    assert d["changes"]["resources"] == [{"address": "terraform_data.vpc", "actions": ["create"]}]
    # Outputs are JSON values, not JSON strings; sensitive ones stay redacted and are listed.
    assert d["outputs"]["database_endpoints"] == {"ledger": "ledger.db:5432"}
    assert d["outputs"]["admin_password"] == "(sensitive)"
    assert d["sensitive_outputs"] == ["admin_password"]
    assert d["cost"] == {"status": "skipped", "reason": "infracost is not installed"}
    assert d["error"] is None and d["plan_job_id"] is None
    json.dumps(d)  # serializable as is


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (events_pb2.SUCCEEDED, 0),
        (events_pb2.QUEUED, 0),
        (events_pb2.FAILED, EXIT_JOB_FAILED),
        (events_pb2.ERRORED, EXIT_JOB_FAILED),
        (events_pb2.CANCELLED, EXIT_JOB_FAILED),
    ],
)
def test_job_exit_code(status: int, code: int) -> None:
    assert job_exit_code(_job(status)) == code


def test_error_lines_one_per_problem_field_first() -> None:
    err = InvalidArgument(
        [
            FieldViolation("network.cidr_block", "not a valid\nIPv4 network"),
            FieldViolation("databases[1].engine", "unknown"),
        ]
    )
    assert error_lines(err) == [
        "error: network.cidr_block: not a valid IPv4 network",
        "error: databases[1].engine: unknown",
    ]
    stale = FailedPrecondition(
        "the Spec changed since plan job p1: re-plan",
        [PreconditionViolation("CONFIG_HASH", "network.cidr_block", "changed")],
    )
    assert error_lines(stale) == [
        "error: the Spec changed since plan job p1: re-plan",
        "error: network.cidr_block: changed",
    ]


# ---------------------------------------------------------------- finding the stack


def test_resolve_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="alethia up"):
        resolve(str(tmp_path / "nowhere"), env={})


def test_resolve_a_stopped_stack_says_it_is_not_running(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create()
    _info(data, "running").write(data.stack_file)  # written by a stack that then died
    with pytest.raises(Unavailable, match="not running"):
        resolve(str(tmp_path), env={})


def test_resolve_a_running_stack_reads_addresses_and_token(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create()
    token = data.service_token()
    assert data.token_file.stat().st_mode & 0o777 == 0o600
    _info(data, "running").write(data.stack_file)
    lock = StackLock(data.lock_file)
    lock.acquire()
    try:
        target = resolve(None, env={"ALETHIA_STACK_DIR": str(tmp_path)})
        assert target.addresses["specs"] == "127.0.0.1:1111" and target.token == token
        # An explicit address wins for its service; an explicit token wins over the file.
        target = resolve(
            str(tmp_path), env={"ALETHIA_SPECS_ADDR": "10.0.0.1:9", "ALETHIA_SERVICE_TOKEN": "t"}
        )
        assert target.addresses["specs"] == "10.0.0.1:9" and target.addresses["snapshot"] == "127.0.0.1:2222"
        assert target.token == "t"
    finally:
        lock.release()


def _info(data: DataDir, status: str) -> StackInfo:
    return StackInfo(
        data_dir=str(data.root),
        pid=os.getpid(),
        status=status,
        services={
            "specs": "127.0.0.1:1111",
            "snapshot": "127.0.0.1:2222",
            "mapper": "x:3",
            "executor": "x:4",
        },
        nats_url="",
        s3_endpoint="",
        token_file=str(data.token_file),
    )


# ---------------------------------------------------------------- the CLI over gRPC


class FakeSpecs(specs_pb2_grpc.SpecServiceServicer):
    async def CreateSpec(self, request: specs_pb2.CreateSpecRequest, context: Any) -> specs_pb2.Spec:
        raise InvalidArgument(
            [
                FieldViolation("network.cidr_block", "host bits must be zero"),
                FieldViolation("databases[1].engine", "must be one of postgres, mysql"),
            ]
        )

    async def GetSpec(self, request: specs_pb2.GetSpecRequest, context: Any) -> specs_pb2.Spec:
        for spec in LISTED_SPECS:
            if spec.id == request.id:
                return spec
        raise NotFound(f"spec {request.id} not found")

    async def ListSpecs(
        self, request: specs_pb2.ListSpecsRequest, context: Any
    ) -> specs_pb2.ListSpecsResponse:
        return specs_pb2.ListSpecsResponse(
            specs=[s for s in LISTED_SPECS if request.zone_id in ("", s.zone_id)]
        )


LISTED_SPECS = [
    specs_pb2.Spec(id="spec-a", revision=2, zone_id="zone-a", project_name="pay", provider="aws"),
    specs_pb2.Spec(id="spec-b", revision=1, zone_id="zone-b", project_name="web", provider="gcp"),
]


class FakeJobs(snapshot_pb2_grpc.SnapshotServiceServicer):
    def __init__(self) -> None:
        self.final = events_pb2.FAILED

    async def QueueJob(self, request: snapshot_pb2.QueueJobRequest, context: Any) -> snapshot_pb2.Job:
        if request.plan_job_id:
            raise FailedPrecondition(
                f"the Spec changed since plan job {request.plan_job_id}: re-plan before deploying",
                [PreconditionViolation("CONFIG_HASH", "network.cidr_block", "changed since the plan")],
            )
        assert request.idempotency_key and request.requested_by.startswith("cli")
        return _job(events_pb2.QUEUED, queue_position=1)

    async def GetJob(self, request: snapshot_pb2.GetJobRequest, context: Any) -> snapshot_pb2.Job:
        return _job(
            self.final, error="terraform apply failed: boom" if self.final == events_pb2.FAILED else ""
        )

    async def ListJobs(
        self, request: snapshot_pb2.ListJobsRequest, context: Any
    ) -> snapshot_pb2.ListJobsResponse:
        return snapshot_pb2.ListJobsResponse(jobs=[_job(self.final), _job(events_pb2.QUEUED, id="job-2")])

    async def WatchJob(
        self, request: snapshot_pb2.WatchJobRequest, context: Any
    ) -> AsyncIterator[events_pb2.JobEvent]:
        for i, (kind, status) in enumerate(
            [("started", events_pb2.RUNNING), ("log", events_pb2.RUNNING), ("failed", self.final)]
        ):
            ev = events_pb2.JobEvent(event_id=f"e{i}", job_id=request.id, type=kind, status=status)
            if kind == "log":
                ev.log.message = "terraform_data.vpc: Creating..."
                ev.log.stage = "apply"
            yield ev


@pytest.fixture
async def fake_stack() -> AsyncIterator[dict[str, str]]:
    jobs = FakeJobs()
    server, port, _ = await create_server(
        [
            lambda s: specs_pb2_grpc.add_SpecServiceServicer_to_server(FakeSpecs(), s),
            lambda s: snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(jobs, s),
        ],
        ["alethia.specs.v1.SpecService", "alethia.snapshot.v1.SnapshotService"],
        auth_token=TOKEN,
    )
    addr = f"127.0.0.1:{port}"
    yield {
        "ALETHIA_SPECS_ADDR": addr,
        "ALETHIA_SNAPSHOT_ADDR": addr,
        "ALETHIA_MAPPER_ADDR": addr,
        "ALETHIA_EXECUTOR_ADDR": addr,
        "ALETHIA_SERVICE_TOKEN": TOKEN,
    }
    await server.stop(None)


# The Typer app alone, as every command ran before the fast path existed.
TYPER_ONLY = "import sys; from alethia.cli import main; main._register_all(); main.app(sys.argv[1:])"


async def alethia(
    *args: str, env: dict[str, str] | None = None, typer_only: bool = False
) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}
    full_env.update(env or {})
    entry = ["-c", TYPER_ONLY] if typer_only else ["-m", "alethia.cli.main"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *entry, *args,
        env=full_env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _assert_clean_error(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), stderr
    return lines


async def test_bad_spec_file_is_refused_naming_the_field_before_any_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "zone_id: z\nproject_name: p\ncluster:\n  node_min_size: two\nnetwork: {cidr: 10.0.0.0/16}\n"
    )
    code, out, err = await alethia(
        "spec", "create", "-f", str(bad), "--json", env={"ALETHIA_STACK_DIR": str(tmp_path)}
    )
    assert code == EXIT_ERROR and out == ""
    lines = _assert_clean_error(err)
    assert any("cluster.node_min_size" in line and "integer" in line for line in lines)
    assert any("network.cidr" in line and "unknown field" in line for line in lines)


async def test_service_violations_become_one_line_each(fake_stack: dict[str, str]) -> None:
    code, out, err = await alethia(
        "spec",
        "create",
        "-f",
        str(ROOT / "examples" / "aws.yaml"),
        "--identity",
        "id-1",
        "--json",
        env=fake_stack,
    )
    assert code == EXIT_ERROR and out == ""
    assert _assert_clean_error(err) == [
        "error: network.cidr_block: host bits must be zero",
        "error: databases[1].engine: must be one of postgres, mysql",
    ]


async def test_stale_plan_deploy_names_the_changed_field(fake_stack: dict[str, str]) -> None:
    code, _, err = await alethia("deploy", "spec-1", "--plan-job", "plan-9", "--json", env=fake_stack)
    assert code == EXIT_ERROR
    lines = _assert_clean_error(err)
    assert "re-plan" in lines[0] and "plan-9" in lines[0]
    assert lines[1] == "error: network.cidr_block: changed since the plan"


async def test_not_found_and_wrong_token(fake_stack: dict[str, str]) -> None:
    code, _, err = await alethia("spec", "get", "nope", env=fake_stack)
    assert code == EXIT_ERROR and _assert_clean_error(err) == ["error: spec nope not found"]
    code, _, err = await alethia("spec", "get", "nope", env={**fake_stack, "ALETHIA_SERVICE_TOKEN": "wrong"})
    assert code == EXIT_ERROR and "credentials" in _assert_clean_error(err)[0]


async def test_wait_on_a_job_that_fails_exits_non_zero_with_the_job(fake_stack: dict[str, str]) -> None:
    code, out, err = await alethia("plan", "spec-1", "--wait", "--json", env=fake_stack)
    assert code == EXIT_JOB_FAILED
    job = json.loads(out)
    assert set(job) >= REQUIRED_JOB_KEYS and job["status"] == "FAILED"
    assert job["error"] == "terraform apply failed: boom"
    assert _assert_clean_error(err) == ["error: job job-1 ended FAILED: terraform apply failed: boom"]


async def test_watch_streams_events_as_json_lines(fake_stack: dict[str, str]) -> None:
    code, out, _ = await alethia("jobs", "watch", "job-1", "--json", env=fake_stack)
    assert code == EXIT_JOB_FAILED
    lines = [json.loads(line) for line in out.splitlines()]
    assert [ev["type"] for ev in lines[:-1]] == ["started", "log", "failed"]
    assert lines[1]["log"]["message"] == "terraform_data.vpc: Creating..."
    assert lines[-1]["job"]["status"] == "FAILED"


async def test_unreachable_service_exits_4_naming_it() -> None:
    port = free_port()
    env = {f"ALETHIA_{s}_ADDR": f"127.0.0.1:{port}" for s in ("SPECS", "SNAPSHOT", "MAPPER", "EXECUTOR")}
    code, out, err = await alethia("jobs", "list", "--json", env=env)
    assert code == EXIT_UNAVAILABLE and out == ""
    lines = _assert_clean_error(err)
    assert len(lines) == 1 and f"cannot reach the snapshot service at 127.0.0.1:{port}" in lines[0]


def test_alethia_error_lines_fall_back_to_the_message() -> None:
    assert error_lines(AlethiaError("plain failure")) == ["error: plain failure"]


# ---------------------------------------------------------------- the fast path of --json reads

FAST_READS = [
    ("spec", "list", "--json"),
    ("spec", "list", "--zone", "zone-b", "--json"),
    ("spec", "list", "--json", "--zone=zone-a"),
    ("spec", "get", "spec-a", "--json"),
    ("spec", "get", "--json", "nope"),
    ("identity", "list", "--json"),
    ("jobs", "list", "--json"),
    ("jobs", "get", "job-1", "--json"),
]


@pytest.mark.parametrize("args", FAST_READS, ids=lambda a: " ".join(a))
def test_fast_path_takes_the_plain_json_reads(args: tuple[str, ...]) -> None:
    from alethia.cli import fast

    assert fast.parse(list(args)) is not None


@pytest.mark.parametrize(
    "args",
    [
        ("spec", "list"),  # tables need rich
        ("spec", "list", "--json", "--help"),
        ("spec", "list", "--json", "--zone"),  # the value is missing: Typer's usage error
        ("spec", "list", "--json", "--zone", "a", "--zone", "b"),
        ("spec", "list", "--json", "--json"),
        ("spec", "list", "--json", "extra"),
        ("spec", "get", "--json"),
        ("spec", "get", "a", "b", "--json"),
        ("spec", "get", "-x", "--json"),
        ("jobs", "list", "--zone", "z", "--json"),  # another command's option
        ("spec", "create", "-f", "x.yaml", "--json"),
        ("spec",),
        (),
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_everything_else_goes_to_typer(args: tuple[str, ...]) -> None:
    from alethia.cli import fast

    assert fast.parse(list(args)) is None


async def test_fast_path_prints_what_typer_prints(fake_stack: dict[str, str]) -> None:
    # One command line per command (the shapes are covered above), both paths, side by side.
    compared = [FAST_READS[1], FAST_READS[4], FAST_READS[5], FAST_READS[6], FAST_READS[7]]
    for args in compared:
        got, expected = await asyncio.gather(
            alethia(*args, env=fake_stack), alethia(*args, env=fake_stack, typer_only=True)
        )
        assert got == expected, args
    code, out, err = await alethia("spec", "list", "--zone", "zone-b", "--json", env=fake_stack)
    assert code == 0 and [s["id"] for s in json.loads(out)] == ["spec-b"] and err == ""
    code, out, err = await alethia("spec", "get", "nope", "--json", env=fake_stack)
    assert code == EXIT_ERROR and out == "" and _assert_clean_error(err) == ["error: spec nope not found"]


async def test_fast_path_imports_neither_typer_nor_rich_nor_yaml(fake_stack: dict[str, str]) -> None:
    # Nor the modules a successful Spec read does not use (each one is compiled on every
    # call when no bytecode is cached: bench cli_latency).
    script = (
        "import json, sys; from alethia.cli import fast; "
        "code = fast.run(['spec', 'list', '--json']); "
        "unused = ('alethia.specfile', 'alethia.cli.render', 'alethia.errors', 'alethia.rpc.status'); "
        "heavy = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('typer', 'click', 'rich', 'yaml') or m in unused); "
        "sys.stderr.write(json.dumps({'code': code, 'heavy': heavy}))"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ALETHIA_")}, **fake_stack}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert json.loads(err) == {"code": 0, "heavy": []}
    assert len(json.loads(out)) == len(LISTED_SPECS)
