"""Spec files: a plain dict (parsed YAML/JSON) <-> ``alethia.specs.v1.Spec``, and back.

The dict uses the proto field names (the snapshot contract of docs/architecture.md), with
``provider_config`` / ``config`` / ``metadata`` as plain dicts. Conversion is strict and
pure: a wrong type or an unknown key is an :class:`~alethia.errors.InvalidArgument` naming
the field path (``cluster.node_min_size: expected an integer``), every problem at once.
It checks shapes only; whether the values make sense is the spec service's validation.

Canonical form: every nested message inside a list item (``scaling``) and every
``provider_config``/``config``/``metadata`` Struct of a present message is set, even when
empty, so a Spec converted from a dict, stored and read back compares equal.
The conversion is driven by the proto descriptors, so compatible proto additions need
no change here.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf.descriptor import FieldDescriptor

from alethia import field_paths
from alethia.errors import FieldViolation, InvalidArgument
from alethia.rpc.structs import dict_to_struct
from alethia.spec_dict import _LIST_ITEM_TYPES, _MAX_SAFE_INT, _STRUCT, _TIMESTAMP
from alethia.spec_dict import OUTPUT_ONLY_FIELDS as OUTPUT_ONLY_FIELDS
from alethia.spec_dict import cloud_identity_to_dict as cloud_identity_to_dict
from alethia.spec_dict import spec_to_dict as spec_to_dict
from alethia.specs.v1 import specs_pb2

# The proto -> dict half lives in alethia.spec_dict (the CLI's ``--json`` reads import only
# that, not this module's YAML and regex machinery); its names stay importable from here.

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}


_join = field_paths.join


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value),
        "a list"
        if isinstance(value, list)
        else "a mapping"
        if isinstance(value, dict)
        else type(value).__name__,
    )


def _check_json(value: Any, path: str, errors: list[FieldViolation]) -> None:
    """Struct values must be plain JSON (YAML can produce dates, sets, non-string keys)."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            errors.append(FieldViolation(path, "integer too large for a JSON number (max 2^53)"))
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(FieldViolation(path, "expected a finite number"))
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", errors)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(FieldViolation(path, f"keys must be strings, got {k!r}"))
                continue
            _check_json(v, _join(path, k), errors)
        return
    errors.append(
        FieldViolation(path, f"expected a JSON value, got {type(value).__name__} (quote it in YAML)")
    )


def _scalar(fd: FieldDescriptor, value: Any, path: str, errors: list[FieldViolation]) -> Any:
    """The value converted for ``fd``, or ``None`` after recording a violation."""
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            return value
        hint = (
            " (quote the value in YAML)"
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else ""
        )
        errors.append(FieldViolation(path, f"expected a string, got {_type_name(value)}{hint}"))
        return None
    if t == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        errors.append(FieldViolation(path, f"expected a boolean, got {_type_name(value)}"))
        return None
    if t in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(FieldViolation(path, f"expected an integer, got {_type_name(value)}"))
            return None
        lo, hi = _INT_RANGES[t]
        if not lo <= value <= hi:
            errors.append(FieldViolation(path, f"integer out of range ({lo}..{hi})"))
            return None
        return value
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                errors.append(FieldViolation(path, "expected a finite number"))
                return None
            return float(value)
        errors.append(FieldViolation(path, f"expected a number, got {_type_name(value)}"))
        return None
    errors.append(FieldViolation(path, "unsupported field type"))  # pragma: no cover - no such field today
    return None


def _fill_message(msg: pb_message.Message, value: Any, path: str, errors: list[FieldViolation]) -> None:
    """Fill a (non-Struct, non-Timestamp) message from a mapping."""
    if not isinstance(value, Mapping):
        errors.append(FieldViolation(path, f"expected a mapping, got {_type_name(value)}"))
        return
    fields = msg.DESCRIPTOR.fields_by_name
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldViolation(path, f"keys must be strings, got {key!r}"))
            continue
        p = _join(path, key)
        fd = fields.get(key)
        if fd is None:
            errors.append(FieldViolation(p, "unknown field"))
            continue
        if item is None:  # `key:` with no value in YAML: same as leaving it out
            continue
        if fd.is_repeated:
            if not isinstance(item, list):
                errors.append(FieldViolation(p, f"expected a list, got {_type_name(item)}"))
                continue
            target = getattr(msg, key)
            for i, elem in enumerate(item):
                ep = f"{p}[{i}]"
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    if elem is None:
                        errors.append(FieldViolation(ep, "expected a mapping, got null"))
                        continue
                    _fill_message(target.add(), elem, ep, errors)
                else:
                    v = _scalar(fd, elem, ep, errors)
                    if v is not None:
                        target.append(v)
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            name = fd.message_type.full_name
            if name == _STRUCT:
                if not isinstance(item, Mapping):
                    errors.append(FieldViolation(p, f"expected a mapping, got {_type_name(item)}"))
                    continue
                before = len(errors)
                _check_json(item, p, errors)
                if len(errors) == before:
                    dict_to_struct(dict(item), getattr(msg, key))
            elif name == _TIMESTAMP:
                if not isinstance(item, str):
                    errors.append(FieldViolation(p, "expected an RFC 3339 timestamp string"))
                    continue
                try:
                    getattr(msg, key).FromJsonString(item)
                except ValueError:
                    errors.append(FieldViolation(p, "expected an RFC 3339 timestamp string"))
            else:
                _fill_message(getattr(msg, key), item, p, errors)
            continue
        v = _scalar(fd, item, p, errors)
        if v is not None:
            setattr(msg, key, v)
    _canonicalize(msg)


def _canonicalize(msg: pb_message.Message) -> None:
    """Set every Struct field and every nested message of a list item (see module docstring)."""
    for fd in msg.DESCRIPTOR.fields:
        if fd.type != FieldDescriptor.TYPE_MESSAGE or fd.is_repeated:
            continue
        name = fd.message_type.full_name
        if name == _STRUCT or (name != _TIMESTAMP and msg.DESCRIPTOR.full_name in _LIST_ITEM_TYPES):
            getattr(msg, fd.name).SetInParent()


def spec_from_dict(data: Any) -> specs_pb2.Spec:
    """A Spec from a plain dict; wrong types and unknown keys raise InvalidArgument (all at once)."""
    errors: list[FieldViolation] = []
    spec = specs_pb2.Spec()
    if not isinstance(data, Mapping):
        raise InvalidArgument([FieldViolation("", f"a Spec must be a mapping, got {_type_name(data)}")])
    _fill_message(spec, data, "", errors)
    if errors:
        raise InvalidArgument(errors)
    return spec


def cloud_identity_from_dict(data: Any) -> specs_pb2.CloudIdentity:
    """A CloudIdentity from a plain dict (``name``, ``provider``, ``account_id``, ``credentials_ref``)."""
    errors: list[FieldViolation] = []
    identity = specs_pb2.CloudIdentity()
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            [FieldViolation("", f"a CloudIdentity must be a mapping, got {_type_name(data)}")]
        )
    _fill_message(identity, data, "", errors)
    if errors:
        raise InvalidArgument(errors)
    return identity


@functools.cache
def _unique_key_loader() -> type[Any]:
    """A YAML loader that refuses duplicate keys (the last one silently winning hides typos).

    Built on first use: PyYAML is imported only by commands that read a file, not by every
    CLI command that prints a Spec.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(
        loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)  # type: ignore[arg-type]
    return UniqueKeyLoader


# Bounds on a Spec file, so a hostile file is refused quickly with bounded memory: a real
# Spec is a few KiB, a few hundred nodes and under ten levels deep.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000  # nodes after alias expansion (a billion-laughs file expands to ~10^9)


class _DocumentTooLarge(Exception):
    """A bound of the pre-scan was exceeded; ``path`` is where in the document."""

    def __init__(self, problem: str, path: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path or "(top level)"


def _path_of(stack: list[list[Any]]) -> str:
    """The document path of the node being read (``a.b[2].c``) from the scan's frame stack."""
    out = ""
    for frame in stack:
        kind, _size, _anchor, index, key = frame[:5]
        if kind == "seq":
            out += f"[{index}]"
        elif key is not None:
            out = _join(out, key)
    return out


# Quoted scalars, comments and flow brackets: enough to follow YAML's flow nesting.
_YAML_FLOW_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|(?:^|(?<=\s))#[^\n]*|[\[\]{}]""", re.M)


def _flow_too_deep(text: str) -> int | None:
    """Where flow brackets first nest deeper than ``MAX_DEPTH`` (None when they never do).

    PyYAML's scanner looks ahead to the end of a flow collection before it yields the
    first event inside it, so a file of 100 000 ``[`` costs it seconds; this linear scan
    finds the spot first, and the event walk then reads only the text up to it.
    """
    depth = 0
    for m in _YAML_FLOW_TOKEN.finditer(text):
        tok = m.group(0)
        if tok in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return m.end()
        elif tok in ("]", "}"):
            depth = max(depth - 1, 0)
    return None


def _prescan_yaml(text: str) -> None:
    """The bounds of :func:`_walk_yaml_events`, without PyYAML's look-ahead over deep flow nesting."""
    import yaml

    cut = _flow_too_deep(text)
    if cut is None:
        _walk_yaml_events(text)
        return
    try:
        _walk_yaml_events(text[:cut])  # stops at the depth limit, naming the path
    except yaml.YAMLError:
        pass
    line = text.count("\n", 0, cut) + 1
    raise _DocumentTooLarge(f"nested deeper than {MAX_DEPTH} levels", f"line {line}")


def _walk_yaml_events(text: str) -> None:
    """Walk the YAML event stream (PyYAML's parser is iterative) and enforce the bounds.

    Counts every node as aliases would expand it (an alias counts the size of its anchor,
    known from the anchor's end event), so a billion-laughs file stops at ``MAX_NODES``
    without anything being expanded; refuses nesting deeper than ``MAX_DEPTH`` before the
    recursive composer could hit Python's recursion limit.
    """
    import yaml  # imported late: the CLI's fast paths never parse YAML

    anchors: dict[str, int] = {}
    # frame: [kind, expanded size, anchor, seq index | map "expecting key", current key]
    stack: list[list[Any]] = []
    total = 0

    def count(size: int) -> None:
        nonlocal total
        total += size
        if total > MAX_NODES:
            raise _DocumentTooLarge(f"more than {MAX_NODES} nodes once aliases are expanded", _path_of(stack))

    def node(size: int, key_text: str | None) -> None:
        """A complete node of ``size`` (expanded) nodes inside the innermost collection."""
        if not stack:
            return
        top = stack[-1]
        top[1] += size
        if top[0] == "seq":
            top[3] += 1
        elif top[3]:  # this node is a key: remember it for the path of its value
            top[4] = key_text if key_text is not None else "?"
            top[3] = False
        else:
            top[3] = True

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.ScalarEvent):
            count(1)
            node(1, event.value)
            if event.anchor:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            size = anchors.get(str(event.anchor), 1)
            count(size)
            node(size, None)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if stack and stack[-1][0] == "map" and stack[-1][3]:
                stack[-1][4] = "?"  # a collection used as a key
            if len(stack) >= MAX_DEPTH:
                raise _DocumentTooLarge(f"nested deeper than {MAX_DEPTH} levels", _path_of(stack))
            count(1)
            kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
            stack.append([kind, 1, event.anchor, 0 if kind == "seq" else True, None])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            kind, size, anchor, _index, _key = stack.pop()
            if anchor:
                anchors[anchor] = size
            node(size, None)  # already counted in ``total`` node by node


class _PairsChecker:
    """``object_pairs_hook`` for json.loads: remembers duplicate keys instead of keeping the last."""

    def __init__(self) -> None:
        self.duplicates: dict[int, str] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out and id(out) not in self.duplicates:
                self.duplicates[id(out)] = key
            out[key] = value
        return out


# Strings (a key when a ':' follows), brackets and commas: enough to follow JSON's structure.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?|[\[\]{},]')


def _prescan_json(text: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` before ``json.loads`` could recurse that deep."""
    # frame: [kind, index, key]
    stack: list[list[Any]] = []
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group(0)
        if tok in "[{":
            if len(stack) >= MAX_DEPTH:
                path = ""
                for kind, index, key in stack:
                    path = f"{path}[{index}]" if kind == "seq" else _join(path, key or "?")
                raise _DocumentTooLarge(f"nested deeper than {MAX_DEPTH} levels", path)
            stack.append(["seq" if tok == "[" else "map", 0, None])
        elif tok in "]}":
            if stack:
                stack.pop()
        elif tok == ",":
            if stack and stack[-1][0] == "seq":
                stack[-1][1] += 1
        elif m.group(1) and stack and stack[-1][0] == "map":
            try:
                stack[-1][2] = json.loads(tok[: tok.rindex('"') + 1])
            except ValueError:
                stack[-1][2] = "?"


def _duplicate_key_path(doc: Any, duplicates: dict[int, str]) -> str | None:
    """The path of the first mapping (in document order) that had a duplicate key."""
    todo: list[tuple[Any, str]] = [(doc, "")]
    while todo:  # iterative: depth is bounded already, but no recursion is needed at all
        value, path = todo.pop()
        if isinstance(value, dict):
            if id(value) in duplicates:
                return _join(path, duplicates[id(value)])
            todo += [(v, _join(path, k)) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            todo += [(v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value)))]
    return None


def load_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON when the suffix is .json); InvalidArgument names the file.

    Hostile files are refused before they can cost much: at most ``MAX_FILE_BYTES``, nesting
    at most ``MAX_DEPTH`` levels, at most ``MAX_NODES`` nodes with YAML aliases expanded, and
    no duplicate key (in YAML or JSON). Each refusal is one violation naming the file and
    the path in the document.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidArgument(
                [
                    FieldViolation(
                        str(p), f"file is {size} bytes; a Spec file is at most {MAX_FILE_BYTES} bytes"
                    )
                ]
            )
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument([FieldViolation(str(p), f"cannot read file: {exc}")]) from exc
    import yaml

    is_json = p.suffix.lower() == ".json"
    try:
        if is_json:
            _prescan_json(text)
            checker = _PairsChecker()
            doc = json.loads(text, object_pairs_hook=checker)
            dup = _duplicate_key_path(doc, checker.duplicates) if checker.duplicates else None
            if dup is not None:
                raise InvalidArgument([FieldViolation(str(p), f"duplicate key at {dup}")])
            return doc
        _prescan_yaml(text)
        # A SafeLoader subclass: no arbitrary objects.
        return yaml.load(text, Loader=_unique_key_loader())
    except _DocumentTooLarge as exc:
        raise InvalidArgument([FieldViolation(str(p), f"refused: {exc.problem} (at {exc.path})")]) from None
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        kind = "JSON" if is_json else "YAML or JSON"
        detail = " ".join(str(exc).split())[:500]
        raise InvalidArgument([FieldViolation(str(p), f"not a valid {kind} document: {detail}")]) from None


def load_spec_file(path: str | Path) -> specs_pb2.Spec:
    """Read a Spec from a YAML or JSON file."""
    data = load_document(path)
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            [FieldViolation(str(path), f"a Spec file must hold a mapping, got {_type_name(data)}")]
        )
    try:
        return spec_from_dict(data)
    except InvalidArgument as exc:
        raise InvalidArgument(exc.violations, f"{path}: {exc.message}") from None
