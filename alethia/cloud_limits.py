"""What each cloud accepts, as data, and small checks that name the Spec field at fault.

One module for the per-cloud rules that CreateSpec (``services/specs/validation.py``) and the
mapper (``services/mapper``, as a guard before rendering) both enforce, so a value the cloud
would refuse at plan or apply time is refused when the Spec is created, with the field named:

- supported Kubernetes versions per cloud (one table, also rendered into ``docs/mapping.md``);
- the database engines each cloud's template builds;
- Azure Database for PostgreSQL flexible server storage sizes (fixed steps only);
- Memorystore (GCP) tiers and replica counts;
- the length limits of cloud names the templates build from Spec names, which also start
  with the project name and so need it to start with a letter;
- the CIDRs allowed to reach a cluster API.

Pure: every check takes the Spec as plain JSON data (the dict of
:func:`alethia.specfile.spec_to_dict`, or ``SpecConfig.model_dump()``) and returns
:class:`~alethia.errors.FieldViolation` s; nothing here reads a clock or the environment.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alethia import naming
from alethia.errors import FieldViolation

Data = Mapping[str, Any]


@dataclass(frozen=True)
class KubernetesVersion:
    """A Kubernetes minor version a cloud still supports, and when that support ends."""

    version: str
    end_of_support: str  # ISO date from the cloud's release calendar (extended support included)


# Supported Kubernetes minor versions per cloud, oldest first. A version leaves the table when
# the cloud's support (EKS: standard + extended; GKE: end of maintenance; AKS: community
# support, LTS excluded) ends, and a release joins it when the cloud makes it generally
# available. docs/mapping.md and both validators read this table only.
KUBERNETES_VERSIONS: dict[str, tuple[KubernetesVersion, ...]] = {
    "aws": (
        KubernetesVersion("1.32", "2027-03-23"),
        KubernetesVersion("1.33", "2027-07-29"),
        KubernetesVersion("1.34", "2027-12-02"),
        KubernetesVersion("1.35", "2028-03-27"),
    ),
    "gcp": (
        KubernetesVersion("1.33", "2026-12-31"),
        KubernetesVersion("1.34", "2027-04-30"),
        KubernetesVersion("1.35", "2027-08-31"),
    ),
    "azure": (
        KubernetesVersion("1.33", "2026-12-31"),
        KubernetesVersion("1.34", "2027-03-31"),
        KubernetesVersion("1.35", "2027-06-30"),
    ),
}

# Database engines each cloud's template builds.
ENGINES: dict[str, tuple[str, ...]] = {
    "aws": ("aurora-mysql", "aurora-postgresql", "mariadb", "mysql", "postgres"),
    "gcp": ("mysql", "postgres", "sqlserver"),
    "azure": ("mysql", "postgres"),
}

# Azure Database for PostgreSQL flexible server accepts these storage sizes only (GiB; the
# template passes storage_mb = GiB * 1024, which gives exactly the API's values).
AZURE_POSTGRES_STORAGE_GB = (32, 64, 128, 256, 512, 1024, 2048, 4095, 4096, 8192, 16384, 32767)

# Memorystore for Redis: tiers, replicas of a STANDARD_HA instance, and the smallest instance
# that may have read replicas (more than one replica means read replicas).
MEMORYSTORE_TIERS = ("BASIC", "STANDARD_HA")
MEMORYSTORE_MAX_REPLICAS = 5
MEMORYSTORE_READ_REPLICAS_MIN_GB = 5

# At most this many CIDRs may reach a cluster API (EKS allows 40 public access CIDRs, GKE 50
# authorized networks, AKS 200 ranges: the smallest wins so a Spec moves between clouds),
# less the runner's egress CIDRs the templates add (alethia.runner_vars: at most 5).
MAX_API_CIDRS = 35


@dataclass(frozen=True)
class NameLimit:
    """A cloud name the templates build from Spec names, and the cloud's length limit.

    ``pattern`` uses ``{prefix}`` (``<project>-<environment>``) and, for list components,
    ``{name}`` (the item's name). Too long a name is reported on the Spec field that makes it
    long; the templates never truncate (a cut name may collide or end in a hyphen).
    """

    what: str
    pattern: str
    limit: int
    component: str = ""  # a list ("storage_buckets"), or "" for a name built from the prefix only

    def __post_init__(self) -> None:
        # fits() and violations() add lengths up (prefix + name + the rest): one {name} per item.
        if self.pattern.count("{name}") != (1 if self.component else 0):
            raise ValueError(f"{self.what}: the pattern must name the item exactly once for a list")

    @functools.cached_property
    def fixed_length(self) -> int:
        """The name's length without the prefix and the item's name."""
        return len(self.pattern.format(prefix="", name=""))

    def fits(self, spec: Data, prefix: str) -> bool:
        """Whether every name this builds is within the limit (no violation to word)."""
        room = self.limit - self.fixed_length - len(prefix)
        if not self.component:
            return room >= 0
        if room <= 0:
            return False
        for item in _items(spec, self.component):
            # A dict with a string name is the common case; anything else is violations()'s.
            name = item.get("name") if item.__class__ is dict else None
            if name.__class__ is not str or len(name) > room:
                return False
        return True

    def violations(self, spec: Data, prefix: str | None = None) -> list[FieldViolation]:
        """The Spec fields that make this name too long (``prefix``: when already built)."""
        if prefix is None:
            prefix = naming.resource_prefix(
                str(spec.get("project_name", "")), str(spec.get("environment", ""))
            )
        bare = self.pattern.format(prefix=prefix, name="")
        if not self.component:
            if len(bare) <= self.limit:
                return []
            return [
                FieldViolation(
                    "project_name",
                    f"makes the {self.what} {bare!r} {len(bare)} characters long; at most {self.limit}",
                )
            ]
        if len(bare) >= self.limit:
            # The prefix alone leaves no room for any item name: that is project_name's doing.
            return [
                FieldViolation(
                    "project_name",
                    f"leaves no room for a name in the {self.what} {bare!r}; at most {self.limit} characters",
                )
            ]
        # Lengths add up (the name appears once), so only a name that is too long gets formatted:
        # this runs for every item of every Spec, in CreateSpec and in the mapper's guard.
        room = self.limit - len(bare)
        out = []
        for i, item in enumerate(_items(spec, self.component)):
            name = _name(item)
            if len(name) > room:
                value = self.pattern.format(prefix=prefix, name=name)
                out.append(
                    FieldViolation(
                        f"{self.component}[{i}].name",
                        f"makes the {self.what} {value!r} {len(value)} characters long; at most {self.limit}",
                    )
                )
        return out


NAME_LIMITS: dict[str, tuple[NameLimit, ...]] = {
    "aws": (
        NameLimit("EKS cluster IAM role name", "{prefix}-eks-cluster", 64),
        NameLimit("load balancer controller IAM role name", "{prefix}-lb-controller", 64),
        NameLimit("RDS identifier", "{prefix}-{name}", 63, "databases"),
        NameLimit("ElastiCache replication group id", "{prefix}-{name}", 40, "caches"),
        NameLimit("SQS dead-letter queue name", "{prefix}-{name}-dlq.fifo", 80, "queues"),
        NameLimit("SNS topic name", "{prefix}-{name}", 256, "topics"),
        NameLimit("DynamoDB table name", "{prefix}-{name}", 255, "nosql_tables"),
        NameLimit("S3 bucket name", "{prefix}-{name}", 63, "storage_buckets"),
        NameLimit("Secrets Manager secret name", "{prefix}/{name}", 512, "secrets"),
    ),
    "gcp": (
        NameLimit("GKE cluster name", "{prefix}-gke", 40),
        NameLimit("VPC router name", "{prefix}-router", 63),
        NameLimit("Cloud SQL instance name", "{prefix}-{name}", 98, "databases"),
        NameLimit("Memorystore instance id", "{prefix}-{name}", 40, "caches"),
        NameLimit("Pub/Sub dead-letter topic name", "{prefix}-{name}-dead-letter", 255, "queues"),
        NameLimit("Firestore database id", "{prefix}-{name}", 63, "nosql_tables"),
        NameLimit("Cloud Storage bucket name", "{prefix}-{name}", 63, "storage_buckets"),
        NameLimit("Secret Manager secret id", "{prefix}-{name}", 255, "secrets"),
    ),
    "azure": (
        NameLimit("resource group name", "rg-{prefix}", 90),
        NameLimit("AKS cluster name", "{prefix}-aks", 63),
        NameLimit("Service Bus namespace name", "{prefix}-bus", 50),
        NameLimit("database server name", "{prefix}-{name}", 63, "databases"),
        NameLimit("Azure Cache for Redis name", "{prefix}-{name}", 63, "caches"),
        NameLimit("Service Bus queue name", "{name}", 260, "queues"),
        NameLimit("Cosmos DB container name", "{name}", 255, "nosql_tables"),
        NameLimit("storage container name", "{name}", 63, "storage_buckets"),
        NameLimit("Key Vault secret name", "{name}", 127, "secrets"),
    ),
}


def _items(spec: Data, key: str) -> list[Any]:
    value = spec.get(key)
    return value if isinstance(value, list) else []


def _name(item: Any) -> str:
    # dict first: the common case, without the cost of an ABC check.
    return str(item.get("name", "")) if isinstance(item, (dict, Mapping)) else ""


def _section(spec: Data, key: str) -> Mapping[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, Mapping) else {}


@functools.cache
def supported_kubernetes_versions(provider: str) -> tuple[str, ...]:
    """The Kubernetes minor versions ``provider`` supports, oldest first."""
    return tuple(v.version for v in KUBERNETES_VERSIONS.get(provider, ()))


def check_kubernetes_version(
    provider: str, version: str, path: str = "cluster.cluster_version"
) -> list[FieldViolation]:
    """The version is one the cloud still supports (an empty or malformed one is another rule's)."""
    supported = supported_kubernetes_versions(provider)
    if not supported or not version or version in supported:
        return []
    return [
        FieldViolation(
            path, f"Kubernetes {version} is not supported on {provider}; use one of {', '.join(supported)}"
        )
    ]


def check_engines(provider: str, spec: Data) -> list[FieldViolation]:
    """Every database engine is one the cloud's template builds."""
    engines = ENGINES.get(provider)
    if not engines:
        return []
    return [
        FieldViolation(f"databases[{i}].engine", "must be one of " + ", ".join(engines))
        for i, db in enumerate(_items(spec, "databases"))
        if isinstance(db, Mapping) and db.get("engine") not in engines
    ]


def check_azure_postgres_storage(spec: Data) -> list[FieldViolation]:
    """PostgreSQL flexible servers take fixed storage sizes only."""
    out = []
    for i, db in enumerate(_items(spec, "databases")):
        if isinstance(db, Mapping) and db.get("engine") == "postgres":
            size = db.get("storage_gb")
            if size not in AZURE_POSTGRES_STORAGE_GB:
                sizes = ", ".join(str(s) for s in AZURE_POSTGRES_STORAGE_GB)
                out.append(
                    FieldViolation(
                        f"databases[{i}].storage_gb",
                        f"Azure PostgreSQL flexible servers take one of these sizes (GB): {sizes}",
                    )
                )
    return out


def memorystore_replicas(tier: str, cluster_size: int) -> int:
    """Replicas of a Memorystore instance: STANDARD_HA has ``cluster_size - 1`` (at least 1)."""
    return max(cluster_size - 1, 1) if tier == "STANDARD_HA" else 0


def check_memorystore(spec: Data) -> list[FieldViolation]:
    """Tier, replica count and the size read replicas need (``cluster_size`` counts nodes)."""
    out = []
    for i, cache in enumerate(_items(spec, "caches")):
        if not isinstance(cache, Mapping):
            continue
        tier, size = cache.get("node_type"), cache.get("cluster_size")
        if tier not in MEMORYSTORE_TIERS:
            out.append(
                FieldViolation(f"caches[{i}].node_type", "must be one of " + ", ".join(MEMORYSTORE_TIERS))
            )
            continue
        if not isinstance(size, int):
            continue
        if tier == "BASIC" and size != 1:
            out.append(FieldViolation(f"caches[{i}].cluster_size", "a BASIC instance has exactly 1 node"))
        elif tier == "STANDARD_HA" and size - 1 > MEMORYSTORE_MAX_REPLICAS:
            out.append(
                FieldViolation(
                    f"caches[{i}].cluster_size",
                    f"a STANDARD_HA instance has at most {MEMORYSTORE_MAX_REPLICAS + 1} nodes (1 primary + replicas)",
                )
            )
        elif tier == "STANDARD_HA" and size > 2:
            memory = _section(cache, "provider_config").get("memory_size_gb", 1)
            if isinstance(memory, (int, float)) and memory < MEMORYSTORE_READ_REPLICAS_MIN_GB:
                out.append(
                    FieldViolation(
                        f"caches[{i}].cluster_size",
                        f"more than one replica needs read replicas, which need memory_size_gb >= "
                        f"{MEMORYSTORE_READ_REPLICAS_MIN_GB}",
                    )
                )
    return out


# Canonical IPv4 CIDR text: no leading zeros, a decimal prefix length ([0-9], not any digit).
_CANONICAL_CIDR = re.compile(
    r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})/(0|[1-9][0-9]?)"
)


def ipv4_prefixlen(cidr: str) -> int:
    """The prefix length of ``cidr``, an IPv4 network without host bits, as
    ``ipaddress.IPv4Network(cidr)`` reads it (``ValueError`` when it is not one).

    A valid network in canonical text is decided here from its numbers: this runs for every
    Spec written and every render, and building the network object cost more than the rest
    of the CIDR checks. Anything else (out of range, host bits, a netmask, other spellings)
    is ipaddress's to decide, so the answer is always the standard library's.
    """
    m = _CANONICAL_CIDR.fullmatch(cidr)
    if m is not None:
        a, b, c, d, prefix = (int(g) for g in m.groups())
        if a <= 255 and b <= 255 and c <= 255 and d <= 255 and prefix <= 32:
            address = a << 24 | b << 16 | c << 8 | d
            if address & ((1 << (32 - prefix)) - 1) == 0:
                return prefix
    return ipaddress.IPv4Network(cidr).prefixlen


def check_api_cidrs(
    value: Any, path: str = "cluster.provider_config.api_authorized_cidrs"
) -> list[FieldViolation]:
    """The CIDRs allowed to reach the cluster API: IPv4 networks, no host bits, not the world."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [FieldViolation(path, "expected a list of CIDRs such as 203.0.113.10/32")]
    if len(value) > MAX_API_CIDRS:
        return [FieldViolation(path, f"at most {MAX_API_CIDRS} CIDRs")]
    out = []
    for i, cidr in enumerate(value):
        try:
            prefixlen = ipv4_prefixlen(cidr) if isinstance(cidr, str) and "/" in cidr else None
        except ValueError:
            prefixlen = None
        if prefixlen is None:
            out.append(FieldViolation(f"{path}[{i}]", "must be an IPv4 CIDR such as 203.0.113.10/32"))
        elif prefixlen == 0:
            out.append(FieldViolation(f"{path}[{i}]", "0.0.0.0/0 would open the cluster API to everyone"))
    return out


# A Key Vault key's resource id: vault names are 3-24 letters, digits and hyphens, key names
# up to 127. No /versions/<v>: the services follow the key's rotation.
AZURE_KEY_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.KeyVault/vaults/[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]/keys/[a-zA-Z0-9-]{1,127}$"
)


def check_azure_encryption_key(spec: Data) -> list[FieldViolation]:
    """Azure's ``encryption_key``: the resource id of a Key Vault key, without a version."""
    key = _section(_section(spec, "cluster"), "provider_config").get("encryption_key")
    # A non-string is the option table's error ("expected a string"), reported once.
    if not isinstance(key, str) or key == "" or AZURE_KEY_ID.match(key):
        return []
    return [
        FieldViolation(
            "cluster.provider_config.encryption_key",
            "must be a Key Vault key's resource id without a version: /subscriptions/<id>/resourceGroups/"
            "<group>/providers/Microsoft.KeyVault/vaults/<vault>/keys/<key>",
        )
    ]


def check_prefix_starts_with_letter(provider: str, spec: Data) -> list[FieldViolation]:
    """Cloud names start with ``<project>-``; RDS, ElastiCache, GKE, Cloud SQL, Memorystore and
    Pub/Sub names must begin with a letter, so the project name must too."""
    name = str(spec.get("project_name") or "")
    if name and not name[0].isalpha():
        return [
            FieldViolation(
                "project_name", f"must start with a letter on {provider} (cloud names begin with it)"
            )
        ]
    return []


def violations(provider: str, spec: Data) -> list[FieldViolation]:
    """Every per-cloud rule ``spec`` breaks on ``provider`` (unknown provider: none)."""
    if provider not in KUBERNETES_VERSIONS:
        return []
    cluster = _section(spec, "cluster")
    out = check_kubernetes_version(provider, str(cluster.get("cluster_version") or ""))
    out += check_api_cidrs(_section(cluster, "provider_config").get("api_authorized_cidrs"))
    out += check_engines(provider, spec)
    out += check_prefix_starts_with_letter(provider, spec)
    if provider == "azure":
        out += check_azure_postgres_storage(spec)
        out += check_azure_encryption_key(spec)
    if provider == "gcp":
        out += check_memorystore(spec)
    # Name lengths only once the prefix parts are themselves valid (at most a DNS label each);
    # a longer project_name is the Spec rules' error, not one per cloud name built from it.
    project, environment = str(spec.get("project_name", "")), str(spec.get("environment", ""))
    if len(project) <= 63 and len(environment) <= 63:
        prefix = naming.resource_prefix(project, environment)
        for limit in NAME_LIMITS.get(provider, ()):
            if limit.fits(spec, prefix):
                continue  # the common case, decided from lengths alone
            out += limit.violations(spec, prefix)
    return out


def kubernetes_versions_table(providers: Sequence[str] = ("aws", "gcp", "azure")) -> list[str]:
    """The supported versions as Markdown table lines (for the docs)."""
    lines = ["| cloud | Kubernetes versions (end of support) |", "|---|---|"]
    for p in providers:
        cells = ", ".join(f"{v.version} ({v.end_of_support})" for v in KUBERNETES_VERSIONS[p])
        lines.append(f"| {p} | {cells} |")
    return lines
