"""Keeping secrets out of everything the runner writes (pure).

Secrets are: the git token, the S3 secret key, and every value Terraform marks sensitive
(outputs, resource attributes, variables). Terraform's own ``-json`` UI already hides
sensitive values, but ``show -json`` and ``output -json`` print them in clear, so:

- :func:`redact_plan` replaces sensitive subtrees of a plan JSON with ``"(sensitive)"``,
  following Terraform's sensitivity masks, and returns the values it removed;
- :func:`redact_outputs` turns ``output -json`` into ``(name, sensitive, value_json)`` with
  sensitive values replaced;
- :class:`Redactor` removes every known secret from any text (log lines, artifacts), in raw
  and JSON-escaped form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

SENSITIVE = "(sensitive)"
REDACTED = "(redacted)"
# Shorter values are replaced only where a whole JSON string equals them: replacing every
# "1" or "on" inside log text would destroy the log and hide nothing.
MIN_SUBSTRING_LEN = 4


def _leaf_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaf_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaf_strings(v)


def masked_values(value: Any, mask: Any) -> Iterator[Any]:
    """Every subtree of ``value`` that Terraform's sensitivity ``mask`` marks ``true``."""
    if mask is True:
        yield value
    elif isinstance(mask, dict) and isinstance(value, dict):
        for k, m in mask.items():
            if k in value:
                yield from masked_values(value[k], m)
    elif isinstance(mask, list) and isinstance(value, list):
        for v, m in zip(value, mask, strict=False):
            yield from masked_values(v, m)


def apply_mask(value: Any, mask: Any) -> Any:
    """A copy of ``value`` with the subtrees ``mask`` marks replaced by ``"(sensitive)"``."""
    if mask is True:
        return SENSITIVE
    if isinstance(mask, dict) and isinstance(value, dict):
        return {k: apply_mask(v, mask.get(k)) for k, v in value.items()}
    if isinstance(mask, list) and isinstance(value, list):
        return [apply_mask(v, mask[i] if i < len(mask) else None) for i, v in enumerate(value)]
    return value


def _module_values(module: dict[str, Any] | None, secrets: set[str]) -> None:
    if not isinstance(module, dict):
        return
    for res in module.get("resources") or []:
        mask = res.get("sensitive_values")
        for v in masked_values(res.get("values"), mask):
            secrets.update(_leaf_strings(v))
        res["values"] = apply_mask(res.get("values"), mask)
    for child in module.get("child_modules") or []:
        _module_values(child, secrets)


def _values_doc(doc: dict[str, Any] | None, secrets: set[str]) -> None:
    """``planned_values`` / ``prior_state.values``: outputs and module resources."""
    if not isinstance(doc, dict):
        return
    for out in (doc.get("outputs") or {}).values():
        if out.get("sensitive"):
            secrets.update(_leaf_strings(out.get("value")))
            if "value" in out:
                out["value"] = SENSITIVE
    _module_values(doc.get("root_module"), secrets)


def _change(change: dict[str, Any] | None, secrets: set[str]) -> None:
    if not isinstance(change, dict):
        return
    for side in ("before", "after"):
        mask = change.get(f"{side}_sensitive")
        for v in masked_values(change.get(side), mask):
            secrets.update(_leaf_strings(v))
        if side in change:
            change[side] = apply_mask(change.get(side), mask)


def redact_plan(plan: dict[str, Any], *, copy: bool = True) -> tuple[dict[str, Any], set[str]]:
    """The plan JSON with sensitive values replaced, and the set of values removed.

    Works on a deep copy; ``copy=False`` redacts ``plan`` itself instead (for a caller that
    parsed it and needs it no more: the copy is a full serialize and parse of the plan, the
    largest JSON a job handles). After the structural pass every remaining occurrence of a
    removed value anywhere in the document (e.g. a literal in ``configuration``) is replaced too.
    """
    doc: dict[str, Any] = json.loads(json.dumps(plan)) if copy else plan
    secrets: set[str] = set()
    for rc in [*(doc.get("resource_changes") or []), *(doc.get("resource_drift") or [])]:
        _change(rc.get("change"), secrets)
    for oc in (doc.get("output_changes") or {}).values():
        _change(oc, secrets)
    _values_doc(doc.get("planned_values"), secrets)
    _values_doc((doc.get("prior_state") or {}).get("values"), secrets)
    sensitive_vars = {
        name
        for name, var in ((doc.get("configuration") or {}).get("root_module") or {})
        .get("variables", {})
        .items()
        if isinstance(var, dict) and var.get("sensitive")
    }
    for name, var in (doc.get("variables") or {}).items():
        if name in sensitive_vars and isinstance(var, dict) and "value" in var:
            secrets.update(_leaf_strings(var["value"]))
            var["value"] = SENSITIVE
    if not secrets:
        return doc, secrets  # nothing left to find
    # ``doc`` is this call's own (copied above, or handed over): redacted where it is.
    return Redactor(secrets, replacement=SENSITIVE).redact_json_in_place(doc), secrets


@dataclass(frozen=True)
class RedactedOutput:
    name: str
    sensitive: bool
    value_json: str  # JSON; '"(sensitive)"' when sensitive


def redact_outputs(outputs: dict[str, Any]) -> tuple[list[RedactedOutput], set[str]]:
    """``output -json`` as redacted outputs (sorted by name) and the sensitive values seen."""
    result: list[RedactedOutput] = []
    secrets: set[str] = set()
    for name in sorted(outputs):
        out = outputs[name] if isinstance(outputs[name], dict) else {"value": outputs[name]}
        if out.get("sensitive"):
            secrets.update(_leaf_strings(out.get("value")))
            result.append(RedactedOutput(name, True, json.dumps(SENSITIVE)))
        else:
            result.append(RedactedOutput(name, False, json.dumps(out.get("value"), sort_keys=True)))
    return result, secrets


class Redactor:
    """Removes known secret values from text and JSON documents."""

    def __init__(self, secrets: Iterable[str] = (), replacement: str = REDACTED) -> None:
        self.replacement = replacement
        self._secrets: set[str] = set()
        # Built on first use after each change: redact() runs for every log line of a job,
        # and the secrets change a few times per job at most.
        self._cached_patterns: list[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Remember more secrets (empty strings are ignored)."""
        for s in secrets:
            if s and s not in self._secrets:
                self._secrets.add(s)
                self._cached_patterns = None

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def _patterns(self) -> list[str]:
        if self._cached_patterns is None:
            self._cached_patterns = self._build_patterns()
        return self._cached_patterns

    def _build_patterns(self) -> list[str]:
        out: set[str] = set()
        for s in self._secrets:
            if len(s) < MIN_SUBSTRING_LEN:
                continue
            out.add(s)
            escaped = json.dumps(s)[1:-1]  # how it looks inside a JSON string
            out.add(escaped)
        return sorted(out, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret (and its JSON-escaped form) replaced."""
        for p in self._patterns():
            if p in text:
                text = text.replace(p, self.replacement)
        return text

    def _redact_string(self, v: str, patterns: list[str]) -> str:
        if v in self._secrets:
            return self.replacement
        for p in patterns:
            if p in v:
                v = v.replace(p, self.replacement)
        return v

    def redact_json(self, value: Any) -> Any:
        """A copy of a JSON value with secret strings replaced (whole or inside longer strings)."""
        patterns = self._patterns()

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return self._redact_string(v, patterns)
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x) for x in v]
            return v

        return walk(value)

    def redact_json_in_place(self, value: Any) -> Any:
        """:meth:`redact_json` without the copy: ``value``'s dicts and lists are changed where
        they are (only strings that change are stored); returns ``value`` (or the replaced
        string, for a bare string). For a document nothing else holds: a plan's whole tree."""
        patterns = self._patterns()
        redact = self._redact_string

        def walk(container: dict[Any, Any] | list[Any]) -> None:
            items = container.items() if isinstance(container, dict) else enumerate(container)
            for k, v in items:
                if isinstance(v, str):
                    new = redact(v, patterns)
                    if new is not v:
                        container[k] = new  # same key or index: the iteration is not disturbed
                elif isinstance(v, dict | list):
                    walk(v)

        if isinstance(value, str):
            return redact(value, patterns)
        if isinstance(value, dict | list):
            walk(value)
        return value
