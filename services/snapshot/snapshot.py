"""Stage 2, pure: a Spec -> the frozen snapshot, its hash, and diffs.

The snapshot contract is described in docs/architecture.md ("The snapshot contract").

No I/O here. The snapshot is a plain JSON object whose names are the contract with the
mapper and the CLI. The same configuration always gives the same snapshot and hash:

- every component list is ordered by ``name`` (repositories by ``url``, then branch and
  path; topic subscriptions by name, protocol, endpoint; ``cluster_admins`` sorted because
  it is a set of principals). ``cluster.instance_types`` keeps its order on purpose: the
  first type is the preferred one for node groups, so reordering it is a real change.
- ``git_access_token`` is always ``""``; the runner fetches the token at run time.
- ``config_hash`` is sha256 over the RFC 8785 canonical JSON of the snapshot without
  ``git_access_token`` and without anything volatile (spec revision, timestamps, job
  ids are not part of the snapshot at all; :data:`VOLATILE_KEYS` is stripped anyway).
  ``spec_id`` stays in: it names the thing being provisioned.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

import rfc8785

from alethia import field_paths, naming, spec_schema
from alethia.errors import FieldViolation
from alethia.specs.v1 import specs_pb2

# Keys left out of the hash: the token (always "" anyway, and never part of identity) and
# anything that changes without the configuration changing.
VOLATILE_KEYS = frozenset(
    {"git_access_token", "revision", "spec_revision", "create_time", "update_time", "job_id"}
)


def _number(value: float) -> float | int:
    """Integral doubles as ints so ``2.0`` and ``2`` freeze (and print) the same way."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def workspace_key(zone_id: str, project_name: str, environment: str, region: str) -> str:
    """The Terraform workspace of a Spec: ``{zone_id}/{project}-{env}-{region}`` (:mod:`alethia.naming`)."""
    return naming.workspace_key(zone_id, project_name, environment, region)


def state_key(workspace: str) -> str:
    """The S3 state object of a workspace."""
    return naming.state_key(workspace)


def snapshot_workspace(snapshot: dict[str, Any]) -> str:
    """The workspace key of a snapshot."""
    return workspace_key(
        str(snapshot.get("zone_id", "")),
        str(snapshot.get("project_name", "")),
        str(snapshot.get("environment", "")),
        str(snapshot.get("region", "")),
    )


def build_snapshot(spec: specs_pb2.Spec) -> dict[str, Any]:
    """The snapshot of a Spec as read from ``SpecService.GetSpec`` (provider and account included).

    Derived from the Spec declaration (:func:`alethia.spec_schema.build_snapshot`): every
    field of the proto, lists in their one order, absent ``optional`` fields at their default.
    """
    return spec_schema.build_snapshot(spec)


# RFC 8785 integers: what an IEEE 754 double holds exactly (``rfc8785`` refuses the rest).
_INT_MAX = 2**53 - 1


def _plain(value: Any) -> bool:
    """Whether ``json.dumps(sort_keys=True)`` writes ``value`` exactly as RFC 8785 does.

    It does for objects, arrays, strings, booleans, null and integers within RFC 8785's
    range, and non-integral floats between 1e-4 and 1e16: the string escapes are the same
    set (``"``, ``\\``, control characters as ``\\u00xx`` or their short forms), and
    Python's key order (code points) is RFC 8785's (UTF-16 code units) unless a key holds a
    character beyond U+FFFF. Other floats are written differently (``1e-05`` vs ``0.00001``,
    ``2.0`` vs ``2``), so they, and anything else, take the reference implementation.
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return -_INT_MAX <= value <= _INT_MAX
    if t is float:
        # Both print the shortest round-trip digits; Python switches to exponents below 1e-4
        # and from 1e16, ECMAScript below 1e-6 and from 1e21, and only ECMAScript drops ``.0``.
        return not value.is_integer() and 1e-4 <= abs(value) < 1e16
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                return False
            # Strings and booleans, most of a snapshot's leaves, without a call each.
            if not (type(v) is str or type(v) is bool or _plain(v)):
                return False
        return True
    if t is list:
        return all(type(v) is str or _plain(v) for v in value)
    return False


# One encoder for every call: ``json.dumps`` with options builds a new one each time.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (what the job row and Job.snapshot_json carry).

    The pure-Python reference implementation cost ~0.6 ms per snapshot of 50 components,
    paid twice per BuildSnapshot (text and hash); the C encoder writes the same bytes for
    the values :func:`_plain` accepts in a quarter of that (``tests/snapshot`` compares
    the two on generated documents). Lone surrogates fail to encode either way.
    """
    if _plain(value):
        try:
            return _ENCODE(value).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation raises its own error
    return rfc8785.dumps(value)


def freeze(snapshot: dict[str, Any]) -> tuple[str, str]:
    """(canonical text, config hash) of a snapshot, each member canonicalized once.

    The hash covers the same object without :data:`VOLATILE_KEYS`; RFC 8785 writes an
    object as its sorted members joined by commas, so both come from one set of members.
    """
    if _plain(snapshot):
        try:
            return _freeze_plain(snapshot)
        except UnicodeEncodeError:
            pass  # a lone surrogate: the member-wise path below raises the reference error
    members = sorted(snapshot.items(), key=lambda kv: kv[0].encode("utf-16be"))
    parts = [(k, canonical_json(k) + b":" + canonical_json(v)) for k, v in members]
    text = b"{" + b",".join(p for _, p in parts) + b"}"
    hashed = b"{" + b",".join(p for k, p in parts if k not in VOLATILE_KEYS) + b"}"
    return text.decode(), hashlib.sha256(hashed).hexdigest()


def _freeze_plain(snapshot: dict[str, Any]) -> tuple[str, str]:
    """:func:`freeze` of a snapshot the C encoder writes exactly (:func:`_plain`).

    Encoding member by member cost one encoder call per top-level key (~40 at 50
    components); here each run of sorted members between volatile keys is one call, and
    the pieces (an object's text without its braces) are joined for the text and the hash.
    """
    pieces: list[tuple[bool, str]] = []  # (volatile, members' text), in key order
    run: dict[str, Any] = {}
    for key in sorted(snapshot):  # code point order: RFC 8785's for the keys _plain accepts
        if key in VOLATILE_KEYS:
            if run:
                pieces.append((False, _ENCODE(run)[1:-1]))
                run = {}
            pieces.append((True, _ENCODE({key: snapshot[key]})[1:-1]))
        else:
            run[key] = snapshot[key]
    if run:
        pieces.append((False, _ENCODE(run)[1:-1]))
    text = "{" + ",".join(p for _, p in pieces) + "}"
    text.encode()  # a lone surrogate anywhere raises here, as the byte-wise path would
    hashed = "{" + ",".join(p for volatile, p in pieces if not volatile) + "}"
    return text, hashlib.sha256(hashed.encode()).hexdigest()


def snapshot_text(snapshot: dict[str, Any]) -> str:
    """The snapshot as a JSON string (canonical: stable bytes for the same configuration)."""
    return canonical_json(snapshot).decode()


# A job's snapshot is frozen when it is queued, so its canonical text never changes, and
# every Job message carries it (QueueJob, ClaimJob, CompleteJob, GetJob, ListJobs): the text
# of the most recent jobs is kept instead of being recomputed for each message. QueueJob
# puts in the text it computed with the hash, so a job's text is written once per process.
_JOB_TEXTS: OrderedDict[tuple[str, str], str] = OrderedDict()
_JOB_TEXTS_MAX = 256


def remember_job_text(job_id: str, chash: str, text: str) -> None:
    """Keep the canonical text of job ``job_id``'s snapshot (whose hash is ``chash``)."""
    _JOB_TEXTS[(job_id, chash)] = text
    _JOB_TEXTS.move_to_end((job_id, chash))
    if len(_JOB_TEXTS) > _JOB_TEXTS_MAX:
        _JOB_TEXTS.popitem(last=False)


def job_snapshot_text(job_id: str, chash: str, snapshot: dict[str, Any], plan_job_id: str = "") -> str:
    """The canonical text of a job's snapshot, from the cache when this process has it.

    A DEPLOY of a plan (``plan_job_id``) carries that plan's frozen snapshot, so the plan's
    text (same hash) is its text too: QueueJob of the deploy need not write it again.
    """
    text = _JOB_TEXTS.get((job_id, chash))
    if text is None and plan_job_id:
        text = _JOB_TEXTS.get((plan_job_id, chash))
    if text is None:
        text = snapshot_text(snapshot)
    remember_job_text(job_id, chash, text)
    return text


def config_hash(snapshot: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical snapshot without the git token and volatile keys."""
    hashed = {k: v for k, v in snapshot.items() if k not in VOLATILE_KEYS}
    return hashlib.sha256(canonical_json(hashed)).hexdigest()


def parse_snapshot(text: str) -> dict[str, Any]:
    """A snapshot JSON string back to a dict."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("a snapshot is a JSON object")
    return value


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[FieldViolation]:
    """What differs between a plan's snapshot (``old``) and the current one (``new``), never values.

    Paths are in the one field-path format (docs/architecture.md, "Field paths"): an item
    that exists in both is named by its position in the current snapshot
    (``databases[1].instance_class``); one that exists on one side only is reported as the
    item itself, "added since the plan" at its current position or "removed since the plan"
    at its position in the plan's snapshot; a list of plain values that differs is reported
    as the list (``cluster.instance_types``). Items are matched by ``name`` (repositories by
    url, branch and path). ``git_access_token`` and volatile keys are ignored.
    """
    out: list[FieldViolation] = []
    _diff({k: v for k, v in old.items() if k not in VOLATILE_KEYS},
          {k: v for k, v in new.items() if k not in VOLATILE_KEYS}, "", out)  # fmt: skip
    unique = {(v.field, v.description): v for v in out}
    return sorted(unique.values(), key=lambda v: (_sort_key(v.field), v.description))


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The distinct paths of :func:`changed_fields`, in document order."""
    return list(dict.fromkeys(v.field for v in changed_fields(old, new)))


def _sort_key(path: str) -> list[tuple[int, str | int]]:
    return [(1, p) if isinstance(p, int) else (0, p) for p in field_paths.parse(path)]


def _item_key(list_name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if list_name == "repositories":
        parts = tuple(value.get(k) for k in ("url", "branch", "path"))
        return parts if all(isinstance(p, str) for p in parts) else None
    name = value.get("name")
    return name if isinstance(name, str) else None


def _diff(old: Any, new: Any, path: str, out: list[FieldViolation]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = field_paths.join(path, str(key))
            if key not in old:
                out.append(FieldViolation(sub, "added since the plan"))
            elif key not in new:
                out.append(FieldViolation(sub, "removed since the plan"))
            else:
                _diff(old[key], new[key], sub, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        list_name = path.rsplit(".", 1)[-1]
        old_keys = [_item_key(list_name, item) for item in old]
        new_keys = [_item_key(list_name, item) for item in new]
        if _distinct(old_keys) and _distinct(new_keys):
            old_at = {k: i for i, k in enumerate(old_keys)}
            new_at = {k: i for i, k in enumerate(new_keys)}
            for k, i in old_at.items():
                if k not in new_at:
                    out.append(FieldViolation(field_paths.item(path, i), "removed since the plan"))
            for k, i in new_at.items():
                if k not in old_at:
                    out.append(FieldViolation(field_paths.item(path, i), "added since the plan"))
                else:
                    _diff(old[old_at[k]], new[i], field_paths.item(path, i), out)
            return
        if old != new:
            out.append(FieldViolation(path, "changed since the plan"))
        return
    # A bool is not a number here (True == 1 in Python), and "1" is not 1.
    same_kind = type(old) is type(new) or (_is_number(old) and _is_number(new))
    if not same_kind or old != new:
        out.append(FieldViolation(path, "changed since the plan"))


def _distinct(keys: list[Any]) -> bool:
    """Every item has a key and no two share one."""
    return all(k is not None for k in keys) and len(set(keys)) == len(keys)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
