"""Check a JSON value against a Terraform type constraint as Terraform's config loader
reports it (cty's JSON type form: ``"string"``, ``["list", T]``, ``["object", {..}, [optional]]``).

Strict on purpose: a string where a number is declared is a mismatch here even though
Terraform would convert it, so the mapper emits exactly the declared types.
"""

from __future__ import annotations

from typing import Any


def problems(value: Any, ty: Any, path: str = "") -> list[str]:
    """Every place where ``value`` does not have type ``ty``."""
    where = path or "value"
    if ty == "dynamic":
        return []
    if ty == "string":
        return [] if isinstance(value, str) else [f"{where}: expected string, got {value!r}"]
    if ty == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected number, got {value!r}"]
    if ty == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected bool, got {value!r}"]
    kind = ty[0]
    if kind in ("list", "set"):
        if not isinstance(value, list):
            return [f"{where}: expected {kind}, got {value!r}"]
        return [p for i, v in enumerate(value) for p in problems(v, ty[1], f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected map, got {value!r}"]
        return [p for k, v in value.items() for p in problems(v, ty[1], f"{path}.{k}")]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {value!r}"]
        attrs: dict[str, Any] = ty[1]
        optional = set(ty[2]) if len(ty) > 2 else set()
        out = [f"{path}.{k}: not declared" for k in value if k not in attrs]
        out += [f"{path}.{k}: missing" for k in attrs if k not in value and k not in optional]
        out += [p for k, t in attrs.items() if k in value for p in problems(value[k], t, f"{path}.{k}")]
        return out
    if kind == "tuple":
        if not isinstance(value, list) or len(value) != len(ty[1]):
            return [f"{where}: expected tuple of {len(ty[1])}"]
        return [
            p
            for i, (v, t) in enumerate(zip(value, ty[1], strict=True))
            for p in problems(v, t, f"{path}[{i}]")
        ]
    return [f"{where}: unknown type {ty!r}"]
