"""Validation of Specs and cloud identities: pure functions of their input, no I/O.

``validate_spec(spec, provider)`` takes a Spec as the plain dict of
:func:`alethia.specfile.spec_to_dict` and returns EVERY violation at once, each naming
its field path (``network.cidr_block``, ``databases[1].engine``). The service calls it
before it writes anything; the CLI may call it to check a file locally. Whether the
cloud identity exists is the caller's question (it needs the database); the caller
passes the identity's provider, or ``None`` when there is no identity, in which case
the region is not checked against a provider.

Rules, in short: names are lowercase DNS labels unique within their list; strings have
length limits and no control characters; lists hold at most 50 items; the region
belongs to the provider; a provisioned network has an IPv4 CIDR /8../28 with zero host
bits, an existing one a ``network_id``; the cluster version looks like ``1.30``, there
is an instance type and ``0 <= min <= desired <= max``; enabled DNS needs a zone id and
a domain name; repository URLs are https/ssh git URLs without credentials, query
strings or dot segments, on a host the platform allows, with a valid branch name and a
relative path without ``..`` or ``.git``; database engines come from a known set with sane storage and scaling; a
secret carries a name and metadata only; every ``provider_config`` is a JSON object
under 16 KiB; ``terraform_version`` is a version constraint.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from alethia import cloud_limits, field_paths, spec_schema
from alethia.errors import FieldViolation
from alethia.naming import repository_url_credentials
from alethia.terraform_versions import ConstraintError, parse_constraints
from services.specs.regions import PROVIDERS, example_regions, is_known_region

MAX_LIST_ITEMS = 50
MAX_NAME_LENGTH = 63
MAX_STRING_LENGTH = 255
MAX_URL_LENGTH = 2048
MAX_CONFIG_BYTES = 16 * 1024
# Any string anywhere (including inside provider_config) is at most this long.
MAX_ANY_STRING = 4096

DATABASE_ENGINES = ("postgres", "mysql", "mariadb", "aurora-postgresql", "aurora-mysql", "sqlserver")
SUBSCRIPTION_PROTOCOLS = ("sqs", "sns", "https", "email", "lambda", "pull", "push", "servicebus")

# Metadata keys whose value would be the secret itself.
SECRET_VALUE_KEYS = frozenset(
    {
        "value", "secret", "secret_string", "secret_value", "secret_binary", "password", "passwd",
        "token", "data", "plaintext", "private_key", "api_key", "access_key", "secret_key",
        "client_secret", "credentials",
    }
)  # fmt: skip

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CLUSTER_VERSION = re.compile(r"^[1-9][0-9]?\.[0-9]{1,3}$")
_INSTANCE_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENGINE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
_KEY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_DNS_ZONE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.IGNORECASE)
_SCP_GIT = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^\s:][^\s]*)$")
_AWS_ACCOUNT = re.compile(r"^\d{12}$")
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CREDENTIALS_REF = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$")
# Things that are credentials, not references to them.
_SECRET_PATTERNS = (
    re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN"),  # PEM key
    re.compile(r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_|glpat-|xox[abpr]-"),
    re.compile(r"(password|passwd|secret|token|api_?key)\s*=", re.IGNORECASE),  # key=value
    re.compile(r"://[^/@\s]*:[^/@\s]*@"),  # URL with user:password
)
# Bidi overrides and isolates (trojan-source) count as control characters here too.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _looks_random(ref: str) -> bool:
    """A long segment mixing upper, lower and digits is key material, not a name or a path."""
    for segment in re.split(r"[:/@]", ref):
        if (
            len(segment) >= 32
            and re.search(r"[a-z]", segment)
            and re.search(r"[A-Z]", segment)
            and re.search(r"[0-9]", segment)
        ):
            return True
    return False


class _Violations:
    """Collects violations; helpers return whether the value passed so callers can chain."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(path, description))


def show(value: object, limit: int = 64) -> str:
    """A user value quoted for an error message, clipped so messages stay short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


_join = field_paths.join


# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F (fixed by the standard), plus
# the bidirectional overrides above: one regex search instead of a category lookup per
# character (the per-character loop was the largest part of CreateSpec's validation CPU).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(_BIDI)) + "]")


def _has_control(s: str) -> bool:
    return _CONTROL.search(s) is not None


def _strings_clean(value: Any) -> bool:
    """Whether no string anywhere (keys included) has a control character and no value is too long.

    The common answer, found without building a field path per node: every string is
    collected, the lengths compared at once and the control characters searched for in
    their concatenation (one regex pass; joining cannot make or hide a character).
    """
    values: list[str] = []
    keys: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)  # exact types first: the ABC checks cost more than the rest
        if kind is str:
            values.append(item)
        elif kind is dict:
            keys.extend(map(str, item))
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif isinstance(item, str):
            values.append(item)
        elif isinstance(item, Mapping):
            keys.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return (
        max(map(len, values), default=0) <= MAX_ANY_STRING
        and _CONTROL.search("".join(values)) is None
        and _CONTROL.search("".join(keys)) is None
    )


def _walk_strings(value: Any, path: str, v: _Violations) -> None:
    """No control characters and no huge strings anywhere, keys included."""
    if _strings_clean(value):
        return
    _report_strings(value, path, v)


def _report_strings(value: Any, path: str, v: _Violations) -> None:
    """Every control character and huge string, by field path."""
    if isinstance(value, str):
        if _has_control(value):
            v.add(path, "must not contain control characters")
        if len(value) > MAX_ANY_STRING:
            v.add(path, f"must be at most {MAX_ANY_STRING} characters")
    elif isinstance(value, Mapping):
        for k, item in value.items():
            key = str(k)
            if _has_control(key):
                v.add(path, f"key {show(key)} must not contain control characters")
            _report_strings(item, _join(path, key), v)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _report_strings(item, f"{path}[{i}]", v)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _check_length(value: str, path: str, v: _Violations, limit: int = MAX_STRING_LENGTH) -> bool:
    if len(value) > limit:
        v.add(path, f"must be at most {limit} characters")
        return False
    return True


def _check_label(value: str, path: str, v: _Violations, what: str = "name", min_length: int = 1) -> bool:
    if not value:
        v.add(path, f"{what} is required")
        return False
    if len(value) > MAX_NAME_LENGTH:
        v.add(path, f"must be at most {MAX_NAME_LENGTH} characters")
        return False
    if len(value) < min_length:
        v.add(path, f"must be at least {min_length} characters")
        return False
    if not _LABEL.match(value):
        v.add(
            path,
            "must be a lowercase DNS label: a-z, 0-9 and '-', starting and ending with a letter or digit",
        )
        return False
    return True


def _check_list_size(items: Sequence[Any], path: str, v: _Violations, limit: int = MAX_LIST_ITEMS) -> None:
    if len(items) > limit:
        v.add(path, f"at most {limit} items allowed, got {len(items)}")


def _check_unique(values: Iterable[tuple[int, str]], path: str, field: str, v: _Violations) -> None:
    seen: dict[str, int] = {}
    for i, value in values:
        if not value:
            continue
        if value in seen:
            v.add(f"{path}[{i}].{field}", f"duplicate {field} {show(value)} (also {path}[{seen[value]}])")
        else:
            seen[value] = i


def _check_json_object(value: Any, path: str, v: _Violations, limit: int = MAX_CONFIG_BYTES) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        v.add(path, "must be a JSON object")
        return
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError):
        v.add(path, "must be a JSON object of plain values")
        return
    if size > limit:
        v.add(path, f"must be at most {limit // 1024} KiB as JSON, got {size} bytes")


def _check_domain(value: str, path: str, v: _Violations) -> None:
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(0 < len(label) <= 63 and _HOSTNAME_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        v.add(path, "must be a valid domain name (e.g. app.example.com)")


def _dot_segment(segment: str) -> bool:
    """``.``/``..`` also when percent-encoded (``%2e%2E``): servers and git decode them."""
    return unquote(segment).strip() in (".", "..")


def git_url_host(url: str) -> str:
    """The lowercase host of an https/ssh/scp-like git URL ('' when there is none)."""
    m = _SCP_GIT.match(url) if "://" not in url else None
    if m:
        return m.group("host").lower()
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _check_git_url(url: str, path: str, v: _Violations, allowed_hosts: Collection[str] | None = None) -> None:
    if not url:
        v.add(path, "url is required")
        return
    if not _check_length(url, path, v, MAX_URL_LENGTH):
        return
    if "\\" in url or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        v.add(path, "must not contain backslashes, spaces or control characters")
        return
    scp = _SCP_GIT.match(url) if "://" not in url else None
    if scp:
        # scp-like ssh (git@host:org/repo.git): no place for a password, but no query either.
        if "?" in url or "#" in url:
            v.add(path, "must not have a query string or fragment (credentials never go in the URL)")
            return
        host, repo_path = scp.group("host"), scp.group("path")
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises on a malformed port
        except ValueError:
            v.add(path, "must be an https or ssh git URL")
            return
        if parts.scheme not in ("https", "ssh"):
            v.add(
                path, "must be an https or ssh git URL (https://host/org/repo.git or git@host:org/repo.git)"
            )
            return
        if not parts.hostname or not parts.path or parts.path == "/":
            v.add(path, "must name a host and a repository path")
            return
        if repository_url_credentials(url):
            v.add(path, "must not carry credentials; the runner fetches the git token at run time")
            return
        if parts.query or parts.fragment:
            v.add(path, "must not have a query string or fragment (credentials never go in the URL)")
            return
        host, repo_path = parts.hostname, parts.path
    labels = host.rstrip(".").split(".")
    if not all(0 < len(label) <= 63 and _HOSTNAME_LABEL.match(label) for label in labels):
        v.add(path, f"host {show(host)} is not a valid host name")
        return
    if any(_dot_segment(seg) for seg in repo_path.split("/")):
        v.add(path, "must not contain '.' or '..' path segments (the URL must name one repository)")
        return
    if allowed_hosts is not None and host.lower().rstrip(".") not in allowed_hosts:
        allowed = ", ".join(sorted(allowed_hosts)) or "none configured (ALETHIA_GIT_ALLOWED_HOSTS)"
        v.add(path, f"host {show(host.lower())} is not an allowed repository host (allowed: {allowed})")


def _check_git_ref(branch: str, path: str, v: _Violations) -> None:
    """A branch name as ``git check-ref-format --branch`` accepts it (rules of git-check-ref-format(1))."""
    if not branch:
        v.add(path, "branch is required")
        return
    if not _check_length(branch, path, v):
        return
    components = branch.split("/")
    bad = (
        branch in ("HEAD", "@")
        or branch.startswith("-")
        or branch.startswith("/")
        or branch.endswith(("/", "."))
        or ".." in branch
        or "//" in branch
        or "@{" in branch
        or any(ch in branch for ch in " ~^:?*[\\")
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in branch)
        or any(c.startswith(".") or c.endswith(".lock") for c in components)
    )
    if bad:
        v.add(
            path,
            "must be a valid git branch name (see git check-ref-format; not HEAD, not starting with '-')",
        )


def _check_repo_path(value: str, path: str, v: _Violations) -> None:
    if not _check_length(value, path, v, 1024):
        return
    segments = value.split("/")
    if value.startswith("/") or "\\" in value or any(seg.strip() == ".." for seg in segments):
        v.add(path, "must be a relative path inside the repository (no leading '/', no '..')")
    elif any(seg.strip().lower().rstrip(".") == ".git" for seg in segments):
        v.add(path, "must not have a '.git' component (git's own directory is not a deploy target)")


def _check_terraform_version(value: str, path: str, v: _Violations) -> None:
    """The constraint grammar the executor accepts (Terraform's own, alethia.terraform_versions)."""
    if not value:
        return
    if not _check_length(value, path, v, 128):
        return
    try:
        parse_constraints(value)
    except ConstraintError:
        v.add(
            path,
            "must be a Terraform version constraint such as '>= 1.5', '~> 1.9' or '>= 1.5, < 2.0'",
        )


def _validate_network(net: Any, v: _Violations) -> None:
    if not isinstance(net, Mapping):
        v.add("network", "network is required")
        return
    cidr = _str(net.get("cidr_block"))
    network_id = _str(net.get("network_id"))
    if net.get("provision_network"):
        if not cidr:
            v.add("network.cidr_block", "required when provision_network is true")
        if network_id:
            v.add("network.network_id", "must be empty when provision_network is true")
    elif not network_id:
        v.add("network.network_id", "required when provision_network is false")
    if cidr:
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            msg = (
                "host bits must be zero"
                if "host bits" in str(exc)
                else "must be an IPv4 CIDR such as 10.0.0.0/16"
            )
            v.add("network.cidr_block", msg)
        else:
            if "/" not in cidr or not 8 <= network.prefixlen <= 28:
                v.add("network.cidr_block", "prefix length must be between /8 and /28")
    _check_length(network_id, "network.network_id", v, 1024)
    _check_json_object(net.get("provider_config"), "network.provider_config", v)


def _validate_cluster(cluster: Any, v: _Violations) -> None:
    if not isinstance(cluster, Mapping):
        v.add("cluster", "cluster is required")
        return
    version = _str(cluster.get("cluster_version"))
    if not version:
        v.add("cluster.cluster_version", "required (e.g. '1.30')")
    elif not _CLUSTER_VERSION.match(version):
        v.add("cluster.cluster_version", "must look like '1.30' (major.minor)")
    types = _list(cluster.get("instance_types"))
    if not types:
        v.add("cluster.instance_types", "at least one instance type is required")
    _check_list_size(types, "cluster.instance_types", v)
    for i, t in enumerate(types):
        p = f"cluster.instance_types[{i}]"
        if not isinstance(t, str) or not t:
            v.add(p, "must not be empty")
        elif _check_length(t, p, v, 64) and not _INSTANCE_TYPE.match(t):
            v.add(p, "must be an instance type name such as m6i.large")
    seen_types: dict[str, int] = {}
    for i, t in enumerate(types):
        if isinstance(t, str) and t in seen_types:
            v.add(f"cluster.instance_types[{i}]", f"duplicate instance type {show(t)}")
        seen_types.setdefault(_str(t), i)
    lo = _int(cluster.get("node_min_size"))
    hi = _int(cluster.get("node_max_size"))
    want = _int(cluster.get("node_desired_size"))
    # Bounds of each size are declared in the proto (spec_schema.range_violations).
    if lo > want:
        v.add("cluster.node_desired_size", f"must be >= node_min_size ({lo})")
    if want > hi:
        v.add("cluster.node_desired_size", f"must be <= node_max_size ({hi})")
    admins = _list(cluster.get("cluster_admins"))
    _check_list_size(admins, "cluster.cluster_admins", v)
    seen_admins: set[str] = set()
    for i, admin in enumerate(admins):
        p = f"cluster.cluster_admins[{i}]"
        if not isinstance(admin, str) or not admin.strip():
            v.add(p, "must not be empty")
            continue
        _check_length(admin, p, v)
        if admin in seen_admins:
            v.add(p, f"duplicate cluster admin {show(admin)}")
        seen_admins.add(admin)
    _check_json_object(cluster.get("provider_config"), "cluster.provider_config", v)


def _validate_dns(dns: Any, v: _Violations) -> None:
    if dns is None:
        return
    if not isinstance(dns, Mapping):
        v.add("dns", "must be a mapping")
        return
    zone = _str(dns.get("zone_id"))
    domain = _str(dns.get("domain_name"))
    if dns.get("enabled"):
        if not zone:
            v.add("dns.zone_id", "required when DNS is enabled")
        if not domain:
            v.add("dns.domain_name", "required when DNS is enabled")
    if zone and _check_length(zone, "dns.zone_id", v, 128) and not _DNS_ZONE_ID.match(zone):
        v.add("dns.zone_id", "must be a hosted zone id (letters, digits, '.', '_', '-', '/')")
    if domain:
        _check_domain(domain, "dns.domain_name", v)
    _check_json_object(dns.get("provider_config"), "dns.provider_config", v)


def _validate_repositories(
    repos: list[Any], v: _Violations, allowed_hosts: Collection[str] | None = None
) -> None:
    _check_list_size(repos, "repositories", v)
    seen: dict[tuple[str, str, str], int] = {}
    for i, repo in enumerate(repos):
        p = f"repositories[{i}]"
        r = _map(repo)
        url, branch, rpath = _str(r.get("url")), _str(r.get("branch")), _str(r.get("path"))
        _check_git_url(url, f"{p}.url", v, allowed_hosts)
        _check_git_ref(branch, f"{p}.branch", v)
        _check_repo_path(rpath, f"{p}.path", v)
        key = (url, branch, rpath)
        if key in seen:
            v.add(
                f"{p}.url", f"duplicate repository (same url, branch and path as repositories[{seen[key]}])"
            )
        seen.setdefault(key, i)


def _validate_named(items: list[Any], path: str, v: _Violations, min_length: int = 1) -> None:
    """Size limit, DNS-label names, unique names."""
    _check_list_size(items, path, v)
    for i, item in enumerate(items):
        _check_label(_str(_map(item).get("name")), f"{path}[{i}].name", v, min_length=min_length)
    _check_unique(((i, _str(_map(item).get("name"))) for i, item in enumerate(items)), path, "name", v)


def _validate_databases(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "databases", v)
    for i, item in enumerate(items):
        p = f"databases[{i}]"
        db = _map(item)
        engine = _str(db.get("engine"))
        if engine not in DATABASE_ENGINES:
            v.add(f"{p}.engine", f"must be one of {', '.join(DATABASE_ENGINES)}")
        ev = _str(db.get("engine_version"))
        if ev and _check_length(ev, f"{p}.engine_version", v, 32) and not _ENGINE_VERSION.match(ev):
            v.add(f"{p}.engine_version", "must be a version such as '16' or '8.0.35'")
        ic = _str(db.get("instance_class"))
        if not ic:
            v.add(f"{p}.instance_class", "required")
        elif _check_length(ic, f"{p}.instance_class", v, 64) and not _INSTANCE_TYPE.match(ic):
            v.add(f"{p}.instance_class", "must be an instance class such as db.t4g.medium")
        scaling = _map(db.get("scaling"))
        smin, smax = _num(scaling.get("min_capacity")), _num(scaling.get("max_capacity"))
        if not (math.isfinite(smin) and math.isfinite(smax)):
            v.add(
                f"{p}.scaling.min_capacity" if not math.isfinite(smin) else f"{p}.scaling.max_capacity",
                "must be a finite number",
            )
            continue
        if smin > smax:
            v.add(f"{p}.scaling.min_capacity", f"must be <= max_capacity ({smax:g})")
        _check_json_object(db.get("provider_config"), f"{p}.provider_config", v)


def _validate_caches(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "caches", v)
    for i, item in enumerate(items):
        p = f"caches[{i}]"
        c = _map(item)
        nt = _str(c.get("node_type"))
        if not nt:
            v.add(f"{p}.node_type", "required")
        elif _check_length(nt, f"{p}.node_type", v, 64) and not _INSTANCE_TYPE.match(nt):
            v.add(f"{p}.node_type", "must be a node type such as cache.t4g.small")
        _check_json_object(c.get("provider_config"), f"{p}.provider_config", v)


def _validate_queues(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "queues", v)
    for i, item in enumerate(items):
        _check_json_object(_map(item).get("config"), f"queues[{i}].config", v)


def _validate_topics(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "topics", v)
    for i, item in enumerate(items):
        p = f"topics[{i}].subscriptions"
        subs = _list(_map(item).get("subscriptions"))
        _validate_named(subs, p, v)
        for j, sub in enumerate(subs):
            s = _map(sub)
            proto, endpoint = _str(s.get("protocol")), _str(s.get("endpoint"))
            if proto not in SUBSCRIPTION_PROTOCOLS:
                v.add(f"{p}[{j}].protocol", f"must be one of {', '.join(SUBSCRIPTION_PROTOCOLS)}")
            if not _check_length(endpoint, f"{p}[{j}].endpoint", v, MAX_URL_LENGTH):
                continue
            if proto in ("https", "push"):
                parts = urlsplit(endpoint)
                if parts.scheme != "https" or not parts.hostname:
                    v.add(f"{p}[{j}].endpoint", f"an https URL is required for protocol {show(proto)}")
                elif parts.username is not None or parts.password is not None:
                    v.add(f"{p}[{j}].endpoint", "must not carry credentials")


def _validate_nosql(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "nosql_tables", v)
    for i, item in enumerate(items):
        p = f"nosql_tables[{i}]"
        t = _map(item)
        pk, sk = _str(t.get("partition_key")), _str(t.get("sort_key"))
        if not pk:
            v.add(f"{p}.partition_key", "required")
        elif _check_length(pk, f"{p}.partition_key", v) and not _KEY_NAME.match(pk):
            v.add(f"{p}.partition_key", "must be an attribute name (letters, digits, '_', '.', '-')")
        if sk:
            if _check_length(sk, f"{p}.sort_key", v) and not _KEY_NAME.match(sk):
                v.add(f"{p}.sort_key", "must be an attribute name (letters, digits, '_', '.', '-')")
            elif sk == pk:
                v.add(f"{p}.sort_key", "must differ from partition_key")
        _check_json_object(t.get("provider_config"), f"{p}.provider_config", v)


def _validate_buckets(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "storage_buckets", v, min_length=3)
    for i, item in enumerate(items):
        _check_json_object(_map(item).get("provider_config"), f"storage_buckets[{i}].provider_config", v)


def _secret_keys(value: Any, path: str, v: _Violations) -> None:
    """Refuse metadata keys, at any depth, under which a secret value would be stored."""
    if isinstance(value, Mapping):
        for k, item in value.items():
            key = str(k)
            normalized = key.strip().lower().replace("-", "_")
            if normalized in SECRET_VALUE_KEYS:
                v.add(
                    _join(path, key),
                    "secret values are never accepted: metadata describes the secret, "
                    "the value is set in the secret store",
                )
            _secret_keys(item, _join(path, key), v)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _secret_keys(item, f"{path}[{i}]", v)


def _validate_secrets(items: list[Any], v: _Violations) -> None:
    _validate_named(items, "secrets", v)
    for i, item in enumerate(items):
        s = _map(item)
        p = f"secrets[{i}]"
        for key in s:
            if key not in ("name", "metadata"):
                v.add(f"{p}.{key}", "a secret has a name and metadata only")
        _check_json_object(s.get("metadata"), f"{p}.metadata", v)
        _secret_keys(s.get("metadata"), f"{p}.metadata", v)


def validate_spec(
    spec: Mapping[str, Any], provider: str | None, allowed_git_hosts: Collection[str] | None = None
) -> list[FieldViolation]:
    """Every violation of the Spec (a :func:`~alethia.specfile.spec_to_dict` dict), at once.

    ``provider`` is the provider of the Spec's cloud identity, or ``None`` when the
    identity is unknown (then the region is not checked against a provider).
    ``allowed_git_hosts`` (lowercase host names) is the platform's list of repository
    hosts; ``None`` skips that check (a local check of a file), an empty list allows none.
    """
    v = _Violations()
    _walk_strings(spec, "", v)

    zone = _str(spec.get("zone_id"))
    if not zone:
        v.add("zone_id", "zone_id is required")
    elif len(zone) > MAX_NAME_LENGTH or not _LABEL.match(zone):
        v.add("zone_id", "must be a lowercase slug (a-z, 0-9, '-'), at most 63 characters")
    _check_label(_str(spec.get("project_name")), "project_name", v, "project_name")
    _check_label(_str(spec.get("environment")), "environment", v, "environment")

    region = _str(spec.get("region"))
    if not region:
        v.add("region", "region is required")
    elif provider is not None and not is_known_region(provider, region):
        examples = ", ".join(example_regions(provider))
        v.add("region", f"{show(region)} is not a region of {provider} (e.g. {examples})")
    else:
        _check_length(region, "region", v, MAX_NAME_LENGTH)

    identity = _str(spec.get("cloud_identity_id"))
    if not identity:
        v.add("cloud_identity_id", "cloud_identity_id is required")
    else:
        _check_length(identity, "cloud_identity_id", v, 64)
    _check_terraform_version(_str(spec.get("terraform_version")), "terraform_version", v)

    v.items += spec_schema.range_violations(spec)
    _validate_network(spec.get("network"), v)
    _validate_cluster(spec.get("cluster"), v)
    _validate_dns(spec.get("dns"), v)
    _validate_repositories(_list(spec.get("repositories")), v, allowed_git_hosts)
    _validate_databases(_list(spec.get("databases")), v)
    _validate_caches(_list(spec.get("caches")), v)
    _validate_queues(_list(spec.get("queues")), v)
    _validate_topics(_list(spec.get("topics")), v)
    _validate_nosql(_list(spec.get("nosql_tables")), v)
    _validate_buckets(_list(spec.get("storage_buckets")), v)
    _validate_secrets(_list(spec.get("secrets")), v)
    seen = {x.field for x in v.items}
    if provider is not None and "region" not in seen:
        # What the cloud itself would refuse at plan/apply (versions, sizes, name lengths); one
        # message per field, and only for a Spec that sits in one of the cloud's regions.
        v.items.extend(x for x in cloud_limits.violations(provider, spec) if x.field not in seen)
    return v.items


def validate_identity(identity: Mapping[str, Any], prefix: str = "identity") -> list[FieldViolation]:
    """Every violation of a CloudIdentity dict (``name``, ``provider``, ``account_id``, ``credentials_ref``)."""
    v = _Violations()
    _walk_strings(identity, prefix, v)
    _check_label(_str(identity.get("name")), _join(prefix, "name"), v)
    provider = _str(identity.get("provider"))
    account = _str(identity.get("account_id"))
    account_path = _join(prefix, "account_id")
    if provider not in PROVIDERS:
        v.add(_join(prefix, "provider"), f"must be one of {', '.join(PROVIDERS)}")
    if not account:
        v.add(account_path, "account_id is required")
    elif provider == "aws" and not _AWS_ACCOUNT.match(account):
        v.add(account_path, "an AWS account id is 12 digits")
    elif provider == "gcp" and not _GCP_PROJECT.match(account):
        v.add(account_path, "a GCP project id is 6-30 characters: lowercase letters, digits, '-'")
    elif provider == "azure" and not _UUID.match(account):
        v.add(account_path, "an Azure subscription id is a UUID")
    ref = _str(identity.get("credentials_ref"))
    ref_path = _join(prefix, "credentials_ref")
    if not ref:
        v.add(ref_path, "credentials_ref is required (e.g. env:AWS_PROFILE_TEAM_A or vault:secret/team-a)")
    elif _check_length(ref, ref_path, v, 512):
        if any(p.search(ref) for p in _SECRET_PATTERNS) or _looks_random(ref):
            v.add(
                ref_path,
                "looks like a credential: store a reference to it (env:NAME, vault:path), never the secret",
            )
        elif not _CREDENTIALS_REF.match(ref):
            v.add(ref_path, "must be a reference such as env:AWS_PROFILE_TEAM_A or vault:secret/team-a")
    return v.items
