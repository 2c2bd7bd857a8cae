"""``alethia identity ...`` and ``alethia spec ...``: cloud identities and Specs (stage 1)."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from alethia.cli import fast
from alethia.cli.client import Api
from alethia.cli.common import JsonOpt, StackDirOpt, handle_errors, with_api
from alethia.cli.render import (
    identities_table,
    identity_to_dict,
    print_json,
    spec_dict,
    specs_table,
    stdout,
)
from alethia.errors import FieldViolation, InvalidArgument
from alethia.specfile import load_spec_file
from alethia.specs.v1 import specs_pb2

PROVIDERS = ("aws", "gcp", "azure")
# Where a runner finds each provider's credentials when no --credentials-ref is given:
# the provider SDKs' own environment variables (a reference, never a secret).
DEFAULT_CREDENTIALS_REF = {
    "aws": "env:AWS_PROFILE",
    "gcp": "env:GOOGLE_APPLICATION_CREDENTIALS",
    "azure": "env:AZURE_CLIENT_ID",
}
# What the example files carry until a real identity id is filled in.
PLACEHOLDER_IDENTITY = "REPLACE"

identity_app = typer.Typer(help="Cloud identities: the accounts Specs deploy into.", no_args_is_help=True)
spec_app = typer.Typer(help="Specs: what a team's environment should contain.", no_args_is_help=True)

FileOpt = Annotated[str, typer.Option("--file", "-f", help="Spec file (YAML or JSON).")]
IdentityOpt = Annotated[
    str | None,
    typer.Option("--identity", help="Cloud identity id; overrides `cloud_identity_id` in the file."),
]


def _print_spec(spec: specs_pb2.Spec, as_json: bool, verb: str = "") -> None:
    if as_json:
        print_json(spec_dict(spec))
        return
    if verb:
        stdout.print(f"{verb} spec [bold]{spec.id}[/] (revision {spec.revision})")
    stdout.print(yaml.safe_dump(spec_dict(spec), sort_keys=False).rstrip(), markup=False)


def read_spec(path: str, identity: str | None) -> specs_pb2.Spec:
    """The Spec in ``path``, with ``--identity`` applied (raises InvalidArgument naming the field)."""
    spec = load_spec_file(path)
    if identity:
        spec.cloud_identity_id = identity
    if spec.cloud_identity_id == PLACEHOLDER_IDENTITY:
        raise InvalidArgument(
            [
                FieldViolation(
                    "cloud_identity_id",
                    f"still the placeholder {PLACEHOLDER_IDENTITY!r}: pass --identity ID "
                    "(see `alethia identity list`)",
                )
            ]
        )
    return spec


@identity_app.command("create")
@handle_errors
def identity_create(
    provider: Annotated[str, typer.Option("--provider", help="aws, gcp or azure.")],
    account_id: Annotated[
        str, typer.Option("--account-id", help="AWS account, GCP project or Azure subscription.")
    ],
    name: Annotated[str, typer.Option("--name", help="A name for people.")],
    credentials_ref: Annotated[
        str,
        typer.Option(
            "--credentials-ref",
            help="Where the credentials are, e.g. env:NAME or vault:path (never the secret itself). "
            "Default: the provider SDK's variable (env:AWS_PROFILE, env:GOOGLE_APPLICATION_CREDENTIALS, "
            "env:AZURE_CLIENT_ID).",
            show_default=False,
        ),
    ] = "",
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Register a cloud account; prints its id."""
    identity = specs_pb2.CloudIdentity(
        name=name,
        provider=provider,
        account_id=account_id,
        credentials_ref=credentials_ref or DEFAULT_CREDENTIALS_REF.get(provider, ""),
    )
    created = with_api(stack_dir, lambda api: api.create_identity(identity))
    if as_json:
        print_json(identity_to_dict(created))
    else:
        stdout.print(f"created identity [bold]{created.id}[/] ({created.provider} {created.account_id})")


@identity_app.command("list")
@handle_errors
def identity_list(as_json: JsonOpt = False, stack_dir: StackDirOpt = None) -> None:
    """All cloud identities."""
    if as_json:
        fast.identity_list_json(stack_dir)
        return
    stdout.print(identities_table(with_api(stack_dir, lambda api: api.list_identities())))


@spec_app.command("create")
@handle_errors
def spec_create(
    file: FileOpt, identity: IdentityOpt = None, as_json: JsonOpt = False, stack_dir: StackDirOpt = None
) -> None:
    """Store a new Spec from a file; every problem is reported at once, naming its field."""
    spec = read_spec(file, identity)
    created = with_api(stack_dir, lambda api: api.create_spec(spec))
    _print_spec(created, as_json, "created")


@spec_app.command("update")
@handle_errors
def spec_update(
    spec_id: Annotated[str, typer.Argument(metavar="ID")],
    file: FileOpt,
    identity: IdentityOpt = None,
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Replace a Spec's fields with the file's (against its current revision)."""
    spec = load_spec_file(file)
    if identity:
        spec.cloud_identity_id = identity

    async def work(api: Api) -> specs_pb2.Spec:
        current = await api.get_spec(spec_id)
        # A file written for another stack (or an example) keeps the Spec's identity.
        if spec.cloud_identity_id in ("", PLACEHOLDER_IDENTITY):
            spec.cloud_identity_id = current.cloud_identity_id
        spec.id = spec_id
        return await api.update_spec(spec, current.revision)

    updated = with_api(stack_dir, work)
    _print_spec(updated, as_json, "updated")


@spec_app.command("get")
@handle_errors
def spec_get(
    spec_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """One Spec, whole."""
    if as_json:
        fast.spec_get_json(stack_dir, spec_id)
        return
    _print_spec(with_api(stack_dir, lambda api: api.get_spec(spec_id)), False)


@spec_app.command("list")
@handle_errors
def spec_list(
    zone: Annotated[str, typer.Option("--zone", help="Only this tenant zone.")] = "",
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """All Specs (optionally of one zone)."""
    if as_json:
        fast.spec_list_json(stack_dir, zone)
        return
    stdout.print(specs_table(with_api(stack_dir, lambda api: api.list_specs(zone))))


@spec_app.command("delete")
@handle_errors
def spec_delete(
    spec_id: Annotated[str, typer.Argument(metavar="ID")],
    abandon: Annotated[
        bool,
        typer.Option(
            "--abandon",
            help="Delete even if the Spec may still have infrastructure: its resources and "
            "Terraform state stay where they are, no longer managed.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    stack_dir: StackDirOpt = None,
) -> None:
    """Delete a Spec; refused while it may still have infrastructure (run `alethia destroy` first)."""
    resp = with_api(stack_dir, lambda api: api.delete_spec(spec_id, abandon=abandon))
    state = f"s3://{resp.state_bucket}/{resp.state_key}" if resp.abandoned else ""
    if as_json:
        print_json(
            {
                "id": spec_id,
                "deleted": True,
                "abandoned": resp.abandoned,
                "workspace": resp.workspace,
                "state": state,
                "last_deploy_job_id": resp.last_deploy_job_id,
            }
        )
        return
    stdout.print(f"deleted spec {spec_id}")
    if resp.abandoned:
        stdout.print(
            f"its infrastructure was abandoned: the resources of workspace {resp.workspace} stay, "
            f"unmanaged; the Terraform state stays at {state}",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add the ``identity`` and ``spec`` groups."""
    app.add_typer(identity_app, name="identity")
    app.add_typer(spec_app, name="spec")
